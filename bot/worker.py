"""The inbox worker: processes stored inbound events, one contact in order, contacts in parallel.

Adapters store events and call `notify()`; the worker also sweeps the inbox on a timer, so an
event stored just before a crash is processed after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy.engine import Engine

from bot.clock import Clock
from handlers.answers import PlaceResolver
from handlers.config import BotConfig
from handlers.inbound import process_pending
from storage import inbox
from storage.db import session_scope

logger = logging.getLogger(__name__)


class InboxWorker:
    """Drains the inbox: per-URN ordering, bounded concurrency across URNs."""

    def __init__(
        self,
        engine: Engine,
        config: BotConfig,
        clock: Clock,
        places: PlaceResolver,
        *,
        concurrency: int = 8,
        on_queued: Callable[[str], None] | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        """Bind the database and the conversation configuration."""
        self.engine, self.config, self.clock, self.places = engine, config, clock, places
        self.semaphore = asyncio.Semaphore(concurrency)
        self.on_queued = on_queued or (lambda _channel: None)
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def notify(self) -> None:
        """Say an event was stored."""
        self._wake.set()

    def _pending_urns(self) -> list[str]:
        """URNs with unprocessed events."""
        with session_scope(self.engine) as session:
            return inbox.pending_urns(session=session, limit=500)

    def _process(self, urn: str) -> int:
        """Process one URN's events in order in one transaction; return replies queued."""
        with session_scope(self.engine) as session:
            queued = process_pending(
                session=session,
                urn=urn,
                config=self.config,
                now=self.clock.now(),
                places=self.places,
            )
        return len(queued)

    async def _run_urn(self, urn: str) -> None:
        """Process a URN, then look again (events may have arrived meanwhile)."""
        try:
            async with self.semaphore:
                queued = await asyncio.to_thread(self._process, urn)
            if queued:
                self.on_queued(urn.partition(":")[0])
        except Exception:
            logger.exception("inbox processing failed; will retry")
        finally:
            self._busy.discard(urn)
            self._wake.set()

    async def run_once(self) -> int:
        """Start work for every URN with pending events not already in hand; return how many."""
        urns = await asyncio.to_thread(self._pending_urns)
        started = 0
        for urn in urns:
            if urn in self._busy:
                continue
            self._busy.add(urn)
            task = asyncio.create_task(self._run_urn(urn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def run_forever(self) -> None:
        """Work until cancelled."""
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except Exception:
                logger.exception("inbox sweep failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)

    async def drain(self) -> None:
        """Process until nothing is pending (tests and shutdown)."""
        while await self.run_once() or self._tasks:
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
