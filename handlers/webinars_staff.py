"""Webinar staff commands in chat: create (a form), edit, cancel (confirmed), figures.

The router role-checks and audits `/webinar_*` commands; the cancel confirmation button is
checked here again, since buttons are not staff commands.
"""

from __future__ import annotations

import logging
from datetime import date, time, timedelta
from typing import Any

from handlers import features, runs
from handlers import webinars_core as core
from handlers import webinars_text as text
from handlers.context import Ctx
from handlers.definitions import Definition
from handlers.i18n import t
from handlers.menu import main_menu
from handlers.messages import Choice, Outgoing
from handlers.notify import queue_for_contact
from handlers.webinars_time import local_to_utc, show_time, zone_of
from storage import audit
from storage import webinars as db
from storage.models import SurveyRun
from storage.webinars_models import Webinar

logger = logging.getLogger(__name__)


def _is_staff(ctx: Ctx) -> bool:
    """Say whether the contact is staff or admin."""
    return ctx.contact.staff_role in ("staff", "admin")


def _say(ctx: Ctx, body: str) -> list[Outgoing]:
    """A staff reply followed by the main menu."""
    return [main_menu(ctx, lead=body)]


@features.staff_command("webinar_new")
def new_webinar(ctx: Ctx, _args: str) -> list[Outgoing]:
    """Create a webinar (a form): /webinar_new."""
    return runs.start(ctx, text.CREATE_FORM)


@features.staff_command("webinar_edit")
def edit_webinar(ctx: Ctx, args: str) -> list[Outgoing]:
    """Change a webinar and tell its registrants: /webinar_edit <id> <field> <value>."""
    parts = args.split(None, 2)
    if len(parts) < 3 or not parts[0].lstrip("#").isdecimal():
        return _say(ctx, t("web_staff_help", ctx.lang))
    webinar_id = int(parts[0].lstrip("#"))
    webinar = db.get_webinar(session=ctx.session, webinar_id=webinar_id)
    try:
        if webinar is None:
            raise core.WebinarError(f"no webinar #{webinar_id}")
        changes = core.parse_change(webinar, parts[1], parts[2])
        result = core.edit_webinar(
            session=ctx.session,
            webinar_id=webinar_id,
            changes=changes,
            now=ctx.now,
            actor_contact_id=ctx.contact.id,
        )
    except core.WebinarError as exc:
        return _say(ctx, t("web_staff_error", ctx.lang, error=str(exc)))
    if not result.changed:
        return _say(ctx, t("web_staff_unchanged", ctx.lang, id=webinar_id))
    fields = ", ".join(result.changed)
    edited = t(
        "web_staff_edited", ctx.lang, id=webinar_id, fields=fields, notified=result.notified
    )
    return _say(ctx, edited)


@features.staff_command("webinar_cancel")
def cancel_webinar(ctx: Ctx, args: str) -> list[Outgoing]:
    """Cancel a webinar, after confirming (registrants are told): /webinar_cancel <id>."""
    raw = args.strip().lstrip("#")
    webinar = db.get_webinar(session=ctx.session, webinar_id=int(raw)) if raw.isdecimal() else None
    if webinar is None or webinar.id is None:
        return _say(ctx, t("web_staff_help", ctx.lang))
    count = db.count_registered(session=ctx.session, webinar_ids=[webinar.id])[webinar.id]
    question = t(
        "web_staff_cancel_ask",
        ctx.lang,
        id=webinar.id,
        title=text.title(webinar, ctx.lang),
        time=show_time(webinar.starts_at, webinar.timezone, ctx.lang),
        registered=count,
    )
    choices = (
        Choice(f"w:k{webinar.id}", t("web_staff_cancel_yes", ctx.lang)),
        Choice(f"w:n{webinar.id}", t("web_staff_cancel_no", ctx.lang)),
    )
    return [Outgoing(text=question, choices=choices)]


def confirm_cancel(ctx: Ctx, webinar_id: int, *, confirmed: bool) -> list[Outgoing]:
    """Cancel (or keep) a webinar from the confirmation buttons; staff only, audited."""
    if not _is_staff(ctx):
        audit.record(
            session=ctx.session,
            action="staff_denied",
            now=ctx.now,
            actor_contact_id=ctx.contact.id,
            subject="webinar_cancel",
        )
        return [main_menu(ctx, lead=t("stale_button", ctx.lang))]
    if not confirmed:
        return _say(ctx, t("web_staff_kept", ctx.lang, id=webinar_id))
    try:
        result = core.cancel_webinar(
            session=ctx.session,
            webinar_id=webinar_id,
            now=ctx.now,
            actor_contact_id=ctx.contact.id,
        )
    except core.WebinarError as exc:
        return _say(ctx, t("web_staff_error", ctx.lang, error=str(exc)))
    return _say(ctx, t("web_staff_cancelled", ctx.lang, id=webinar_id, notified=result.notified))


