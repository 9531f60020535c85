"""Staff commands in chat: roles, audit, broadcasts, reports and exports.

The router role-checks every command registered here and audits the attempt (`staff:<name>`
or `staff_denied`); this module audits what the command then did (`staff_promote`,
`broadcast_scheduled`, `export` …). Form submissions are checked again, since a role may be
taken away while a form is open. Broadcasts are composed with two forms: the compose form
(texts and segment) saves a draft and posts its preview; the send form that follows sends,
schedules or discards it.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from typing import Any

from handlers import (
    broadcasts_cancel_retry,
    broadcasts_compose,
    broadcasts_preview,
    broadcasts_segments,
    broadcasts_sending,
    broadcasts_stats,
    features,
    runs,
)
from handlers.broadcasts_compose import BroadcastError
from handlers.context import Ctx
from handlers.definitions import Definition, catalog
from handlers.i18n import strings, t
from handlers.messages import Attachment, Outgoing
from handlers.notify import queue_for_contact
from storage import audit, contacts
from storage import broadcasts as bc_db
from storage import staff as staff_db
from storage.models import Contact, SurveyRun
from storage.staff_models import Broadcast

logger = logging.getLogger(__name__)

COMPOSE_FORM, SEND_FORM = "staff_broadcast", "staff_broadcast_send"


def _is_staff(ctx: Ctx) -> bool:
    """Say whether the contact is staff or admin now."""
    return ctx.contact.staff_role in staff_db.ROLES


def _say(text: str) -> list[Outgoing]:
    """A staff reply."""
    return [Outgoing(text=text, kind="staff")]


def _post(ctx: Ctx, text: str, key: str) -> None:
    """Queue a message to the staff member outside the reply (from a form submission)."""
    queue_for_contact(
        session=ctx.session,
        contact=ctx.contact,
        message=Outgoing(text=text, kind="staff"),
        kind="staff",
        key=key,
        now=ctx.now,
    )


def _number(args: str) -> int | None:
    """Read a broadcast number such as `12` or `#12` from the arguments."""
    first = args.split(None, 1)[0].lstrip("#") if args.strip() else ""
    return int(first) if first.isdecimal() else None


def _broadcast(ctx: Ctx, args: str, usage: str) -> tuple[Any, list[Outgoing] | None]:
    """Find the broadcast named in the arguments, or the reply saying what is wrong."""
    number = _number(args)
    if number is None:
        return None, _say(t(usage, ctx.lang))
    found = bc_db.get_broadcast(session=ctx.session, broadcast_id=number)
    if found is None:
        return None, _say(t("staff_bc_not_found", ctx.lang, id=number))
    return found, None


def _error(ctx: Ctx, error: BroadcastError) -> list[Outgoing]:
    """Say why a broadcast action was refused."""
    values = dict(error.values)
    if "status" in values:
        values["status"] = t(f"staff_bcstatus_{values['status']}", ctx.lang)
    return _say(t(error.key, ctx.lang, **values))


# -- help, team, roles, audit ----------------------------------------------------------------


@features.staff_command("staff")
def staff_help(ctx: Ctx, _args: str) -> list[Outgoing]:
    """List the staff commands you may use: /staff."""
    lines = [t("staff_help_title", ctx.lang)]
    for name in sorted(features.STAFF):
        command = features.STAFF[name]
        if not features.may_run(ctx.contact.staff_role, command):
            continue
        key = f"staff_cmd_{name}"
        summary = t(key, ctx.lang) if key in strings() else command.summary
        lines.append(f"/{name} — {summary}")
    return _say("\n".join(lines))


def _who(contact: Contact, urns: list[str]) -> str:
    """A contact as staff see it: number, name, addresses."""
    name = contact.name or "—"
    return f"#{contact.id} {name} ({', '.join(urns) or '—'})"


@features.staff_command("team")
def team(ctx: Ctx, _args: str) -> list[Outgoing]:
    """List staff and admins: /team."""
    lines = [t("staff_team_title", ctx.lang)]
    for member, urns in staff_db.staff_members(session=ctx.session):
        role = t(f"staff_role_{member.staff_role}", ctx.lang)
        lines.append(f"• {role}: {_who(member, urns)}")
    return _say("\n".join(lines))


def _target(ctx: Ctx, text: str, *, create: bool) -> Contact | None:
    """The contact named by a URN (`telegram:123`) or a number (`#12`)."""
    text = text.strip()
    if text.lstrip("#").isdecimal():
        return contacts.get_contact(session=ctx.session, contact_id=int(text.lstrip("#")))
    try:
        contacts.channel_of(text)
    except ValueError:
        return None
    if create:
        found, _new = contacts.get_or_create_contact(session=ctx.session, urn=text, now=ctx.now)
        return found
    return contacts.get_contact_by_urn(session=ctx.session, urn=text)


@features.staff_command("promote", role="admin")
def promote(ctx: Ctx, args: str) -> list[Outgoing]:
    """Give a contact a staff role: /promote <urn or #id> [staff|admin]."""
    parts = args.split()
    role = parts[1].lower() if len(parts) > 1 else "staff"
    if not parts or role not in staff_db.ROLES:
        return _say(t("staff_promote_usage", ctx.lang))
    target = _target(ctx, parts[0], create=True)
    if target is None:
        return _say(t("staff_no_contact", ctx.lang, who=parts[0]))
    previous = target.staff_role
    if previous == "admin" and role != "admin" and staff_db.admin_count(session=ctx.session) <= 1:
        return _say(t("staff_last_admin", ctx.lang))
    staff_db.set_role(session=ctx.session, contact=target, role=role)
    audit.record(
        session=ctx.session,
        action="staff_promote",
        now=ctx.now,
        actor_contact_id=ctx.contact.id,
        subject=f"contact:{target.id}",
        details={"role": role, "previous": previous},
    )
    logger.info("staff role set contact=%s role=%s actor=%s", target.id, role, ctx.contact.id)
    shown = t(f"staff_role_{role}", ctx.lang)
    return _say(t("staff_promoted", ctx.lang, id=target.id, role=shown))


