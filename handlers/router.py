"""The router: one inbound message in, the replies out. First match wins, in this order:

1. an opted-out contact: only START (or STOP again) does anything;
2. global keywords, bare or as /commands: stop first, then (once an expired survey has been
   reported) start, help, language, cancel;
3. staff commands (`/name args`, registered in handlers/features.py): role-checked; anyone
   else gets the ordinary help, and the attempt is audited;
4. the active survey or form (which may have expired);
5. the contact-level prompt just shown (main menu, language menu, /forget confirmation, expiry);
6. entry points: /register, /needs, /ppe, /mydata, /forget, /menu, deep links (/start needs)
   and those feature modules register (handlers/features.py);
7. free-text readers feature modules register (a typed request reference such as R-7K3F);
8. a new contact's welcome, or the fallback: "I did not understand" and the main menu.

Words other than /commands start nothing while a survey runs: "needs" may be an answer.
"""

from __future__ import annotations

import logging

from handlers import account, features, runs
from handlers.context import Ctx
from handlers.i18n import NATIVE_NAMES, keyword_of, t
from handlers.menu import SURVEY_OF, language_menu, main_menu, menu_items
from handlers.messages import Inbound, Outgoing
from handlers.text import normalise, typed_label
from storage import audit, contacts, surveys

logger = logging.getLogger(__name__)

ENTRY_COMMANDS = frozenset({"register", "needs", "ppe", "mydata", "forget", "menu"})


def route(ctx: Ctx, inbound: Inbound, *, is_new: bool) -> list[Outgoing]:
    """Decide the replies to one message (see the module docstring for the order)."""
    features.load()
    text = inbound.text.strip()
    command = keyword_of(text) if inbound.choice_id is None else None
    slash = text.startswith("/")
    if ctx.contact.opted_out:
        return _opted_out(ctx, command)
    if command == "stop":
        return account.stop(ctx)
    run = ctx.run
    if run is not None and run.expires_at <= ctx.now:
        return runs.expire(ctx, run)  # before help or cancel could revive it
    if command in ("help", "language", "cancel") or (command == "start" and not slash):
        return _global(ctx, command)
    if slash:
        name, _, args = text[1:].partition(" ")
        staff = features.STAFF.get(name.split("@", 1)[0].lower())
        if staff is not None:
            return _staff(ctx, staff, args.strip())
    choice = inbound.choice_id or ""
    if choice[:2] in ("l:", "m:", "f:", "x:"):
        return _contact_choice(ctx, choice, run)
    prefix, _, value = choice.partition(":")
    if prefix in features.CHOICES:
        return features.CHOICES[prefix](ctx, value)
    if run is not None and ctx.contact.prompt == "language":
        chosen = _typed_language(ctx, text)
        if chosen is not None:
            return _language_chosen(ctx, chosen)
        contacts.update_contact(
            session=ctx.session, contact=ctx.contact, prompt=None, prompt_data={}
        )
    entries = ENTRY_COMMANDS | set(features.ENTRIES) | {"start"}
    if run is not None and not (slash and command in entries):
        return runs.step(ctx, run, "answer", text, inbound.choice_id)
    if ctx.contact.prompt == "expired" and not ctx.contact.prompt_data.get("told"):
        survey = str(ctx.contact.prompt_data.get("survey", ""))
        return runs.expired_notice(ctx, survey)
    if ctx.contact.prompt and not slash:
        replies = _prompt_answer(ctx, text)
        if replies is not None:
            return replies
    if command == "start":
        return _start(ctx, text, is_new=is_new)
    if command in SURVEY_OF and (is_new or ctx.contact.language_source is None):
        return _welcome(ctx, then=SURVEY_OF[command])  # consent and language come first
    if command in ENTRY_COMMANDS or command in features.ENTRIES:
        return _entry(ctx, command or "", text)
    if not slash and inbound.choice_id is None and not is_new:
        for reader in features.TEXT:
            replies = reader(ctx, text)
            if replies is not None:
                return replies
    if is_new or ctx.contact.language_source is None:
        return _welcome(ctx)
    return [main_menu(ctx, lead=t("not_understood", ctx.lang))]


