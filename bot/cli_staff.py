"""Staff commands of the `citybot` CLI: broadcasts, reports, exports, staff roles.

    citybot broadcast new FILE [--where KIND=V1,V2 …] [--at "YYYY-MM-DD HH:MM"] [--yes|--draft]
    citybot broadcast list | preview ID | stats ID | cancel ID | retry ID
    citybot broadcast send ID [--deliver [--rate N] [--record FILE] [--quiet]] [--watch]
    citybot report [--section surveys|donations|webinars …] [--lang fr] [--out DIR]
    citybot export KIND [--format csv|xlsx] [--lang fr] [--survey ID] [--out PATH]
    citybot staff list | promote URN [staff|admin] | demote URN | audit [N]

A broadcast file is YAML (`title`, `segment`, `texts: {en: …, fr: …}`) or Markdown: an optional
front matter (`---` … `---`) with `title` and `segment`, then one `# <language>` section per
text. `send` starts a broadcast at once and queues its messages with a progress bar; with
`--deliver` it also sends the console channel's messages itself (paced at `--rate`), which is
how console recipients get broadcasts and how a crashed run is resumed. Telegram and WhatsApp
messages are sent by `citybot serve`; `--watch` follows them. Every action is audited.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import Engine

from bot.clock import SystemClock
from bot.console import render
from bot.dispatcher import Dispatcher, Job, Sent
from bot.settings import Settings
from handlers import broadcasts
from handlers.config import ALL_LANGUAGES
from handlers.i18n import NATIVE_NAMES
from handlers.messages import Outgoing
from storage import audit, contacts
from storage import broadcasts as db
from storage import staff as staff_db
from storage.db import session_scope
from storage.staff_models import Broadcast

COMMANDS = frozenset({"broadcast", "report", "export", "staff"})
LANG = "en"  # the CLI speaks English; exports and reports take --lang


def register(sub: Any) -> None:
    """Add the staff commands to the `citybot` parser."""
    bc = sub.add_parser("broadcast", help="compose, send, follow and retry broadcasts")
    actions = bc.add_subparsers(dest="action", required=True)
    new = actions.add_parser("new", help="create a broadcast from a YAML or Markdown file")
    new.add_argument("file", type=Path)
    new.add_argument("--where", action="append", default=[], metavar="KIND=V1,V2")
    new.add_argument("--title")
    new.add_argument("--at", help="send at this UTC time (YYYY-MM-DD HH:MM); default now")
    new.add_argument("--yes", action="store_true", help="confirm without asking")
    new.add_argument("--draft", action="store_true", help="only create the draft")
    actions.add_parser("list", help="the latest broadcasts")
    for name, text in (
        ("preview", "recipients by channel, language, template"),
        ("stats", "status and delivery figures"),
        ("cancel", "cancel a draft, scheduled or sending broadcast"),
        ("retry", "queue the failed messages again"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("id", type=int)
    send = actions.add_parser("send", help="start sending now (resumes an interrupted send)")
    send.add_argument("id", type=int)
    send.add_argument("--deliver", action="store_true", help="send console messages here")
    send.add_argument("--rate", type=float, default=0.0, help="console messages a second")
    send.add_argument("--record", type=Path, help="append each console send to this file")
    send.add_argument("--quiet", action="store_true", help="do not print console messages")
    send.add_argument("--watch", action="store_true", help="follow until every message is out")
    send.add_argument("--batch", type=int, default=500, help="messages queued per transaction")
    report = sub.add_parser("report", help="survey, donation and webinar report with charts")
    report.add_argument("--section", action="append", choices=("surveys", "donations", "webinars"))
    report.add_argument("--lang", default=LANG, choices=ALL_LANGUAGES)
    report.add_argument("--out", type=Path, default=Path("reports"))
    report.add_argument("--no-charts", action="store_true")
    export = sub.add_parser("export", help="contacts, responses, requests … as CSV or XLSX")
    export.add_argument("kind")
    export.add_argument("--format", dest="fmt", default="xlsx", choices=("csv", "xlsx"))
    export.add_argument("--lang", default=LANG, choices=ALL_LANGUAGES)
    export.add_argument("--survey")
    export.add_argument("--out", type=Path)
    staff = sub.add_parser("staff", help="staff roles and the audit log")
    roles = staff.add_subparsers(dest="action", required=True)
    roles.add_parser("list", help="staff and admins")
    promote = roles.add_parser("promote", help="give a contact a staff role")
    promote.add_argument("urn")
    promote.add_argument("role", nargs="?", default="staff", choices=staff_db.ROLES)
    demote = roles.add_parser("demote", help="take a staff role away")
    demote.add_argument("urn")
    trail = roles.add_parser("audit", help="the latest audit entries")
    trail.add_argument("count", type=int, nargs="?", default=20)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one staff command; return the exit code."""
    from bot.cli import prepare_database

    console = Console(highlight=False)
    engine = prepare_database(settings)
    try:
        if args.command == "broadcast":
            return _broadcast(args, settings, engine, console)
        if args.command == "report":
            return _report(args, engine, console)
        if args.command == "export":
            return _export(args, engine, console)
        return _staff(args, settings, engine, console)
    except broadcasts.BroadcastError as error:
        console.print(f"[red]{_english(error.key, error.values)}[/red]")
        return 1
    finally:
        engine.dispose()