@features.staff_command("demote", role="admin")
def demote(ctx: Ctx, args: str) -> list[Outgoing]:
    """Take a contact's staff role away: /demote <urn or #id>."""
    parts = args.split()
    if not parts:
        return _say(t("staff_demote_usage", ctx.lang))
    target = _target(ctx, parts[0], create=False)
    if target is None or target.staff_role is None:
        return _say(t("staff_no_contact", ctx.lang, who=parts[0]))
    if target.staff_role == "admin" and staff_db.admin_count(session=ctx.session) <= 1:
        return _say(t("staff_last_admin", ctx.lang))
    previous = target.staff_role
    staff_db.set_role(session=ctx.session, contact=target, role=None)
    audit.record(
        session=ctx.session,
        action="staff_demote",
        now=ctx.now,
        actor_contact_id=ctx.contact.id,
        subject=f"contact:{target.id}",
        details={"previous": previous},
    )
    logger.info("staff role removed contact=%s actor=%s", target.id, ctx.contact.id)
    text = t("staff_demoted", ctx.lang, id=target.id)
    urns = contacts.urns_of(session=ctx.session, contact_id=target.id or 0)
    if any(urn in ctx.config.staff_urns for urn in urns):
        text += "\n" + t("staff_demote_bootstrap", ctx.lang)
    return _say(text)


@features.staff_command("audit", role="admin")
def audit_log(ctx: Ctx, args: str) -> list[Outgoing]:
    """Show the latest audit entries: /audit [count] [action prefix]."""
    parts = args.split()
    limit = min(int(parts[0]), 100) if parts and parts[0].isdecimal() else 15
    prefix = next((p for p in parts if not p.isdecimal()), None)
    entries = staff_db.recent_audit(session=ctx.session, limit=limit, prefix=prefix)
    lines = [t("staff_audit_title", ctx.lang, count=len(entries))]
    for entry in entries:
        actor = f"#{entry.actor_contact_id}" if entry.actor_contact_id else "system"
        subject = f" → {entry.subject}" if entry.subject else ""
        lines.append(f"{entry.at:%Y-%m-%d %H:%M} {entry.action} {actor}{subject}")
    return _say("\n".join(lines))


# -- broadcasts ------------------------------------------------------------------------------


@features.staff_command("broadcast")
def compose(ctx: Ctx, _args: str) -> list[Outgoing]:
    """Compose a broadcast (texts, segment, preview, send): /broadcast."""
    return runs.start(ctx, COMPOSE_FORM)


