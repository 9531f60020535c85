"""Webinars in chat: list, details, register (button or `/start w12`), .ics, unregister, survey.

Buttons are `w:<action><webinar id>`: `s` details, `r` register, `u` unregister, `c` calendar
file, `f` post-webinar survey, `l` the list; staff confirm a cancellation with `k` (or keep the
webinar with `n`). Staff commands live in handlers/webinars_staff.py.
"""

from __future__ import annotations

import logging
from typing import Any

from handlers import features, runs
from handlers import webinars_core as core
from handlers import webinars_staff as staff
from handlers import webinars_text as text
from handlers.context import Ctx
from handlers.definitions import Definition
from handlers.i18n import strings, t
from handlers.menu import main_menu
from handlers.messages import Choice, Outgoing
from handlers.webinars_time import show_time
from storage import contacts, surveys
from storage import webinars as db
from storage.models import SurveyRun

logger = logging.getLogger(__name__)

LIST_LIMIT = 10
LABEL_MAX = 24  # WhatsApp list items; Telegram buttons take more, but short labels read better
PROMPT = "webinars"


def _short(label: str) -> str:
    """Shorten a button label."""
    return label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 1].rstrip() + "…"


def _remember(ctx: Ctx, **data: Any) -> None:
    """Note what the buttons just shown mean, so a typed number can pick one."""
    contacts.update_contact(
        session=ctx.session, contact=ctx.contact, prompt=PROMPT, prompt_data=data
    )


def _reply(ctx: Ctx, body: str, choices: list[Choice], **data: Any) -> list[Outgoing]:
    """One reply with buttons, remembered for typed numbers."""
    _remember(ctx, actions=[c.id for c in choices], **data)
    return [Outgoing(text=body, choices=tuple(choices))]


# -- the list and the details -------------------------------------------------------------------


@features.entry("webinars", menu="menu_webinars" in strings())
def webinars_command(ctx: Ctx, _text: str) -> list[Outgoing]:
    """`/webinars`, the word in any language, or the menu entry: the list."""
    return show_list(ctx)


def show_list(ctx: Ctx, lead: str = "") -> list[Outgoing]:
    """List the upcoming webinars with the reader's local time and whether they may register."""
    found = db.upcoming_webinars(session=ctx.session, now=ctx.now, limit=LIST_LIMIT)
    if not found:
        empty = t("web_list_empty", ctx.lang)
        return [main_menu(ctx, lead=f"{lead}\n\n{empty}" if lead else empty)]
    counts = db.count_registered(session=ctx.session, webinar_ids=[w.id or 0 for w in found])
    mine = db.registered_webinar_ids(session=ctx.session, contact_id=ctx.contact.id or 0)
    is_staff = ctx.contact.staff_role in ("staff", "admin")
    lines = [t("web_list_title", ctx.lang)]
    choices: list[Choice] = []
    for number, webinar in enumerate(found, 1):
        zone, _source = text.reader_zone(webinar, ctx.contact)
        name = text.title(webinar, ctx.lang)
        if webinar.id in mine:
            status = t("web_status_registered", ctx.lang)
        else:
            state = core.registration_state(webinar, counts[webinar.id or 0], ctx.now)
            status = t(f"web_status_{state}", ctx.lang)
        tag = f" [#{webinar.id}]" if is_staff else ""
        when = show_time(webinar.starts_at, zone, ctx.lang)
        lines.append(f"\n{number}. {name}{tag}\n{when}\n{status}")
        choices.append(Choice(f"w:s{webinar.id}", _short(f"{number}. {name}")))
    body = "\n".join(lines)
    return _reply(ctx, f"{lead}\n\n{body}" if lead else body, choices, view="list")