def _english(key: str, values: dict[str, Any]) -> str:
    """A UI string in English."""
    from handlers.i18n import t

    return t(key, LANG, **values)


def _details(**values: Any) -> dict[str, Any]:
    """Audit details of a CLI action: who ran it on the machine."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {"via": "cli", "os_user": user, **values}


# -- broadcast files -------------------------------------------------------------------------

_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)
_HEADING = re.compile(r"^#{1,3}\s*(.+?)\s*$", re.M)


def _language(heading: str) -> str | None:
    """A Markdown heading naming a language: its code or its own name."""
    text = heading.strip().lower()
    for code, name in NATIVE_NAMES.items():
        if text in (code, name.lower()):
            return code
    return None


def read_file(path: Path) -> dict[str, Any]:
    """Read a broadcast file: {title, segment, texts}."""
    raw = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        data = yaml.safe_load(raw) or {}
        given = {str(k): str(v).strip() for k, v in (data.get("texts") or {}).items()}
        return {"title": data.get("title"), "segment": data.get("segment") or {}, "texts": given}
    front: dict[str, Any] = {}
    match = _FRONT.match(raw)
    if match:
        front = yaml.safe_load(match.group(1)) or {}
        raw = raw[match.end() :]
    texts: dict[str, str] = {}
    headings = list(_HEADING.finditer(raw))
    for index, heading in enumerate(headings):
        lang = _language(heading.group(1))
        if lang is None:
            continue
        end = headings[index + 1].start() if index + 1 < len(headings) else len(raw)
        texts[lang] = raw[heading.end() : end].strip()
    return {"title": front.get("title"), "segment": front.get("segment") or {}, "texts": texts}


def _segment(data: dict[str, Any], where: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The segment of the file and the --where filters together (values of a kind ORed)."""
    from handlers.places import gazetteer

    filters = list(where)
    for kind, values in (data.get("segment") or {}).items():
        if kind in broadcasts.FLAGS:
            if values:
                filters.append(str(kind))
            continue
        items = values if isinstance(values, list) else [values]
        filters.append(f"{kind}={','.join(str(v) for v in items)}")
    return broadcasts.parse_filters(filters, country=lambda text: gazetteer().country(text))


# -- broadcast commands ----------------------------------------------------------------------


def _get(engine: Engine, broadcast_id: int) -> Broadcast:
    """Load a broadcast or fail with a message."""
    with session_scope(engine) as session:
        found = db.get_broadcast(session=session, broadcast_id=broadcast_id)
    if found is None:
        raise broadcasts.BroadcastError("staff_bc_not_found", id=broadcast_id)
    return found


