"""`citybot outbox …`: act on messages held as `needs_template`.

    citybot outbox held [--kind K] [--language L]
    citybot outbox requeue [--kind K] [--language L] [--channel C]
    citybot outbox cancel [--kind K] [--language L] [--channel C] [--reason TEXT]

WhatsApp holds a proactive message as `needs_template` when the contact is outside the 24-hour
window and no approved template exists for its kind and language. Once the template is in
`WHATSAPP_TEMPLATES_FILE` (and `citybot serve` restarted), `requeue` puts the held messages
back in the queue: the dispatcher sends them with the template, or as free text to those who
wrote in the meantime, and holds again those still without one. `held` shows, for WhatsApp,
whether a template is configured now. `cancel` ends them with a reason. Every `requeue` and
`cancel` is audited with the filters and the count.
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine

from bot.channels.whatsapp_render import ContentConfig, load_content
from bot.clock import SystemClock
from bot.settings import Settings
from storage import audit, outbox
from storage.db import session_scope

COMMANDS = frozenset({"outbox"})
DEFAULT_REASON = "cancelled by staff: no template will be registered"


def register(sub: Any) -> None:
    """Add `outbox held|requeue|cancel` to the citybot parser."""
    parser = sub.add_parser("outbox", help="messages held for want of a WhatsApp template")
    actions = parser.add_subparsers(dest="outbox_action", required=True)
    held = actions.add_parser("held", help="held messages by kind, language and channel")
    _filters(held, channel=False)
    requeue = actions.add_parser("requeue", help="queue held messages again (after a template)")
    _filters(requeue, channel=True)
    cancel = actions.add_parser("cancel", help="cancel held messages, with a reason")
    _filters(cancel, channel=True)
    cancel.add_argument("--reason", default=DEFAULT_REASON, help="kept on each message")


def _filters(parser: argparse.ArgumentParser, *, channel: bool) -> None:
    """The options narrowing which held messages an action takes."""
    parser.add_argument("--kind", help="message kind, e.g. reminder or broadcast")
    parser.add_argument("--language", help="language code, e.g. fr")
    if channel:
        parser.add_argument("--channel", help="channel, e.g. whatsapp")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one outbox action; return the exit code."""
    from bot.cli import prepare_database

    console = Console(highlight=False)
    engine = prepare_database(settings)
    try:
        if args.outbox_action == "held":
            return _held(args, settings, engine, console)
        return _change(args, engine, console)
    finally:
        engine.dispose()


def _templates(settings: Settings) -> ContentConfig | None:
    """The WhatsApp templates configured now; None when the file cannot be read."""
    try:
        return load_content(settings.whatsapp_templates_file)
    except (OSError, ValueError):
        return None


def _template_now(content: ContentConfig | None, kind: str, language: str, channel: str) -> str:
    """Whether a held message would now find its template: yes, no, or - (not WhatsApp)."""
    if channel != "whatsapp":
        return "-"
    if content is None:
        return "?"
    return "yes" if content.template(kind, language) is not None else "no"


def _held(args: argparse.Namespace, settings: Settings, engine: Engine, out: Console) -> int:
    """Print the held messages grouped by kind, language and channel."""
    with session_scope(engine) as session:
        groups = outbox.held_counts(session=session, kind=args.kind, language=args.language)
    if not groups:
        out.print("no held messages")
        return 0
    content = _templates(settings)
    table = Table(title="held messages (needs_template)")
    for name in ("kind", "language", "channel", "messages", "template now"):
        table.add_column(name, justify="right" if name == "messages" else "left")
    for kind, language, channel, count in groups:
        table.add_row(
            kind, language, channel, str(count), _template_now(content, kind, language, channel)
        )
    out.print(table)
    out.print(f"{sum(g[3] for g in groups)} held in all")
    return 0


def _change(args: argparse.Namespace, engine: Engine, out: Console) -> int:
    """Requeue or cancel the held messages the filters pick, and audit it."""
    now = SystemClock().now()
    picked = {"kind": args.kind, "language": args.language, "channel": args.channel}
    with session_scope(engine) as session:
        if args.outbox_action == "requeue":
            count = outbox.requeue_held(session=session, now=now, **picked)
        else:
            count = outbox.cancel_held(session=session, now=now, reason=args.reason, **picked)
        audit.record(
            session=session,
            action=f"cli:outbox_{args.outbox_action}",
            now=now,
            subject="outbox:needs_template",
            details=_details(count=count, **{k: v for k, v in picked.items() if v}),
        )
    done = "queued again" if args.outbox_action == "requeue" else "cancelled"
    out.print(f"{count} held message{'s' if count != 1 else ''} {done}")
    if args.outbox_action == "requeue" and count:
        out.print("citybot serve sends them; those still without a template are held again")
    return 0


def _details(**values: Any) -> dict[str, Any]:
    """Audit details: how the action was taken and by which OS user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {"via": "cli", "os_user": user, **values}
