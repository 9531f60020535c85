"""`citybot broadcast new | list | preview | stats | cancel | retry`: broadcasts from files."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine

from bot.cli_staff_broadcast_files import read_file, segment_of
from bot.cli_staff_io import LANG, cli_details, english
from bot.clock import SystemClock
from bot.settings import Settings
from handlers.broadcasts_cancel_retry import cancel, retry
from handlers.broadcasts_compose import BroadcastError, create_draft, schedule
from handlers.broadcasts_preview import audience_rows, preview, preview_text, template_languages
from handlers.broadcasts_segments import FLAGS, KINDS
from handlers.broadcasts_sending import advance
from handlers.broadcasts_stats import stats_text
from storage import audit
from storage import broadcasts as db
from storage.db import session_scope
from storage.staff_models import Broadcast


def channel_rates(settings: Settings) -> dict[str, float]:
    """Messages a second per channel to spread a broadcast at (the configured send rates)."""
    return {
        "telegram": settings.telegram_rate_per_second,
        "whatsapp": settings.whatsapp_rate_per_second,
    }


def load_broadcast(engine: Engine, broadcast_id: int) -> Broadcast:
    """Load a broadcast or fail with a message."""
    with session_scope(engine) as session:
        found = db.get_broadcast(session=session, broadcast_id=broadcast_id)
    if found is None:
        raise BroadcastError("staff_bc_not_found", id=broadcast_id)
    return found


def _print_preview(engine: Engine, settings: Settings, broadcast: Broadcast, out: Console) -> int:
    """Print a broadcast's preview as a table; return how many would get it."""
    templates = template_languages(settings.whatsapp_templates_file)
    with session_scope(engine) as session:
        found = preview(
            session=session, broadcast=broadcast, now=SystemClock().now(), templates=templates
        )
    out.print(preview_text(broadcast, found, LANG))
    table = Table(title="by channel and language")
    table.add_column("channel")
    table.add_column("language")
    table.add_column("count", justify="right")
    with session_scope(engine) as session:
        rows, _ = audience_rows(session=session, broadcast=broadcast, now=SystemClock().now())
    merged: dict[tuple[str, str], int] = {}
    for row in rows:
        if row.excluded is None:
            key = (row.channel or "?", row.language + (" (fallback)" if row.fallback else ""))
            merged[key] = merged.get(key, 0) + row.count
    for (channel, lang), count in sorted(merged.items()):
        table.add_row(channel, lang, str(count))
    out.print(table)
    return found.to_send


def _when(text: str | None) -> datetime | None:
    """Read a UTC time (`YYYY-MM-DD HH:MM` or ISO with an offset)."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError as exc:
        raise BroadcastError("staff_bc_usage_send") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _new(args: argparse.Namespace, settings: Settings, engine: Engine, out: Console) -> int:
    """Create a broadcast from a file, preview it, and confirm it (or keep the draft)."""
    data = read_file(args.file)
    spec, problems = segment_of(data, args.where)
    if problems:
        out.print(f"[red]not understood: {', '.join(problems)}[/red]")
        out.print(f"kinds: {', '.join((*KINDS, *FLAGS))}")
        return 2
    now = SystemClock().now()
    with session_scope(engine) as session:
        created = create_draft(
            session=session,
            title=args.title or str(data.get("title") or ""),
            texts=data["texts"],
            segment=spec,
            default_language=settings.default_language,
            now=now,
            created_by=None,
            via="cli",
        )
        audit.record(
            session=session,
            action="cli:broadcast_new",
            now=now,
            subject=f"broadcast:{created.id}",
            details=cli_details(file=args.file.name),
        )
    count = _print_preview(engine, settings, created, out)
    if args.draft:
        out.print(f"draft #{created.id} saved; send it with: citybot broadcast send {created.id}")
        return 0
    at = _when(args.at)
    question = f"Send #{created.id} to {count} contacts {'at ' + str(at) if at else 'now'}?"
    if not args.yes and not _confirm(question):
        out.print(f"kept as draft #{created.id}")
        return 0
    with session_scope(engine) as session:
        found = db.get_broadcast(session=session, broadcast_id=created.id or 0)
        assert found is not None
        schedule(session=session, broadcast=found, at=at, now=now, actor=None, via="cli")
    when = f"at {at:%Y-%m-%d %H:%M} UTC" if at else "now (the scheduler starts it)"
    out.print(f"broadcast #{created.id} scheduled {when}")
    return 0


def _confirm(question: str) -> bool:
    """Ask yes/no on the terminal (no on anything but y/yes)."""
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _list(engine: Engine, out: Console) -> int:
    """Print the latest broadcasts."""
    with session_scope(engine) as session:
        items = db.list_broadcasts(session=session, limit=20)
        table = Table(title="broadcasts")
        for name in ("#", "title", "status", "recipients", "excluded", "scheduled (UTC)"):
            table.add_column(name)
        for b in items:
            when = f"{b.scheduled_at:%Y-%m-%d %H:%M}" if b.scheduled_at else ""
            table.add_row(str(b.id), b.title, b.status, str(b.recipients), str(b.excluded), when)
    out.print(table)
    return 0


def _stats(engine: Engine, broadcast_id: int, out: Console) -> int:
    """Print a broadcast's status and delivery figures."""
    now = SystemClock().now()
    with session_scope(engine) as session:
        found = advance(session=session, broadcast_id=broadcast_id, now=now)
        if found is None:
            found = db.stats(session=session, broadcast_id=broadcast_id)
        broadcast = db.get_broadcast(session=session, broadcast_id=broadcast_id)
        assert broadcast is not None
        text = stats_text(broadcast, found, LANG)
    out.print(text)
    table = Table(title="by channel")
    table.add_column("channel")
    table.add_column("messages", justify="right")
    for channel, count in sorted(found.by_channel.items()):
        table.add_row(channel, str(count))
    out.print(table)
    return 0


def run_action(args: argparse.Namespace, settings: Settings, engine: Engine, out: Console) -> int:
    """Run a `broadcast` action other than `send`."""
    if args.action == "new":
        return _new(args, settings, engine, out)
    if args.action == "list":
        return _list(engine, out)
    if args.action == "preview":
        _print_preview(engine, settings, load_broadcast(engine, args.id), out)
        return 0
    if args.action == "stats":
        load_broadcast(engine, args.id)
        return _stats(engine, args.id, out)
    now = SystemClock().now()
    with session_scope(engine) as session:
        found = db.get_broadcast(session=session, broadcast_id=args.id)
        if found is None:
            raise BroadcastError("staff_bc_not_found", id=args.id)
        if args.action == "cancel":
            withdrawn = cancel(session=session, broadcast=found, now=now, actor=None, via="cli")
            out.print(english("staff_bc_cancelled", {"id": args.id, "count": withdrawn}))
        else:
            queued, skipped = retry(
                session=session,
                broadcast=found,
                now=now,
                actor=None,
                via="cli",
                rates=channel_rates(settings),
            )
            out.print(english("staff_bc_retried", {"id": args.id, "count": queued}))
            if skipped:
                out.print(f"not retried: {skipped}")
        audit.record(
            session=session,
            action=f"cli:broadcast_{args.action}",
            now=now,
            subject=f"broadcast:{args.id}",
            details=cli_details(),
        )
    return 0