def _print_preview(engine: Engine, settings: Settings, broadcast: Broadcast, out: Console) -> int:
    """Print a broadcast's preview as a table; return how many would get it."""
    templates = broadcasts.template_languages(settings.whatsapp_templates_file)
    with session_scope(engine) as session:
        found = broadcasts.preview(
            session=session, broadcast=broadcast, now=SystemClock().now(), templates=templates
        )
    out.print(broadcasts.preview_text(broadcast, found, LANG))
    table = Table(title="by channel and language")
    table.add_column("channel")
    table.add_column("language")
    table.add_column("count", justify="right")
    with session_scope(engine) as session:
        resolved = broadcasts.resolve(session=session, spec=broadcast.segment)
        rows = db.preview(
            session=session,
            audience=resolved.audience,
            languages=list(broadcast.texts),
            base_language=broadcast.base_language,
            now=SystemClock().now(),
        )
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
        raise broadcasts.BroadcastError("staff_bc_usage_send") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _new(args: argparse.Namespace, settings: Settings, engine: Engine, out: Console) -> int:
    """Create a broadcast from a file, preview it, and confirm it (or keep the draft)."""
    data = read_file(args.file)
    spec, problems = _segment(data, args.where)
    if problems:
        out.print(f"[red]not understood: {', '.join(problems)}[/red]")
        out.print(f"kinds: {', '.join((*broadcasts.KINDS, *broadcasts.FLAGS))}")
        return 2
    now = SystemClock().now()
    with session_scope(engine) as session:
        created = broadcasts.create_draft(
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
            details=_details(file=args.file.name),
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
        broadcasts.schedule(
            session=session, broadcast=found, at=at, now=now, actor=None, via="cli"
        )
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
        found = broadcasts.advance(session=session, broadcast_id=broadcast_id, now=now)
        if found is None:
            found = db.stats(session=session, broadcast_id=broadcast_id)
        broadcast = db.get_broadcast(session=session, broadcast_id=broadcast_id)
        assert broadcast is not None
        text = broadcasts.stats_text(broadcast, found, LANG)
    out.print(text)
    table = Table(title="by channel")
    table.add_column("channel")
    table.add_column("messages", justify="right")
    for channel, count in sorted(found.by_channel.items()):
        table.add_row(channel, str(count))
    out.print(table)
    return 0


class Pacer:
    """At most `rate` sends a second (0: no limit), shared by concurrent senders."""

    def __init__(self, rate: float) -> None:
        """Start with no send made."""
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        """Wait for the next slot."""
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            self.next_at = max(self.next_at, now)
            delay = self.next_at - now
            self.next_at += self.interval
        if delay > 0:
            await asyncio.sleep(delay)


class CliConsoleSender:
    """The console channel for `broadcast send --deliver`: prints, records, paces."""

    channel = "console"

    def __init__(self, *, out: TextIO | None, record: Path | None, rate: float) -> None:
        """Write each message to `out` and a line per send to `record` (append, unbuffered)."""
        self.out = out
        self.fd = (
            os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if record else None
        )
        self.pacer = Pacer(rate)

    async def send(self, job: Job) -> Sent:
        """Deliver one message."""
        await self.pacer.wait()
        if self.fd is not None:
            os.write(self.fd, f"{job.urn}\t{job.id}\t{job.attempts}\n".encode())
        if self.out is not None:
            self.out.write(f"[{job.urn}] {render(Outgoing.from_body(job.body))}\n\n")
            self.out.flush()
        return Sent(provider_id=f"console-{job.id}", status="delivered")

    def close(self) -> None:
        """Close the record file."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _progress(out: Console) -> Progress:
    """A rich progress bar."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=out,
    )


def _queue(
    engine: Engine, broadcast_id: int, rates: dict[str, float], batch: int, bar: Progress
) -> None:
    """Queue every message of a sending broadcast, one transaction per batch."""
    with session_scope(engine) as session:
        found = db.stats(session=session, broadcast_id=broadcast_id)
    queued_before = found.to_send - found.unqueued
    task = bar.add_task("queueing", total=found.to_send, completed=queued_before, detail="")
    while True:
        with session_scope(engine) as session:
            n = broadcasts.queue_next(
                session=session,
                broadcast_id=broadcast_id,
                now=SystemClock().now(),
                rates=rates,
                limit=batch,
            )
        if not n:
            break
        bar.advance(task, n)


def _send(args: argparse.Namespace, settings: Settings, engine: Engine, out: Console) -> int:
    """Start (or resume) a broadcast now, queue it, and deliver or follow it."""
    broadcast = _get(engine, args.id)
    if broadcast.status in ("done", "cancelled") and not args.deliver:
        raise broadcasts.BroadcastError(
            "staff_bc_wrong_status", id=broadcast.id, status=broadcast.status
        )
    now = SystemClock().now()
    with session_scope(engine) as session:
        found = db.get_broadcast(session=session, broadcast_id=args.id)
        assert found is not None
        if found.status == "draft":
            broadcasts.schedule(
                session=session, broadcast=found, at=None, now=now, actor=None, via="cli"
            )
        if found.status in ("scheduled", "sending"):
            broadcasts.start(session=session, broadcast=found, now=now)
        audit.record(
            session=session,
            action="cli:broadcast_send",
            now=now,
            subject=f"broadcast:{args.id}",
            details=_details(deliver=bool(args.deliver)),
        )
    rates = {
        "telegram": settings.telegram_rate_per_second,
        "whatsapp": settings.whatsapp_rate_per_second,
    }
    with _progress(out) as bar:
        _queue(engine, args.id, rates, max(1, args.batch), bar)
        if args.deliver:
            _deliver(args, engine, bar, out)
        elif args.watch:
            _follow(engine, args.id, bar, lambda: None)
    with session_scope(engine) as session:
        final = broadcasts.advance(session=session, broadcast_id=args.id, now=SystemClock().now())
        latest = db.get_broadcast(session=session, broadcast_id=args.id)
        assert latest is not None
        summary = broadcasts.stats_text(
            latest, final or db.stats(session=session, broadcast_id=args.id), LANG
        )
    out.print(summary)
    return 0