@features.staff_command("broadcasts")
def list_broadcasts(ctx: Ctx, _args: str) -> list[Outgoing]:
    """List the latest broadcasts: /broadcasts."""
    items = bc_db.list_broadcasts(session=ctx.session, limit=10)
    return _say(
        broadcasts_stats.list_text(items, ctx.lang) + "\n" + t("staff_bc_list_hint", ctx.lang)
    )


def _preview_text(ctx: Ctx, broadcast: Any) -> str:
    """The preview of a broadcast for this staff member."""
    templates = broadcasts_preview.template_languages(
        broadcasts_preview.templates_file(ctx.config)
    )
    found = broadcasts_preview.preview(
        session=ctx.session, broadcast=broadcast, now=ctx.now, templates=templates
    )
    return broadcasts_preview.preview_text(broadcast, found, ctx.lang)


@features.staff_command("bcpreview")
def preview(ctx: Ctx, args: str) -> list[Outgoing]:
    """Preview who a broadcast would reach: /bcpreview <number>."""
    broadcast, problem = _broadcast(ctx, args, "staff_bc_usage_preview")
    if problem is not None:
        return problem
    hint = t("staff_bc_send_hint", ctx.lang, id=broadcast.id)
    return _say(_preview_text(ctx, broadcast) + "\n\n" + hint)


def _when(text: str) -> datetime | None:
    """Read `YYYY-MM-DD HH:MM` (UTC)."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    except ValueError:
        return None


@features.staff_command("bcsend")
def send(ctx: Ctx, args: str) -> list[Outgoing]:
    """Send a draft now or at a time (UTC): /bcsend <number> now | YYYY-MM-DD HH:MM."""
    broadcast, problem = _broadcast(ctx, args, "staff_bc_usage_send")
    if problem is not None:
        return problem
    rest = args.split(None, 1)[1].strip() if len(args.split(None, 1)) > 1 else ""
    if not rest:
        hint = t("staff_bc_send_hint", ctx.lang, id=broadcast.id)
        return _say(_preview_text(ctx, broadcast) + "\n\n" + hint)
    at = None if rest.lower() == "now" else _when(rest)
    if rest.lower() != "now" and (at is None or at <= ctx.now):
        return _say(t("staff_bc_bad_time", ctx.lang, id=broadcast.id))
    try:
        _schedule(ctx, broadcast, at)
    except BroadcastError as error:
        return _error(ctx, error)
    if broadcast.notify_contact_id is None:
        bc_db.save_broadcast(
            session=ctx.session,
            broadcast=broadcast,
            now=ctx.now,
            notify_contact_id=ctx.contact.id,
        )
    if at is None:
        broadcasts_sending.start_now(session=ctx.session, broadcast=broadcast, now=ctx.now)
    return _say(_scheduled_text(ctx, broadcast, at))


def _schedule(ctx: Ctx, broadcast: Broadcast, at: datetime | None) -> None:
    """Confirm a draft from chat: send it at `at` (UTC), or now when None."""
    broadcasts_compose.schedule(
        session=ctx.session,
        broadcast=broadcast,
        at=at,
        now=ctx.now,
        actor=ctx.contact.id,
        via="chat",
    )


def _scheduled_text(ctx: Ctx, broadcast: Any, at: datetime | None) -> str:
    """Confirm that a broadcast will go now or at a time."""
    if at is None:
        return t("staff_bc_sending_now", ctx.lang, id=broadcast.id)
    return t("staff_bc_scheduled", ctx.lang, id=broadcast.id, at=f"{at:%Y-%m-%d %H:%M}")


@features.staff_command("bcstats")
def stats(ctx: Ctx, args: str) -> list[Outgoing]:
    """Show a broadcast's status and delivery figures: /bcstats <number>."""
    broadcast, problem = _broadcast(ctx, args, "staff_bc_usage_stats")
    if problem is not None:
        return problem
    found = broadcasts_sending.advance(session=ctx.session, broadcast_id=broadcast.id, now=ctx.now)
    if found is None:
        found = bc_db.stats(session=ctx.session, broadcast_id=broadcast.id)
    text = broadcasts_stats.stats_text(broadcast, found, ctx.lang)
    if broadcast.status == "draft":
        text += "\n" + t("staff_bc_send_hint", ctx.lang, id=broadcast.id)
    if broadcast.status in ("draft", "scheduled", "sending"):
        text += "\n" + t("staff_bc_cancel_hint", ctx.lang, id=broadcast.id)
    failed = broadcasts_stats.shown_counts(found).get("failed", 0)
    if failed and broadcast.status in ("sending", "done"):
        text += "\n" + t("staff_bc_retry_hint", ctx.lang, id=broadcast.id, count=failed)
    return _say(text)