@features.staff_command("webinar_stats")
def webinar_stats(ctx: Ctx, args: str) -> list[Outgoing]:
    """Registrations by country and language, reminder delivery: /webinar_stats [id]."""
    raw = args.strip().lstrip("#")
    if raw.isdecimal():
        webinar = db.get_webinar(session=ctx.session, webinar_id=int(raw))
        if webinar is None:
            return _say(ctx, t("web_staff_error", ctx.lang, error=f"no webinar #{raw}"))
        return _say(ctx, stats_text(ctx, webinar))
    recent = db.list_webinars(session=ctx.session, since=ctx.now - timedelta(days=30))
    counts = db.count_registered(session=ctx.session, webinar_ids=[w.id or 0 for w in recent])
    lines = [
        f"#{w.id} {text.title(w, ctx.lang)}: "
        f"{show_time(w.starts_at, w.timezone, ctx.lang)} ({w.status}), {counts[w.id or 0]}"
        for w in recent
    ]
    body = "\n".join(lines) if lines else t("web_none", ctx.lang)
    return _say(ctx, t("web_staff_overview", ctx.lang, lines=body))


def _pairs(counts: dict[str, int], lang: str) -> str:
    """`SL 12, CN 8` (largest first), or `none`."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{key} {n}" for key, n in ordered) or t("web_none", lang)


def _nested(counts: dict[str, dict[str, int]], lang: str) -> str:
    """`reminder: queued 40, scheduled 2; survey: scheduled 42`, or `none`."""
    parts = [f"{kind}: {_pairs(inner, lang)}" for kind, inner in sorted(counts.items())]
    return "; ".join(parts) or t("web_none", lang)


def stats_text(ctx: Ctx, webinar: Webinar) -> str:
    """One webinar's registrations and reminder delivery, for staff."""
    regs = db.registration_stats(session=ctx.session, webinar_id=webinar.id)
    rems = db.reminder_stats(session=ctx.session, webinar_id=webinar.id)
    return t(
        "web_staff_stats",
        ctx.lang,
        id=webinar.id,
        title=text.title(webinar, ctx.lang),
        time=show_time(webinar.starts_at, webinar.timezone, ctx.lang),
        status=webinar.status,
        registered=regs["registered"],
        unregistered=regs["unregistered"],
        countries=_pairs(regs["by_country"], ctx.lang),
        languages=_pairs(regs["by_language"], ctx.lang),
        reminders=_nested(rems["by_kind"], ctx.lang),
        delivery=_nested(rems["delivery"], ctx.lang),
        skipped=_pairs(rems["reasons"], ctx.lang),
        surveys=regs["surveys_answered"],
        certificates=regs["certificates_requested"],
    )


# -- the create form ----------------------------------------------------------------------------


def spec_from_form(results: dict[str, Any]) -> core.WebinarSpec:
    """Build a webinar from the create form's answers; WebinarError when one cannot be used."""
    city = results.get("city") or {}
    zone = zone_of(city.get("timezone"))
    if zone is None:
        raise core.WebinarError(f"no time zone is known for {city.get('name', 'that city')}")
    hour, minute = core.parse_time_of_day(str(results.get("time", "")))
    try:
        starts_at = local_to_utc(date.fromisoformat(results["date"]), time(hour, minute), zone)
    except ValueError as exc:
        raise core.WebinarError(str(exc)) from exc
    titles, descriptions = {"en": str(results["title"])}, {"en": str(results["description"])}
    for lang, (title, description) in core.parse_translations(
        str(results.get("translations") or "")
    ).items():
        titles[lang] = title
        if description:
            descriptions[lang] = description
    hours = int(results.get("deadline_hours") or 0)
    return core.WebinarSpec(
        title=titles,
        description=descriptions,
        starts_at=starts_at,
        timezone=zone.key,
        duration_minutes=int(results["duration"]),
        join_url=str(results.get("link") or ""),
        interpretation=[c for c in results.get("interpretation") or [] if c != "none"],
        focus_area=results.get("focus"),
        capacity=int(results.get("capacity") or 0) or None,
        registration_deadline=starts_at - timedelta(hours=hours) if hours else None,
    )


@runs.on_submit("webinar_create")
def _create_submitted(
    ctx: Ctx, run: SurveyRun, definition: Definition, results: dict[str, Any]
) -> None:
    """Create the webinar from the form and tell the staff member its number or the problem."""
    if not _is_staff(ctx):
        logger.warning("webinar form by non-staff contact=%s", ctx.contact.id)
        return
    try:
        webinar = core.create_webinar(
            session=ctx.session,
            spec=spec_from_form(results),
            now=ctx.now,
            actor_contact_id=ctx.contact.id,
        )
        body = t(
            "web_staff_created",
            ctx.lang,
            id=webinar.id,
            title=text.title(webinar, ctx.lang),
            time=show_time(webinar.starts_at, webinar.timezone, ctx.lang),
        )
    except core.WebinarError as exc:
        body = t("web_staff_not_created", ctx.lang, error=str(exc))
    queue_for_contact(
        session=ctx.session,
        contact=ctx.contact,
        message=Outgoing(text=body),
        kind="reply",
        key=f"webform:{run.id}",
        now=ctx.now,
    )
