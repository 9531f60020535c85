"""The inbox worker: processes stored inbound events, one contact in order, contacts in parallel.

Adapters store events and call `notify()`; the worker also sweeps the inbox on a timer, so an
event stored just before a crash is processed after the restart.

Events are taken in batches, oldest first. A batch is split into groups by URN (a URN's
events always land in the same group, in order) and each group is handled in one
transaction: one commit and one flush for many messages. A group whose handling fails is
rolled back and redone event by event, each guarded by a savepoint, so one bad message costs
its sender an apology and nobody else anything (handlers/inbound.py `process_safely`). On
SQLite (one writer) there is one group at a time; on PostgreSQL several run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.clock import Clock
from bot.lanes import Lane
from bot.settings import Settings
from bot.waiting import wait_set
from handlers.answers import PlaceResolver
from handlers.config import BotConfig
from handlers.inbound import process_safely, receive_all
from handlers.messages import Inbound
from storage import inbox
from storage.db import read_scope, session_scope
from storage.inbox import PendingEvent

logger = logging.getLogger(__name__)


class InboxWorker:
    """Drains the inbox: per-URN ordering, batches in one transaction, groups in parallel."""

    def __init__(
        self,
        engine: Engine,
        config: BotConfig,
        clock: Clock,
        places: PlaceResolver,
        *,
        concurrency: int | None = None,
        batch_size: int = 16,
        on_queued: Callable[[str], None] | None = None,
        on_processed: Callable[[list[PendingEvent]], None] | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        """Bind the database and the conversation configuration."""
        self.engine, self.config, self.clock, self.places = engine, config, clock, places
        single_writer = engine.dialect.name == "sqlite"
        self.groups = 1 if single_writer else (concurrency or 4)
        self.lane = Lane("inbox-worker", threads=self.groups + 1)  # the groups and a reader
        self.batch_size = batch_size
        self.on_queued = on_queued or (lambda _channel: None)
        self.on_processed = on_processed or (lambda _events: None)
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._stored = False  # an event was stored since the last look (one writer)
        self.running = False  # `run_forever` is under way: stored events will be handled
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None] | asyncio.Task[int]] = set()

    def notify(self) -> None:
        """Say an event was stored."""
        self._stored = True
        self._wake.set()

    def _pending(self, busy: frozenset[str]) -> list[PendingEvent]:
        """The oldest unprocessed events of URNs not already in hand."""
        with read_scope(self.engine) as session:
            return inbox.pending_batch(
                session=session, limit=self.batch_size * self.groups, skip_urns=busy
            )

    def _handle(self, session: Session, events: list[PendingEvent]) -> int:
        """Handle events in the session's transaction (see `process_safely`); return replies."""
        return process_safely(
            session=session,
            events=events,
            config=self.config,
            now=self.clock.now(),
            places=self.places,
        )

    def _process(self, events: list[PendingEvent]) -> int:
        """Handle a group in one transaction; return replies queued."""
        with session_scope(self.engine) as session:
            return self._handle(session, events)

    def _report(self, events: list[PendingEvent], queued: int) -> None:
        """Tell the listeners which events were committed and which channels have replies."""
        self.on_processed(events)
        if queued:
            for channel in {event.channel for event in events}:
                self.on_queued(channel)

    async def _run_group(self, events: list[PendingEvent], urns: set[str]) -> None:
        """Process a group off the event loop, then look again (more may have arrived)."""
        try:
            queued = await self.lane.run(self._process, events)
            self._report(events, queued)
        except Exception:
            logger.exception("inbox processing failed; will retry")
        finally:
            self._busy.difference_update(urns)
            self._wake.set()

    @staticmethod
    def _split(events: list[PendingEvent], count: int) -> list[list[PendingEvent]]:
        """Split events into groups by URN, keeping each URN's events together and in order."""
        groups: list[list[PendingEvent]] = [[] for _ in range(count)]
        for event in events:
            groups[zlib.crc32(event.urn.encode()) % count].append(event)
        return [group for group in groups if group]

    def store_and_process(
        self, batch: list[tuple[Inbound, str]]
    ) -> tuple[list[bool], list[PendingEvent], int]:
        """One writer: store messages and handle the oldest pending events, in one transaction.

        On SQLite storing and routing take turns at the one writer anyway; done together
        they cost one transaction, one commit and one thread hop instead of two of each, and
        no pending read of their own. The events handled are read inside the transaction,
        oldest first, so a backlog still goes before new messages. Return whether each
        message was new, the events handled and the replies queued. A failure rolls back
        the messages too (the caller stores them again without routing).
        """
        with session_scope(self.engine) as session:
            stored = receive_all(session=session, messages=batch)
            return (stored, *self._take(session)) if any(stored) else (stored, [], 0)

    def report_stored(self, events: list[PendingEvent], queued: int) -> None:
        """After `store_and_process`: tell the listeners, and look again if more may wait."""
        if events:
            self._report(events, queued)
        if len(events) >= self.batch_size:
            self.notify()

    def _take_and_process(self, stored: bool) -> tuple[list[PendingEvent], int]:
        """Take the oldest pending events and handle them, in one thread hop (one writer).

        Unless told an event was `stored`, a cheap read first, so an idle look (a sweep, a
        poll) never takes the write lock. The events processed are those read inside the
        write transaction: a second worker on the same database can never handle one twice.
        Return the events and replies queued.
        """
        if not stored:
            with read_scope(self.engine) as session:
                if not inbox.pending_batch(session=session, limit=1):
                    return [], 0
        with session_scope(self.engine) as session:
            return self._take(session)

    def _take(self, session: Session) -> tuple[list[PendingEvent], int]:
        """Read the oldest pending events in the session's write transaction and handle them."""
        events = inbox.pending_batch(session=session, limit=self.batch_size)
        return events, self._handle(session, events) if events else 0

    async def _run_single(self) -> int:
        """Take and process one batch off the event loop; return how many events.

        A failure (the database unreachable, say) propagates to the sweep, which logs it and
        looks again after `poll_seconds`: nothing was committed, every event is still pending.
        """
        stored, self._stored = self._stored, False
        events, queued = await self.lane.run(self._take_and_process, stored)
        if events:
            self._report(events, queued)
            self._wake.set()  # a full batch may have left more behind
        return len(events)

    async def run_once(self) -> int:
        """Start work on the pending events of URNs not in hand; return how many groups.

        At most `groups` transactions run at once: while they do, new events wait and make
        the next batch bigger rather than fighting for the database. With one writer
        (SQLite) the events are read and handled in one hop and this returns when they are
        committed (how many; 0 when none was pending).
        """
        if self.groups == 1:
            if self._tasks:
                return 0
            single = asyncio.create_task(self._run_single())
            self._tasks.add(single)
            single.add_done_callback(self._tasks.discard)
            return await asyncio.shield(single)  # a cancelled caller leaves it to `settle`
        free = self.groups - len(self._tasks)
        if free <= 0:
            return 0
        events = await self.lane.run(self._pending, frozenset(self._busy))
        free = self.groups - len(self._tasks)
        if free <= 0:
            return 0
        groups = self._split([e for e in events if e.urn not in self._busy], free)
        for group in groups:
            urns = {event.urn for event in group}
            self._busy |= urns
            task = asyncio.create_task(self._run_group(group, urns))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(groups)

    async def run_forever(self) -> None:
        """Work until cancelled (`running` meanwhile)."""
        self.running = True
        try:
            while True:
                self._wake.clear()
                try:
                    await self.run_once()
                except Exception:
                    logger.exception("inbox sweep failed; retrying")
                await wait_set(self._wake, self.poll_seconds)
        finally:
            self.running = False

    async def settle(self) -> None:
        """Wait for the groups in hand to commit (on shutdown: none is left half-told)."""
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def drain(self) -> None:
        """Process until nothing is pending (tests and shutdown)."""
        while await self.run_once() or self._tasks:
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)