def _opted_out(ctx: Ctx, command: str | None) -> list[Outgoing]:
    """An opted-out contact gets nothing but the confirmation of their status."""
    if command == "start":
        return account.start_again(ctx)
    return [Outgoing(text=t("still_stopped", ctx.lang), kind="opt_out")]


def _global(ctx: Ctx, command: str | None) -> list[Outgoing]:
    """Handle stop, start, help, language and cancel wherever the contact is."""
    run = ctx.run
    if command == "language":
        return [language_menu(ctx, then="run" if run else "menu")]
    if command == "help":
        if run is not None:
            return runs.step(ctx, run, "help")
        return [main_menu(ctx, lead=t("help_text", ctx.lang))]
    if command == "cancel":
        if run is not None:
            return runs.cancel(ctx, run)
        return [main_menu(ctx, lead=t("nothing_to_cancel", ctx.lang))]
    return [main_menu(ctx)]


def _contact_choice(ctx: Ctx, choice: str, run: object) -> list[Outgoing]:
    """Handle a tap on a menu, language, /forget or expiry button."""
    kind, _, value = choice.partition(":")
    if kind == "l" and value in ctx.config.supported_languages:
        return _language_chosen(ctx, value)
    if kind == "m" and value in menu_items(ctx):
        return _entry(ctx, value, "/" + value)
    if kind == "f" and ctx.contact.prompt == "forget":
        return (
            account.forget(ctx)
            if value == "yes"
            else [main_menu(ctx, lead=t("forget_kept", ctx.lang))]
        )
    if kind == "x" and ctx.contact.prompt == "expired":
        survey = str(ctx.contact.prompt_data.get("survey", ""))
        return runs.start(ctx, survey) if value == "restart" and survey else [main_menu(ctx)]
    return [main_menu(ctx, lead=t("stale_button", ctx.lang))]


def _prompt_answer(ctx: Ctx, text: str) -> list[Outgoing] | None:
    """Read a typed answer to the contact-level prompt just shown; None when it is not one."""
    prompt = ctx.contact.prompt
    index = int(text.rstrip(".)")) if text.rstrip(".)").isdecimal() else None
    if prompt == "language":
        chosen = _typed_language(ctx, text)
        if chosen is not None:
            return _language_chosen(ctx, chosen)
        return [
            language_menu(
                ctx,
                then=str(ctx.contact.prompt_data.get("then", "menu")),
                lead=t("invalid_choice", ctx.lang),
            )
        ]
    if prompt == "menu":  # an entry's label typed works like a tap
        item = typed_label(text, {i: t(f"menu_{i}", ctx.lang) for i in menu_items(ctx)})
        if item is not None:
            return _entry(ctx, item, "/" + item)
    if prompt == "menu" and index is not None:
        items = menu_items(ctx)
        if 1 <= index <= len(items):
            return _entry(ctx, items[index - 1], "/" + items[index - 1])
        return [main_menu(ctx, lead=t("invalid_choice_number", ctx.lang, max=len(items)))]
    if prompt == "forget":
        word = keyword_of(text) or typed_label(
            text, {"yes": t("forget_yes", ctx.lang), "no": t("forget_no", ctx.lang)}
        )
        if word == "yes" or index == 1:
            return account.forget(ctx)
        if word == "no" or index == 2:
            return [main_menu(ctx, lead=t("forget_kept", ctx.lang))]
        return account.ask_forget(ctx)
    if prompt == "expired" and index is None:
        labels = {"1": t("restart_button", ctx.lang), "2": t("menu_button", ctx.lang)}
        index = int(typed_label(text, labels) or 0) or None
    if prompt == "expired" and index in (1, 2):
        return _contact_choice(ctx, "x:restart" if index == 1 else "x:menu", None)
    return None


def _typed_language(ctx: Ctx, text: str) -> str | None:
    """Read a language typed at the language menu: its number, code or own name."""
    languages = ctx.config.supported_languages
    cleaned = text.strip().rstrip(".)")
    if cleaned.isdecimal() and 1 <= int(cleaned) <= len(languages):
        return languages[int(cleaned) - 1]
    key = normalise(cleaned)
    named = [lang for lang in languages if key in (lang, normalise(NATIVE_NAMES[lang]))]
    return named[0] if named else None


