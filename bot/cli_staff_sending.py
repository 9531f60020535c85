"""`citybot broadcast send`: start a broadcast, queue it with a progress bar, deliver or follow.

With `--deliver` the console channel's messages are sent from this process (paced at
`--rate`), which is how console recipients get broadcasts and how a crashed run is resumed;
Telegram and WhatsApp messages are sent by `citybot serve`, which `--watch` follows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import Engine

from bot.cli_staff_broadcasts import channel_rates, load_broadcast
from bot.cli_staff_io import LANG, cli_details
from bot.clock import SystemClock
from bot.console import render
from bot.dispatcher import Dispatcher, Job, Sent
from bot.settings import Settings
from handlers import broadcasts_compose, broadcasts_sending, broadcasts_stats
from handlers.messages import Outgoing
from storage import audit
from storage import broadcasts as db
from storage.db import session_scope


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
            n = broadcasts_sending.queue_next(
                session=session,
                broadcast_id=broadcast_id,
                now=SystemClock().now(),
                rates=rates,
                limit=batch,
            )
        if not n:
            break
        bar.advance(task, n)


def send(args: argparse.Namespace, settings: Settings, engine: Engine, out: Console) -> int:
    """Start (or resume) a broadcast now, queue it, and deliver or follow it."""
    broadcast = load_broadcast(engine, args.id)
    if broadcast.status in ("done", "cancelled") and not args.deliver:
        raise broadcasts_compose.wrong_status(broadcast)
    now = SystemClock().now()
    with session_scope(engine) as session:
        found = db.get_broadcast(session=session, broadcast_id=args.id)
        assert found is not None
        if found.status == "draft":
            broadcasts_compose.schedule(
                session=session, broadcast=found, at=None, now=now, actor=None, via="cli"
            )
        if found.status in ("scheduled", "sending"):
            broadcasts_sending.start(session=session, broadcast=found, now=now)
        audit.record(
            session=session,
            action="cli:broadcast_send",
            now=now,
            subject=f"broadcast:{args.id}",
            details=cli_details(deliver=bool(args.deliver)),
        )
    with _progress(out) as bar:
        _queue(engine, args.id, channel_rates(settings), max(1, args.batch), bar)
        if args.deliver:
            _deliver(args, engine, bar, out)
        elif args.watch:
            _follow(engine, args.id, bar, lambda: None)
    with session_scope(engine) as session:
        final = broadcasts_sending.advance(
            session=session, broadcast_id=args.id, now=SystemClock().now()
        )
        latest = db.get_broadcast(session=session, broadcast_id=args.id)
        assert latest is not None
        summary = broadcasts_stats.stats_text(
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
        shown = broadcasts_stats.shown_counts(found)
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