def _deliver(args: argparse.Namespace, engine: Engine, bar: Progress, out: Console) -> None:
    """Send the broadcast's console messages from this process until none is left."""
    with session_scope(engine) as session:
        released = db.release_in_flight(
            session=session, broadcast_id=args.id, channel="console", now=SystemClock().now()
        )
    if released:
        out.print(
            f"{released} messages were in flight when the last run stopped; sending them again"
        )
    sender = CliConsoleSender(
        out=None if args.quiet else sys.stdout, record=args.record, rate=args.rate
    )
    dispatcher = Dispatcher(engine, {"console": sender}, SystemClock())

    async def drain() -> int:
        return await dispatcher.drain("console")

    try:
        _follow(engine, args.id, bar, lambda: asyncio.run(drain()), console_only=True)
    finally:
        sender.close()


def _follow(
    engine: Engine,
    broadcast_id: int,
    bar: Progress,
    step: Callable[[], object],
    *,
    console_only: bool = False,
) -> None:
    """Show sending progress until every message has an outcome (or only others' remain)."""
    with session_scope(engine) as session:
        found = db.stats(session=session, broadcast_id=broadcast_id)
    task = bar.add_task("sending", total=found.to_send, completed=found.processed, detail="")
    while True:
        done = step()
        with session_scope(engine) as session:
            found = db.stats(session=session, broadcast_id=broadcast_id)
            waiting_console = _waiting_on(session, broadcast_id, "console")
        shown = broadcasts.shown_counts(found)
        detail = " ".join(f"{k} {v}" for k, v in shown.items() if v)
        bar.update(task, completed=found.processed, detail=detail)
        if found.waiting == 0:
            return
        if console_only and waiting_console == 0:
            bar.update(task, detail=detail + " (the rest: citybot serve)")
            return
        if not done:
            time.sleep(0.5)


def _waiting_on(session: Any, broadcast_id: int, channel: str) -> int:
    """How many of a broadcast's messages on a channel wait to be sent."""
    from sqlmodel import col, func, select

    from storage.models import OutboxMessage
    from storage.staff_models import BroadcastRecipient

    stmt = (
        select(func.count())
        .select_from(BroadcastRecipient)
        .join(OutboxMessage, col(OutboxMessage.id) == col(BroadcastRecipient.outbox_id))
        .where(
            BroadcastRecipient.broadcast_id == broadcast_id,
            OutboxMessage.channel == channel,
            col(OutboxMessage.status).in_(db.WAITING),
        )
    )
    return int(session.exec(stmt).one())


def _broadcast(args: argparse.Namespace, settings: Settings, engine: Engine, out: Console) -> int:
    """Dispatch a `broadcast` action."""
    if args.action == "new":
        return _new(args, settings, engine, out)
    if args.action == "list":
        return _list(engine, out)
    if args.action == "preview":
        _print_preview(engine, settings, _get(engine, args.id), out)
        return 0
    if args.action == "stats":
        _get(engine, args.id)
        return _stats(engine, args.id, out)
    if args.action == "send":
        return _send(args, settings, engine, out)
    now = SystemClock().now()
    with session_scope(engine) as session:
        found = db.get_broadcast(session=session, broadcast_id=args.id)
        if found is None:
            raise broadcasts.BroadcastError("staff_bc_not_found", id=args.id)
        if args.action == "cancel":
            withdrawn = broadcasts.cancel(
                session=session, broadcast=found, now=now, actor=None, via="cli"
            )
            out.print(_english("staff_bc_cancelled", {"id": args.id, "count": withdrawn}))
        else:
            rates = {
                "telegram": settings.telegram_rate_per_second,
                "whatsapp": settings.whatsapp_rate_per_second,
            }
            queued, skipped = broadcasts.retry(
                session=session, broadcast=found, now=now, actor=None, via="cli", rates=rates
            )
            out.print(_english("staff_bc_retried", {"id": args.id, "count": queued}))
            if skipped:
                out.print(f"not retried: {skipped}")
        audit.record(
            session=session,
            action=f"cli:broadcast_{args.action}",
            now=now,
            subject=f"broadcast:{args.id}",
            details=_details(),
        )
    return 0