@features.staff_command("bccancel")
def cancel(ctx: Ctx, args: str) -> list[Outgoing]:
    """Cancel a draft, scheduled or sending broadcast: /bccancel <number>."""
    broadcast, problem = _broadcast(ctx, args, "staff_bc_usage_cancel")
    if problem is not None:
        return problem
    try:
        withdrawn = broadcasts_cancel_retry.cancel(
            session=ctx.session, broadcast=broadcast, now=ctx.now, actor=ctx.contact.id, via="chat"
        )
    except BroadcastError as error:
        return _error(ctx, error)
    return _say(t("staff_bc_cancelled", ctx.lang, id=broadcast.id, count=withdrawn))


@features.staff_command("bcretry")
def retry(ctx: Ctx, args: str) -> list[Outgoing]:
    """Send a broadcast's failed messages again: /bcretry <number>."""
    broadcast, problem = _broadcast(ctx, args, "staff_bc_usage_retry")
    if problem is not None:
        return problem
    try:
        queued, skipped = broadcasts_cancel_retry.retry(
            session=ctx.session, broadcast=broadcast, now=ctx.now, actor=ctx.contact.id, via="chat"
        )
    except BroadcastError as error:
        return _error(ctx, error)
    text = t("staff_bc_retried", ctx.lang, id=broadcast.id, count=queued)
    if skipped:
        named = {k: t(f"staff_excluded_{k}", ctx.lang) for k in skipped}
        counts = ", ".join(f"{named[k]} {n}" for k, n in skipped.items())
        text += "\n" + t("staff_bc_retry_skipped", ctx.lang, counts=counts)
    return _say(text)


