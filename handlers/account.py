"""What a person can do about themselves: language, /mydata, /forget, stop and start."""

from __future__ import annotations

import logging

from handlers.context import Ctx
from handlers.definitions import catalog, from_stored
from handlers.i18n import NATIVE_NAMES, pick, t
from handlers.menu import main_menu
from handlers.messages import Choice, Outgoing
from handlers.places import country_name
from storage import audit, contacts, inbox, outbox, surveys, webinars

logger = logging.getLogger(__name__)


def set_language(ctx: Ctx, lang: str) -> None:
    """Record the contact's explicit language choice and answer in it from now on."""
    contacts.update_contact(
        session=ctx.session, contact=ctx.contact, language=lang, language_source="explicit"
    )
    ctx.lang = lang


def my_data(ctx: Ctx) -> list[Outgoing]:
    """Show everything stored about the contact."""
    c = ctx.contact
    lang = ctx.lang
    none = t("not_given", lang)
    role = _role_label(c.role, lang) if c.role else none
    city = (
        f"{c.city_name}, {country_name(c.country_code, lang)}"
        if c.city_name and c.country_code
        else none
    )
    consent = (
        t(
            "consent_given_on",
            lang,
            version=c.consent_version,
            date=c.consent_at.date().isoformat(),
        )
        if c.consent_at
        else t("consent_not_given", lang)
    )
    urns = contacts.urns_of(session=ctx.session, contact_id=c.id or 0)
    counts = surveys.count_responses(session=ctx.session, contact_id=c.id or 0)
    answered = ", ".join(
        f"{pick(catalog()[s].title, lang) if s in catalog() else s} ({n})"
        for s, n in sorted(counts.items())
    )
    lines = [
        t("mydata_title", lang),
        f"• {t('field_name', lang)}: {c.name or none}",
        f"• {t('field_role', lang)}: {role}",
        f"• {t('field_organisation', lang)}: {c.organisation or none}",
        f"• {t('field_city', lang)}: {city}",
        f"• {t('field_timezone', lang)}: {c.timezone or none}",
        f"• {t('field_language', lang)}: {NATIVE_NAMES.get(c.language or '', none)}",
        f"• {t('field_channels', lang)}: {', '.join(urns)}",
        f"• {t('field_consent', lang)}: {consent}",
        f"• {t('field_responses', lang)}: {answered or none}",
        "",
        t("mydata_footer", lang),
    ]
    return [main_menu(ctx, lead="\n".join(lines))]


def _role_label(role: str, lang: str) -> str:
    """Return the localized label of a registration role."""
    option = catalog()["registration"].question("role").option(role)
    return pick(option.label, lang) if option else role


def ask_forget(ctx: Ctx) -> list[Outgoing]:
    """Ask the contact to confirm erasing their personal data."""
    contacts.update_contact(
        session=ctx.session, contact=ctx.contact, prompt="forget", prompt_data={}
    )
    return [
        Outgoing(
            text=t("forget_confirm", ctx.lang),
            choices=(
                Choice("f:yes", t("forget_yes", ctx.lang)),
                Choice("f:no", t("forget_no", ctx.lang)),
            ),
        )
    ]


def forget(ctx: Ctx) -> list[Outgoing]:
    """Erase the contact's personal data everywhere; answers stay only anonymised."""
    contact_id = ctx.contact.id or 0
    urns = contacts.urns_of(session=ctx.session, contact_id=contact_id)
    _strip_free_text(ctx, contact_id)
    anonymised = surveys.anonymise_contact_data(session=ctx.session, contact_id=contact_id)
    inbox.redact_events(session=ctx.session, urns=urns)
    outbox.redact_messages(session=ctx.session, contact_id=contact_id)
    webinars.forget_contact(session=ctx.session, contact_id=contact_id)
    contacts.erase_contact(session=ctx.session, contact=ctx.contact, now=ctx.now)
    audit.record(
        session=ctx.session,
        action="forget",
        now=ctx.now,
        subject=f"contact:{contact_id}",
        details={"responses_anonymised": anonymised, "urns": len(urns)},
    )
    logger.info("contact erased contact=%s", contact_id)
    return [Outgoing(text=t("forget_done", ctx.lang))]


def _strip_free_text(ctx: Ctx, contact_id: int) -> None:
    """Blank free-text answers of the contact's responses: they may name people."""
    for response in surveys.responses_of(session=ctx.session, contact_id=contact_id):
        stored = surveys.get_definition(session=ctx.session, definition_id=response.definition_id)
        if stored is None:
            continue
        free = {q.id for q in from_stored(stored.body).questions if q.type in ("text", "city")}
        kept = {k: (None if k in free else v) for k, v in response.answers.items()}
        surveys.replace_answers(session=ctx.session, response=response, answers=kept)


def stop(ctx: Ctx) -> list[Outgoing]:
    """Opt the contact out of every message but this confirmation; end any active run."""
    run = ctx.run
    if run is not None:
        surveys.end_run(session=ctx.session, run=run, status="cancelled", now=ctx.now)
    contacts.update_contact(
        session=ctx.session, contact=ctx.contact, opted_out=True, prompt=None, prompt_data={}
    )
    audit.record(
        session=ctx.session, action="opt_out", now=ctx.now, actor_contact_id=ctx.contact.id
    )
    return [Outgoing(text=t("stopped", ctx.lang), kind="opt_out")]


def start_again(ctx: Ctx) -> list[Outgoing]:
    """Opt the contact back in."""
    contacts.update_contact(session=ctx.session, contact=ctx.contact, opted_out=False)
    audit.record(
        session=ctx.session, action="opt_in", now=ctx.now, actor_contact_id=ctx.contact.id
    )
    return [main_menu(ctx, lead=t("restarted", ctx.lang))]