# -- reports, exports, staff -----------------------------------------------------------------


def _report(args: argparse.Namespace, engine: Engine, out: Console) -> int:
    """Print the report and write its charts."""
    from handlers import reports

    now = SystemClock().now()
    directory = args.out
    directory.mkdir(parents=True, exist_ok=True)
    with session_scope(engine) as session:
        built = reports.build(
            session=session,
            lang=args.lang,
            now=now,
            directory=directory,
            sections=args.section or reports.SECTIONS,
            countries=None,
            charts=not args.no_charts,
        )
        audit.record(
            session=session,
            action="report",
            now=now,
            details=_details(
                sections=args.section or list(reports.SECTIONS), charts=len(built.charts)
            ),
        )
    out.print(built.text)
    for chart in built.charts:
        out.print(f"chart: {chart}")
    return 0


def _export(args: argparse.Namespace, engine: Engine, out: Console) -> int:
    """Write an export file."""
    from handlers import exports

    if args.kind not in exports.KINDS:
        out.print(f"[red]unknown export {args.kind!r}[/red]; kinds: {', '.join(exports.KINDS)}")
        return 2
    now = SystemClock().now()
    path = args.out or Path(f"export-{args.kind}-{now:%Y%m%d-%H%M}.{args.fmt}")
    started = time.perf_counter()
    with session_scope(engine) as session:
        try:
            done = exports.export(
                session=session,
                kind=args.kind,
                fmt=args.fmt,
                lang=args.lang,
                path=path,
                survey=args.survey,
            )
        except exports.ExportError as error:
            out.print(f"[red]{_english(error.key, error.values)}[/red]")
            return 1
        audit.record(
            session=session,
            action="export",
            now=now,
            subject=args.kind,
            details=_details(format=args.fmt, language=args.lang, rows=done.rows),
        )
    elapsed = time.perf_counter() - started
    out.print(f"{done.rows} rows written to {path} in {elapsed:.1f}s")
    return 0


def _staff(args: argparse.Namespace, settings: Settings, engine: Engine, out: Console) -> int:
    """List, promote, demote, or show the audit log."""
    now = SystemClock().now()
    with session_scope(engine) as session:
        if args.action == "list":
            for member, urns in staff_db.staff_members(session=session):
                out.print(
                    f"{member.staff_role:6} #{member.id} {member.name or ''} {' '.join(urns)}"
                )
            return 0
        if args.action == "audit":
            for entry in staff_db.recent_audit(session=session, limit=args.count):
                actor = f"#{entry.actor_contact_id}" if entry.actor_contact_id else "system"
                out.print(
                    f"{entry.at:%Y-%m-%d %H:%M:%S} {entry.action} {actor} {entry.subject or ''}"
                )
            return 0
        if args.action == "promote":
            target, _new_contact = contacts.get_or_create_contact(
                session=session, urn=args.urn, now=now
            )
            previous = target.staff_role
            last = staff_db.admin_count(session=session) <= 1
            if previous == "admin" and args.role != "admin" and last:
                out.print("[red]that is the last admin[/red]")
                return 1
            staff_db.set_role(session=session, contact=target, role=args.role)
            action, role = "staff_promote", args.role
        else:
            found = contacts.get_contact_by_urn(session=session, urn=args.urn)
            if found is None or found.staff_role is None:
                out.print(f"[red]{args.urn} is not staff[/red]")
                return 1
            if found.staff_role == "admin" and staff_db.admin_count(session=session) <= 1:
                out.print("[red]that is the last admin[/red]")
                return 1
            target, previous, role = found, found.staff_role, None
            staff_db.set_role(session=session, contact=target, role=None)
            action = "staff_demote"
        audit.record(
            session=session,
            action=action,
            now=now,
            subject=f"contact:{target.id}",
            details=_details(role=role, previous=previous),
        )
    out.print(f"contact #{target.id}: {previous or 'none'} → {role or 'none'}")
    if role is None and args.urn in settings.staff_urns:
        out.print("note: STAFF_URNS gives this role back at the next start")
    return 0
