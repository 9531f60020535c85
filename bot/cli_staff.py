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
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy.engine import Engine

from bot import cli_staff_broadcasts, cli_staff_sending
from bot.cli_staff_io import LANG, cli_details, english
from bot.clock import SystemClock
from bot.settings import Settings
from handlers import broadcasts_compose
from handlers.config import ALL_LANGUAGES
from storage import audit, contacts
from storage import staff as staff_db
from storage.db import session_scope

COMMANDS = frozenset({"broadcast", "report", "export", "staff"})


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
    except broadcasts_compose.BroadcastError as error:
        console.print(f"[red]{english(error.key, error.values)}[/red]")
        return 1
    finally:
        engine.dispose()


def _broadcast(args: argparse.Namespace, settings: Settings, engine: Engine, out: Console) -> int:
    """Dispatch a `broadcast` action."""
    if args.action == "send":
        return cli_staff_sending.send(args, settings, engine, out)
    return cli_staff_broadcasts.run_action(args, settings, engine, out)


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
            details=cli_details(
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
            out.print(f"[red]{english(error.key, error.values)}[/red]")
            return 1
        audit.record(
            session=session,
            action="export",
            now=now,
            subject=args.kind,
            details=cli_details(format=args.fmt, language=args.lang, rows=done.rows),
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
            details=cli_details(role=role, previous=previous),
        )
    out.print(f"contact #{target.id}: {previous or 'none'} → {role or 'none'}")
    if role is None and args.urn in settings.staff_urns:
        out.print("note: STAFF_URNS gives this role back at the next start")
    return 0