def _details(ctx: Ctx, webinar_id: int, lead: str = "") -> list[Outgoing]:
    """One webinar in full, with what the reader can do about it."""
    webinar = db.get_webinar(session=ctx.session, webinar_id=webinar_id)
    if webinar is None:
        return show_list(ctx, lead=t("web_not_found", ctx.lang))
    if webinar.status == "cancelled":
        name = text.title(webinar, ctx.lang)
        return show_list(ctx, lead=t("web_cancelled", ctx.lang, title=name))
    registration = db.get_registration(
        session=ctx.session, webinar_id=webinar_id, contact_id=ctx.contact.id or 0
    )
    registered = registration is not None and registration.status == db.REGISTERED
    count = db.count_registered(session=ctx.session, webinar_ids=[webinar_id])[webinar_id]
    state = core.registration_state(webinar, count, ctx.now)
    seats = None
    if webinar.capacity is not None and state == "open" and not registered:
        seats = webinar.capacity - count
    zone, source = text.reader_zone(webinar, ctx.contact, registration)
    body = text.details(webinar, zone, source, ctx.lang, seats_left=seats, with_link=registered)
    status = "web_status_registered" if registered else f"web_status_{state}"
    if registered or state != "open":
        body = f"{body}\n{t(status, ctx.lang)}"
    choices = _actions(ctx, webinar_id, registered=registered, open_=state == "open")
    return _reply(ctx, f"{lead}\n\n{body}" if lead else body, choices, view="details")


def _actions(ctx: Ctx, webinar_id: int, *, registered: bool, open_: bool) -> list[Choice]:
    """The buttons under a webinar's details."""
    found: list[Choice] = []
    if registered:
        found.append(Choice(f"w:c{webinar_id}", t("web_button_calendar", ctx.lang)))
        found.append(Choice(f"w:u{webinar_id}", t("web_button_unregister", ctx.lang)))
    elif open_:
        found.append(Choice(f"w:r{webinar_id}", t("web_button_register", ctx.lang)))
    found.append(Choice("w:l", t("web_button_all", ctx.lang)))
    return found


# -- registering --------------------------------------------------------------------------------


def _register(ctx: Ctx, webinar_id: int, source: str) -> list[Outgoing]:
    """Register the contact and confirm with the times, the link and what comes next."""
    outcome = core.register(
        session=ctx.session, webinar_id=webinar_id, contact=ctx.contact, now=ctx.now, source=source
    )
    webinar = outcome.webinar
    if webinar is None:
        return show_list(ctx, lead=t("web_not_found", ctx.lang))
    name = text.title(webinar, ctx.lang)
    if outcome.status not in ("registered", "already"):
        return _reply(
            ctx,
            t(f"web_{outcome.status}", ctx.lang, title=name),
            [Choice("w:l", t("web_button_all", ctx.lang))],
            view="closed",
        )
    key = "web_registered" if outcome.status == "registered" else "web_already"
    lead = t(key, ctx.lang, title=name)
    if webinar.reminder_offsets:
        reminders = text.offsets_label(webinar.reminder_offsets, ctx.lang)
        lead = f"{lead}\n{t('web_registered_reminders', ctx.lang, reminders=reminders)}"
    zone, source_zone = text.reader_zone(webinar, ctx.contact, outcome.registration)
    body = text.details(webinar, zone, source_zone, ctx.lang, with_link=True)
    choices = _actions(ctx, webinar_id, registered=True, open_=True)
    return _reply(ctx, f"{lead}\n\n{body}", choices, view="details")


def _unregister(ctx: Ctx, webinar_id: int) -> list[Outgoing]:
    """Withdraw the contact's registration."""
    outcome = core.unregister(
        session=ctx.session, webinar_id=webinar_id, contact=ctx.contact, now=ctx.now
    )
    if outcome.webinar is None:
        return show_list(ctx, lead=t("web_not_found", ctx.lang))
    name = text.title(outcome.webinar, ctx.lang)
    key = "web_unregistered" if outcome.status == "unregistered" else "web_not_registered"
    return _details(ctx, webinar_id, lead=t(key, ctx.lang, title=name))


def _calendar(ctx: Ctx, webinar_id: int) -> list[Outgoing]:
    """Send the webinar as an .ics file."""
    webinar = db.get_webinar(session=ctx.session, webinar_id=webinar_id)
    if webinar is None:
        return show_list(ctx, lead=t("web_not_found", ctx.lang))
    return [text.calendar_file(webinar, ctx.lang, ctx.now)]


# -- the post-webinar survey --------------------------------------------------------------------


