"""Broadcast commands in chat: compose, list, preview, send, figures, cancel and retry (/bc…)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from handlers import (
    broadcasts_cancel_retry,
    broadcasts_compose,
    broadcasts_preview,
    broadcasts_sending,
    broadcasts_stats,
    features,
    runs,
)
from handlers.broadcasts_compose import BroadcastError
from handlers.context import Ctx
from handlers.i18n import t
from handlers.messages import Outgoing
from handlers.staff_chat import _say
from storage import broadcasts as bc_db
from storage.staff_models import Broadcast

COMPOSE_FORM, SEND_FORM = "staff_broadcast", "staff_broadcast_send"


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
