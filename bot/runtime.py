"""The running bot: database, channels, inbox worker, dispatcher loops and scheduler."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import Engine

from bot import heap
from bot.channels.base import Channel
from bot.clock import Clock, SystemClock
from bot.dispatcher import Dispatcher
from bot.inbox_writer import InboxWriter
from bot.lanes import Lane
from bot.settings import Settings
from bot.waiting import wait_set
from bot.worker import InboxWorker
from handlers.answers import PlaceResolver
from handlers.config import BotConfig
from handlers.messages import Inbound
from handlers.places import LazyPlaces
from handlers.warmup import warm
from scheduler.setup import build_scheduler
from storage.wal import Checkpointer, start_checkpoints

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything `serve` runs; tests build one against fake platforms."""

    settings: Settings
    engine: Engine
    config: BotConfig
    clock: Clock
    places: PlaceResolver
    channels: dict[str, Channel]
    dispatcher: Dispatcher
    worker: InboxWorker
    scheduler: AsyncIOScheduler | None = None
    run_worker: bool = True  # False when a `citybot worker` process routes instead
    run_dispatcher: bool = True  # False when a `citybot worker --send` process sends instead
    receive: bool = True  # False in that worker: channels send but take no webhook or poll
    counters: dict[str, int] = field(default_factory=dict)
    _writer: InboxWriter | None = None
    _wake: dict[str, asyncio.Event] = field(default_factory=dict)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _checkpointer: Checkpointer | None = None
    _warming: asyncio.Task[None] | None = None
    _frozen: bool = False

    def count(self, name: str, amount: int = 1) -> None:
        """Bump an in-process counter shown on /metrics."""
        self.counters[name] = self.counters.get(name, 0) + amount

    async def accept(self, inbound: Inbound, external_id: str) -> bool:
        """Store an event before it is acknowledged and wake the worker; False if a duplicate.

        Messages arriving together are stored together (group commit, bot/inbox_writer.py).
        """
        if self._writer is None:
            self._writer = InboxWriter(self)
        return await self._writer.accept(inbound, external_id)

    def wake_dispatcher(self, channel: str) -> None:
        """Tell a channel's dispatcher loop that messages are waiting."""
        event = self._wake.get(channel)
        if event is not None:
            event.set()

    async def _dispatch_forever(self, channel: str) -> None:
        """Drain one channel's outbox until cancelled."""
        wake = self._wake[channel]
        while True:
            wake.clear()
            try:
                sent = await self.dispatcher.drain(channel)
            except Exception:
                logger.exception("dispatcher failed channel=%s; retrying", channel)
                sent = 0
            if not sent:
                await wait_set(wake, self.idle_dispatch_seconds)

    @property
    def idle_dispatch_seconds(self) -> float:
        """How long an idle dispatcher waits before looking again.

        With the worker in this process it wakes the dispatcher; a worker in another process
        cannot, so the dispatcher looks often.
        """
        return 1.0 if self.run_worker else 0.1

    async def start(self) -> None:
        """Start the log checkpoints, channels, the worker, the dispatchers and the scheduler."""
        self._checkpointer = self._checkpointer or start_checkpoints(self.engine)
        for name, channel in self.channels.items():
            await (channel.start() if self.receive else channel.start_sending())
            self._wake[name] = asyncio.Event()
            if self.run_dispatcher:
                self._tasks.append(asyncio.create_task(self._dispatch_forever(name)))
        if self.run_worker:
            self._tasks.append(asyncio.create_task(self.worker.run_forever()))
        self._warming = asyncio.create_task(self._warm())  # webhooks are answered meanwhile
        if self.scheduler is not None:
            self.scheduler.start()
        logger.info("runtime started channels=%s", ",".join(self.channels) or "none")

    async def _warm(self) -> None:
        """Load what the first messages need off the event loop, then freeze that heap."""
        try:
            await asyncio.to_thread(warm, config=self.config, places=self.places)
        except Exception:  # each part still loads on first use
            logger.exception("warm-up failed")
        heap.freeze()  # bot/heap.py: no full collection walks the start-up heap again
        self._frozen = True
        logger.info("start-up heap frozen")  # its size would take a walk of the whole heap

    async def warmed(self) -> None:
        """Wait until the start-up loading is done (benchmarks measure from then)."""
        if self._warming is not None:
            await asyncio.shield(self._warming)

    async def stop(self) -> None:
        """Stop everything in reverse order."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        tasks = [*self._tasks, *([self._warming] if self._warming else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._warming = None
        await self.worker.settle()
        for channel in self.channels.values():
            await channel.stop()
        for lane in self._lanes():
            lane.close()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
            self._checkpointer = None
        if self._frozen:
            heap.thaw()
            self._frozen = False

    def _lanes(self) -> list[Lane]:
        """The threads of the parts that write to the database (bot/lanes.py)."""
        writer = [self._writer.lane] if self._writer is not None else []
        return [*writer, self.worker.lane, self.dispatcher.lane]


def build_runtime(
    settings: Settings,
    *,
    engine: Engine,
    clock: Clock | None = None,
    places: PlaceResolver | None = None,
    channels: dict[str, Channel] | None = None,
    with_scheduler: bool = True,
    with_worker: bool = True,
    with_dispatcher: bool = True,
    receive: bool = True,
) -> Runtime:
    """Assemble a runtime; channels come from the settings unless given."""
    clock = clock or SystemClock()
    config = settings.bot_config()
    chosen = channels if channels is not None else {}
    resolver = places if places is not None else LazyPlaces()
    dispatcher = Dispatcher(
        engine,
        {name: ch.sender for name, ch in chosen.items()},
        clock,
        max_attempts=settings.send_max_attempts,
        # what a claimed message may wait for: its turn under the rate limits, then the send
        lease=timedelta(seconds=max(60.0, 3 * settings.send_timeout_seconds)),
    )
    runtime = Runtime(
        settings=settings,
        engine=engine,
        config=config,
        clock=clock,
        places=resolver,
        channels=chosen,
        dispatcher=dispatcher,
        worker=InboxWorker(engine, config, clock, resolver),
        run_worker=with_worker,
        run_dispatcher=with_dispatcher,
        receive=receive,
    )
    runtime.worker.on_queued = runtime.wake_dispatcher
    if with_scheduler:
        runtime.scheduler = build_scheduler(engine=engine, clock=clock)
    return runtime
