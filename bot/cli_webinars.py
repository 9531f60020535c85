"""`citybot webinar …`: create, edit, cancel, list webinars, their figures, and a sweep now.

    citybot webinar create --title "en=Resilient cities" --title "fr=Villes résilientes" \
        --start "2026-12-03 14:00" --tz Asia/Shanghai --duration 90 \
        --link https://meet.example/abc --interpretation en,fr,zh --focus drr_resilience
    citybot webinar edit 12 --start "2026-12-04 14:00"      # registrants are told
    citybot webinar cancel 12 --yes                          # registrants are told
    citybot webinar list | stats [12] [--json] | sweep
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from sqlalchemy.engine import Engine

from bot.clock import Clock
from bot.settings import Settings

COMMANDS = ("webinar",)


def register(sub: Any) -> None:
    """Add `webinar` and its actions to the citybot parser."""
    parser = sub.add_parser("webinar", help="webinars: create, edit, cancel, list, stats, sweep")
    actions = parser.add_subparsers(dest="webinar_action", required=True)
    create = actions.add_parser("create", help="create a webinar")
    _fields(create, creating=True)
    edit = actions.add_parser("edit", help="change a webinar (registrants are told)")
    edit.add_argument("id", type=int)
    _fields(edit, creating=False)
    cancel = actions.add_parser("cancel", help="cancel a webinar (registrants are told)")
    cancel.add_argument("id", type=int)
    cancel.add_argument("--yes", action="store_true", help="cancel without asking")
    listing = actions.add_parser("list", help="webinars with their registrations")
    listing.add_argument("--all", action="store_true", help="include past webinars")
    stats = actions.add_parser("stats", help="registrations by country and language, delivery")
    stats.add_argument("id", type=int, nargs="?")
    stats.add_argument("--json", action="store_true", help="machine-readable figures")
    actions.add_parser("sweep", help="queue due reminders now (what the scheduler does)")


def _fields(parser: argparse.ArgumentParser, *, creating: bool) -> None:
    """The webinar fields, as options."""
    parser.add_argument(
        "--title", action="append", metavar="LANG=TEXT", required=creating, help="repeatable"
    )
    parser.add_argument("--description", action="append", metavar="LANG=TEXT")
    parser.add_argument(
        "--start", metavar="'YYYY-MM-DD HH:MM'", required=creating, help="in the --tz zone"
    )
    parser.add_argument(
        "--tz", metavar="ZONE", required=creating, help="organiser's IANA zone, e.g. Asia/Shanghai"
    )
    parser.add_argument("--duration", metavar="MINUTES", help="90, 90m or 1.5h")
    parser.add_argument("--link", metavar="URL")
    parser.add_argument("--interpretation", metavar="en,fr,zh", help="or none")
    parser.add_argument("--focus", metavar="AREA", help="e.g. drr_resilience, or none")
    parser.add_argument("--capacity", metavar="N", help="or none")
    parser.add_argument("--deadline", metavar="'YYYY-MM-DD HH:MM'", help="in the webinar's zone")
    parser.add_argument("--reminders", metavar="24h,1h", help="offsets before the start")
    parser.add_argument("--survey-delay", metavar="1h", help="after the end")
    parser.add_argument("--quiet-hours", metavar="22:00-07:00", help="registrant's local time")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run a `webinar` action against the configured database."""
    from bot.cli import prepare_database
    from bot.clock import SystemClock

    engine = prepare_database(settings)
    try:
        return run_action(args, engine=engine, clock=SystemClock(), out=sys.stdout)
    finally:
        engine.dispose()


def run_action(args: argparse.Namespace, *, engine: Engine, clock: Clock, out: TextIO) -> int:
    """Run one action and write its result to `out`; 2 when the request is refused."""
    from handlers.webinars_core import WebinarError

    action = {
        "create": _create,
        "edit": _edit,
        "cancel": _cancel,
        "list": _list,
        "stats": _stats,
        "sweep": _sweep,
    }[args.webinar_action]
    try:
        return action(args, engine, clock, out)
    except WebinarError as exc:
        sys.stderr.write(f"citybot webinar: {exc}\n")
        return 2


def _texts(pairs: list[str] | None) -> dict[str, str]:
    """Read repeated `LANG=TEXT` options."""
    from handlers.webinars_core import WebinarError

    found: dict[str, str] = {}
    for pair in pairs or []:
        lang, sep, words = pair.partition("=")
        if not sep or not words.strip():
            raise WebinarError(f"use LANG=TEXT, not {pair!r}")
        found[lang.strip().lower()] = words.strip()
    return found


def _create(args: argparse.Namespace, engine: Engine, clock: Clock, out: TextIO) -> int:
    """Create a webinar from the options."""
    from handlers import webinars_core as core
    from handlers.webinars_time import (
        QuietHours,
        parse_duration_minutes,
        parse_offsets,
        parse_quiet,
        parse_start,
        zone_of,
    )
    from storage.db import session_scope

    zone = zone_of(args.tz)
    if zone is None:
        raise core.WebinarError(f"unknown time zone {args.tz!r}")
    try:
        starts_at = parse_start(args.start, zone)
        deadline = parse_start(args.deadline, zone) if args.deadline else None
        spec = core.WebinarSpec(
            title=_texts(args.title),
            description=_texts(args.description),
            starts_at=starts_at,
            timezone=args.tz,
            duration_minutes=parse_duration_minutes(args.duration or "60"),
            join_url=args.link or "",
            interpretation=_codes(args.interpretation),
            focus_area=None if _none(args.focus) else args.focus,
            capacity=None if _none(args.capacity) else int(args.capacity),
            registration_deadline=deadline,
            reminder_offsets=parse_offsets(args.reminders) if args.reminders else [1440, 60],
            survey_delay_minutes=parse_duration_minutes(args.survey_delay or "60"),
            quiet=parse_quiet(args.quiet_hours) if args.quiet_hours else QuietHours(),
        )
    except core.WebinarError:
        raise
    except ValueError as exc:
        raise core.WebinarError(str(exc)) from exc
    with session_scope(engine) as session:
        webinar = core.create_webinar(session=session, spec=spec, now=clock.now(), via="cli")
        out.write(f"webinar {webinar.id} created; registration link: /start w{webinar.id}\n")
    return 0