def run_standalone(settings: Settings, *, poll_seconds: float = 0.05, send: bool = False) -> int:
    """`citybot worker`: route stored inbound messages (and with `send`, send) until interrupted.

    It shares the database with `citybot serve --no-worker`, which stores and acknowledges
    webhooks and sends the replies this process queues. With nobody in this process to wake
    it, it looks at the inbox every `poll_seconds` while idle. With `send` this process runs
    the dispatcher too, woken by its own routing, and `serve --no-worker --no-send` only
    acknowledges: the webhooks then share their process with nothing but the scheduler.
    """
    from bot import heap
    from bot.cli import prepare_database
    from bot.clock import SystemClock
    from bot.lanes import favour_waiting_threads
    from handlers.places import LazyPlaces
    from handlers.warmup import warm
    from storage.wal import checkpointing

    favour_waiting_threads()
    engine = prepare_database(settings)
    if send:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_route_and_send(settings, engine, poll_seconds))
        return 0
    config, places = settings.bot_config(), LazyPlaces()
    worker = InboxWorker(engine, config, SystemClock(), places, poll_seconds=poll_seconds)
    warm(config=config, places=places)  # nothing else to do meanwhile: no webhooks here
    heap.freeze()
    logger.info("inbox worker started groups=%d", worker.groups)
    with checkpointing(engine), contextlib.suppress(KeyboardInterrupt):
        asyncio.run(worker.run_forever())
    return 0


async def _route_and_send(settings: Settings, engine: Engine, poll_seconds: float) -> None:
    """Run the inbox worker and the channels' dispatchers (no webhooks, no scheduler)."""
    from bot.channels.registry import channels_from_settings
    from bot.runtime import build_runtime

    runtime = build_runtime(settings, engine=engine, with_scheduler=False, receive=False)
    runtime.worker.poll_seconds = poll_seconds
    runtime.channels.update(channels_from_settings(settings, runtime))
    runtime.dispatcher.senders.update({n: c.sender for n, c in runtime.channels.items()})
    await runtime.start()
    channels = ",".join(runtime.channels) or "none"
    logger.info("inbox worker started groups=%d sending=%s", runtime.worker.groups, channels)
    try:
        await asyncio.Event().wait()
    finally:
        await runtime.stop()