def _start_survey(ctx: Ctx, webinar_id: int) -> list[Outgoing]:
    """Start the post-webinar survey for a registrant, once, after the webinar started."""
    webinar = db.get_webinar(session=ctx.session, webinar_id=webinar_id)
    if webinar is None:
        return show_list(ctx, lead=t("web_not_found", ctx.lang))
    name = text.title(webinar, ctx.lang)
    registration = db.get_registration(
        session=ctx.session, webinar_id=webinar_id, contact_id=ctx.contact.id or 0
    )
    if (
        registration is None
        or registration.status != db.REGISTERED
        or (ctx.now < webinar.starts_at)
    ):
        return [main_menu(ctx, lead=t("web_survey_closed", ctx.lang, title=name))]
    if registration.feedback_at is not None:
        return [main_menu(ctx, lead=t("web_survey_answered", ctx.lang, title=name))]
    replies = runs.start(ctx, text.SURVEY)
    run = surveys.active_run(session=ctx.session, contact_id=ctx.contact.id or 0)
    assert run is not None
    run.state = {**run.state, "webinar_id": webinar_id}
    surveys.save_run(session=ctx.session, run=run)
    logger.info("webinar survey started webinar=%s run=%s", webinar_id, run.id)
    return replies


@runs.on_submit("webinar_survey")
def _survey_submitted(
    ctx: Ctx, run: SurveyRun, definition: Definition, results: dict[str, Any]
) -> None:
    """Store the survey (linked to the contact only with consent) and note it on the registration.

    The certificate name is kept on the registration (erasable), not in the answers.
    """
    webinar_id = run.state.get("webinar_id")
    answers = {**results, "webinar_id": webinar_id}
    certificate = answers.pop("certificate_name", None)
    answers["certificate_requested"] = bool(certificate)
    consented = ctx.contact.consent_at is not None
    response_id = surveys.save_response(
        session=ctx.session,
        run=run,
        version=definition.version,
        language=ctx.lang,
        answers=answers,
        now=ctx.now,
        contact_id=ctx.contact.id if consented else None,
        country_code=ctx.contact.country_code if consented else None,
        city_name=ctx.contact.city_name if consented else None,
    )
    if isinstance(webinar_id, int):
        registration = db.get_registration(
            session=ctx.session, webinar_id=webinar_id, contact_id=ctx.contact.id or 0
        )
        if registration is not None:
            db.record_feedback(
                session=ctx.session,
                registration=registration,
                response_id=response_id,
                certificate_name=certificate,
                now=ctx.now,
            )
    logger.info("webinar survey submitted webinar=%s run=%s", webinar_id, run.id)


# -- buttons, deep links, typed numbers ---------------------------------------------------------

_ACTIONS = {
    "s": _details,
    "c": _calendar,
    "u": _unregister,
    "f": _start_survey,
}


@features.choice("w")
def on_button(ctx: Ctx, value: str) -> list[Outgoing]:
    """Handle a webinar button (`w:r12` …); a stale or unknown one shows the list."""
    action, rest = value[:1], value[1:]
    if action == "l" or not rest.isdecimal():
        return show_list(ctx)
    webinar_id = int(rest)
    if action == "r":
        return _register(ctx, webinar_id, "button")
    if action in ("k", "n"):
        return staff.confirm_cancel(ctx, webinar_id, confirmed=action == "k")
    handler = _ACTIONS.get(action)
    return handler(ctx, webinar_id) if handler else show_list(ctx)


@features.deep_link("w")
def on_deep_link(ctx: Ctx, rest: str) -> list[Outgoing]:
    """`/start w12` registers for webinar 12; `/start w` lists the webinars."""
    if rest.isdecimal():
        return _register(ctx, int(rest), "deep_link")
    return show_list(ctx)


@features.text_handler
def on_typed(ctx: Ctx, typed: str) -> list[Outgoing] | None:
    """A number typed after webinar buttons picks that button (None when it is not one)."""
    if ctx.contact.prompt != PROMPT:
        return None
    cleaned = typed.strip().rstrip(".)")
    actions = ctx.contact.prompt_data.get("actions") or []
    if not cleaned.isdecimal() or not 1 <= int(cleaned) <= len(actions):
        return None
    return on_button(ctx, str(actions[int(cleaned) - 1]).partition(":")[2])