def _none(value: str | None) -> bool:
    """Say whether an option was left out or set to none."""
    return value is None or value.strip().lower() in ("", "none", "0", "-")


def _codes(value: str | None) -> list[str]:
    """Read `en,fr,zh` (or none)."""
    if _none(value):
        return []
    assert value is not None
    return [c.strip().lower() for c in value.replace(" ", ",").split(",") if c.strip()]


_EDITS = (
    ("duration", "duration"),
    ("link", "link"),
    ("interpretation", "interpretation"),
    ("focus", "focus"),
    ("capacity", "capacity"),
    ("deadline", "deadline"),
    ("reminders", "reminders"),
    ("survey_delay", "survey_delay"),
    ("quiet_hours", "quiet"),
)


def _edit(args: argparse.Namespace, engine: Engine, clock: Clock, out: TextIO) -> int:
    """Change a webinar from the options given."""
    from handlers import webinars_core as core
    from storage import webinars as db
    from storage.db import session_scope

    with session_scope(engine) as session:
        webinar = db.get_webinar(session=session, webinar_id=args.id)
        if webinar is None:
            raise core.WebinarError(f"no webinar #{args.id}")
        changes: dict[str, Any] = {}
        if args.start:
            zone = args.tz or webinar.timezone
            changes.update(core.parse_change(webinar, "start", f"{args.start} {zone}"))
        elif args.tz:
            changes.update(core.parse_change(webinar, "timezone", args.tz))
        for name in ("title", "description"):
            texts = _texts(getattr(args, name))
            if texts:
                changes[name] = texts
        for option, name in _EDITS:
            value = getattr(args, option)
            if value is not None:
                changes.update(core.parse_change(webinar, name, value))
        result = core.edit_webinar(
            session=session, webinar_id=args.id, changes=changes, now=clock.now(), via="cli"
        )
    if not result.changed:
        out.write(f"webinar {args.id}: nothing changed\n")
    else:
        fields = ", ".join(result.changed)
        out.write(
            f"webinar {args.id} updated ({fields}); {result.notified} registrants will be told\n"
        )
    return 0


def _cancel(args: argparse.Namespace, engine: Engine, clock: Clock, out: TextIO) -> int:
    """Cancel a webinar (asking first unless --yes)."""
    from handlers import webinars_core as core
    from storage.db import session_scope

    if not args.yes:
        out.write(f"Cancel webinar {args.id}? Its registrants will be told. [y/N] ")
        out.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            out.write("not cancelled\n")
            return 1
    with session_scope(engine) as session:
        result = core.cancel_webinar(
            session=session, webinar_id=args.id, now=clock.now(), via="cli"
        )
    out.write(f"webinar {args.id} cancelled; {result.notified} registrants will be told\n")
    return 0


def _list(args: argparse.Namespace, engine: Engine, clock: Clock, out: TextIO) -> int:
    """Print the webinars with their registrations."""
    from handlers.webinars_text import title
    from handlers.webinars_time import show_time
    from storage import webinars as db
    from storage.db import session_scope

    with session_scope(engine) as session:
        since = None if args.all else clock.now()
        found = db.list_webinars(session=session, since=since)
        counts = db.count_registered(session=session, webinar_ids=[w.id or 0 for w in found])
        for w in found:
            seats = f"/{w.capacity}" if w.capacity else ""
            out.write(
                f"{w.id:>4}  {show_time(w.starts_at, w.timezone, 'en')}  {w.status:<9}  "
                f"{counts[w.id or 0]}{seats} registered  {title(w, 'en')}\n"
            )
        if not found:
            out.write("no webinars\n")
    return 0


def _stats(args: argparse.Namespace, engine: Engine, clock: Clock, out: TextIO) -> int:
    """Print registrations by country and language and the reminders' delivery."""
    from handlers import webinars_core as core
    from storage import webinars as db
    from storage.db import session_scope

    with session_scope(engine) as session:
        if args.id is None:
            figures: dict[str, Any] = db.summary(session=session)
        else:
            if db.get_webinar(session=session, webinar_id=args.id) is None:
                raise core.WebinarError(f"no webinar #{args.id}")
            figures = {
                "webinar_id": args.id,
                **db.registration_stats(session=session, webinar_id=args.id),
                **db.reminder_stats(session=session, webinar_id=args.id),
            }
    if args.json:
        out.write(json.dumps(figures, indent=2, sort_keys=True, default=str) + "\n")
        return 0
    for key, value in figures.items():
        if isinstance(value, dict):
            out.write(f"{key}:\n")
            for inner, count in sorted(value.items()):
                out.write(f"  {inner}: {count}\n")
        elif isinstance(value, list):
            out.write(f"{key}:\n")
            for item in value:
                out.write(f"  {item}\n")
        else:
            out.write(f"{key}: {value}\n")
    return 0


def _sweep(args: argparse.Namespace, engine: Engine, clock: Clock, out: TextIO) -> int:
    """Queue due messages now."""
    from scheduler.webinars import run_sweep

    result = run_sweep(engine=engine, clock=clock)
    out.write(
        f"queued {result.queued}, skipped {result.skipped}, cancelled {result.cancelled}, "
        f"deferred {result.deferred}\n"
    )
    return 0