def _language_chosen(ctx: Ctx, lang: str) -> list[Outgoing]:
    """Set the language, then go where the menu was opened from."""
    then = str(ctx.contact.prompt_data.get("then", "menu"))
    following = ctx.contact.prompt_data.get("next")
    account.set_language(ctx, lang)
    contacts.update_contact(session=ctx.session, contact=ctx.contact, prompt=None, prompt_data={})
    lead = t("language_set", lang, language=NATIVE_NAMES[lang])
    if then == "welcome":
        return _welcome(ctx, lead=lead, then=str(following) if following else None)
    run = surveys.active_run(session=ctx.session, contact_id=ctx.contact.id or 0)
    if then == "run" and run is not None:
        return _reprompt(ctx, run, lead)
    return [main_menu(ctx, lead=lead)]


def _reprompt(ctx: Ctx, run: object, lead: str) -> list[Outgoing]:
    """Ask the active run's question again, now in the new language."""
    from storage.models import SurveyRun

    assert isinstance(run, SurveyRun)
    replies = runs.step(ctx, run, "reprompt")
    if replies:
        replies[0] = replies[0].with_lead(lead)
    return replies


def _start(ctx: Ctx, text: str, *, is_new: bool) -> list[Outgoing]:
    """Handle /start, with a deep-link payload such as `/start needs`."""
    payload = text.split(" ", 1)[1].strip() if " " in text else ""
    if features.owns_link(payload):
        if ctx.contact.language_source is not None and not is_new:
            return features.follow_link(ctx, payload) or [main_menu(ctx)]
        return _welcome(ctx, then=f"link:{payload}")  # followed once welcomed (runs._finish)
    payload = payload.lower()
    if payload in SURVEY_OF and not is_new:
        return _entry(ctx, payload)
    if is_new or ctx.contact.language_source is None:
        return _welcome(ctx, then=SURVEY_OF.get(payload))
    return [main_menu(ctx, lead=t("welcome_back", ctx.lang))]


def _staff(ctx: Ctx, command: features.StaffCommand, args: str) -> list[Outgoing]:
    """Run a staff command for staff; anyone else gets the ordinary help (and it is audited)."""
    allowed = features.may_run(ctx.contact.staff_role, command)
    audit.record(
        session=ctx.session,
        action=f"staff:{command.name}" if allowed else "staff_denied",
        now=ctx.now,
        actor_contact_id=ctx.contact.id,
        subject=command.name,
    )
    if not allowed:
        logger.warning("staff command refused command=%s contact=%s", command.name, ctx.contact.id)
        return [main_menu(ctx, lead=t("help_text", ctx.lang))]
    return command.handler(ctx, args)


def _entry(ctx: Ctx, item: str, text: str = "") -> list[Outgoing]:
    """Start what a menu entry or command names."""
    if item in features.ENTRIES:
        return features.ENTRIES[item](ctx, text)
    if item == "mydata":
        return account.my_data(ctx)
    if item == "forget":
        return account.ask_forget(ctx)
    if item == "language":
        return [language_menu(ctx)]
    if item in SURVEY_OF:
        return runs.start(ctx, SURVEY_OF[item])
    return [main_menu(ctx)]


def _welcome(ctx: Ctx, *, lead: str = "", then: str | None = None) -> list[Outgoing]:
    """Greet a new contact: pick a language if unknown, then register (consent first)."""
    if ctx.contact.language_source in (None, "default"):
        contacts.update_contact(session=ctx.session, contact=ctx.contact, language_source=None)
        menu = language_menu(ctx, then="welcome", lead=t("welcome_short", ctx.lang))
        if then:
            contacts.update_contact(
                session=ctx.session,
                contact=ctx.contact,
                prompt_data={"then": "welcome", "next": then},
            )
        return [menu]
    welcome = t("welcome", ctx.lang)
    lead = f"{lead}\n\n{welcome}" if lead else welcome
    if then and then.startswith("link:") and ctx.contact.consent_at is not None:
        return runs.follow_link(ctx, then, lead=lead)
    if then and then != "registration" and ctx.contact.consent_at is not None:
        return runs.start(ctx, then, lead=lead)
    return runs.start(
        ctx, "registration", lead=lead, then=then if then != "registration" else None
    )