def _segment(ctx: Ctx, results: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The segment spec of the compose form's answers, and the countries not recognised."""
    chosen = set(results.get("segment") or [])
    if "everyone" in chosen or not chosen:
        return {}, []
    spec: dict[str, Any] = {}
    unknown: list[str] = []
    if "country" in chosen:
        codes, unknown = broadcasts_segments.countries_from_text(
            str(results.get("countries") or ""), ctx.places.country
        )
        spec["country"] = codes
    if "city" in chosen:
        spec["city"] = broadcasts_segments.cities_from_text(str(results.get("cities") or ""))
    answers = {
        "region": "regions",
        "role": "roles",
        "focus": "focus",
        "language": "audience_languages",
        "channel": "channels",
    }
    for kind, question in answers.items():
        if kind in chosen:
            spec[kind] = list(results.get(question) or [])
    if "webinar" in chosen:
        number = results.get("webinar")
        spec["webinar"] = [int(number)] if number is not None else []
    if "donations" in chosen:
        spec["donations"] = True
    return spec, unknown


@runs.on_submit("staff_broadcast_draft")
def _drafted(ctx: Ctx, run: SurveyRun, definition: Definition, results: dict[str, Any]) -> None:
    """Save the composed broadcast as a draft, post its preview, then ask what to do with it."""
    if not _is_staff(ctx):
        _refused(ctx, run)
        return
    texts_by_lang = results.get("text") or {}
    order = [lang for lang in results.get("languages") or [] if lang in texts_by_lang]
    texts = {lang: str(texts_by_lang[lang]) for lang in order}
    spec, unknown = _segment(ctx, results)
    try:
        draft = broadcasts_compose.create_draft(
            session=ctx.session,
            title=str(results.get("title") or ""),
            texts=texts,
            segment=spec,
            default_language=ctx.config.default_language,
            now=ctx.now,
            created_by=ctx.contact.id,
            via="chat",
            unknown_values=unknown,
        )
    except BroadcastError as error:
        _post(ctx, t(error.key, ctx.lang, **error.values), f"bcform:{run.id}")
        return
    _post(ctx, _preview_text(ctx, draft), f"bcpv:{draft.id}:{run.id}")
    if SEND_FORM in catalog():
        run.state = {**run.state, "then": SEND_FORM}


@runs.on_submit("staff_broadcast_send")
def _decided(ctx: Ctx, run: SurveyRun, definition: Definition, results: dict[str, Any]) -> None:
    """Send, schedule or discard the staff member's latest draft."""
    if not _is_staff(ctx):
        _refused(ctx, run)
        return
    draft = bc_db.latest_draft(session=ctx.session, created_by=ctx.contact.id or 0)
    key = f"bcsend:{run.id}"
    if draft is None:
        _post(ctx, t("staff_bc_no_draft", ctx.lang), key)
        return
    choice = results.get("when")
    try:
        if choice == "discard":
            broadcasts_cancel_retry.cancel(
                session=ctx.session, broadcast=draft, now=ctx.now, actor=ctx.contact.id, via="chat"
            )
            return
        at: datetime | None = None
        if choice == "later":
            day = date.fromisoformat(str(results.get("date")))
            at = datetime.combine(day, time(int(results.get("hour") or 0)), tzinfo=UTC)
            if at <= ctx.now:
                _post(ctx, t("staff_bc_bad_time", ctx.lang, id=draft.id), key)
                return
        _schedule(ctx, draft, at)
    except BroadcastError as error:
        _post(ctx, t(error.key, ctx.lang, **error.values), key)
        return
    _post(ctx, _scheduled_text(ctx, draft, at), key)
    if at is None:
        broadcasts_sending.start_now(session=ctx.session, broadcast=draft, now=ctx.now)


def _refused(ctx: Ctx, run: SurveyRun) -> None:
    """Refuse a staff form submitted by someone who is no longer staff, and audit it."""
    audit.record(
        session=ctx.session,
        action="staff_denied",
        now=ctx.now,
        actor_contact_id=ctx.contact.id,
        subject=run.survey_id,
    )
    logger.warning("staff form refused run=%s contact=%s", run.id, ctx.contact.id)
    _post(ctx, t("staff_not_allowed", ctx.lang), f"bcdeny:{run.id}")


# -- reports and exports ---------------------------------------------------------------------


@features.staff_command("report")
def report(ctx: Ctx, args: str) -> list[Outgoing]:
    """Survey, donation and webinar figures with charts: /report [surveys|donations|webinars]."""
    from handlers import reports

    wanted = [w for w in args.lower().split() if w in reports.SECTIONS]
    directory = reports.files_dir(ctx.config)
    reports.prune(directory)
    built = reports.build(
        session=ctx.session,
        lang=ctx.lang,
        now=ctx.now,
        directory=directory,
        sections=wanted or reports.SECTIONS,
    )
    audit.record(
        session=ctx.session,
        action="report",
        now=ctx.now,
        actor_contact_id=ctx.contact.id,
        details={"sections": wanted or list(reports.SECTIONS), "charts": len(built.charts)},
    )
    images = tuple(Attachment(kind="image", filename=p.name, path=str(p)) for p in built.charts)
    return [Outgoing(text=built.text, attachments=images, kind="staff")]


@features.staff_command("export")
def export(ctx: Ctx, args: str) -> list[Outgoing]:
    """Export data as a file: /export <kind> [csv|xlsx] [language] [survey]."""
    from handlers import exports, reports

    words = args.split()
    kind = next((w for w in words if w in exports.KINDS), None)
    if kind is None:
        return _say(t("staff_export_usage", ctx.lang, kinds=", ".join(exports.KINDS)))
    fmt = next((w for w in words if w.lower() in exports.FORMATS), "xlsx").lower()
    lang = next((w for w in words if w in ctx.config.supported_languages), ctx.lang)
    survey = next((w for w in words if w in catalog()), None)
    directory = reports.files_dir(ctx.config)
    reports.prune(directory)
    path = reports.new_file(directory, f"export-{kind}", f".{fmt}", ctx.now)
    try:
        done = exports.export(
            session=ctx.session, kind=kind, fmt=fmt, lang=lang, path=path, survey=survey
        )
    except exports.ExportError as error:
        return _say(t(error.key, ctx.lang, **error.values))
    audit.record(
        session=ctx.session,
        action="export",
        now=ctx.now,
        actor_contact_id=ctx.contact.id,
        subject=kind,
        details={"format": fmt, "language": lang, "survey": survey, "rows": done.rows},
    )
    document = Attachment(kind="document", filename=path.name, path=str(path))
    text = t("staff_export_done", ctx.lang, kind=kind, rows=done.rows)
    return [Outgoing(text=text, attachments=(document,), kind="staff")]
