"""Storing inbound messages before acknowledging them, with group commit (every channel).

Each webhook request (or polled update) waits until its message is in the inbox. Messages
that arrive while a write is under way are stored together by the next write, in one
transaction and one thread hop, so a burst costs one commit instead of one each: under load
the acknowledgement waits for at most one write before its own. Order is kept (arrival order
is inbox order, so one person's messages stay in order), and a redelivery inside a batch is
still recognised by the unique (channel, external id) key. When the database is unreachable
the write fails every message of its batch with the database's own error (the webhook
answers 503, and the platform delivers them again); any other failed write is retried
message by message, so one message the database refuses fails alone.

With the inbox worker in this process on one writer (SQLite), a write also routes: the same
transaction stores the batch and handles the oldest pending events (`InboxWorker.
store_and_process`), so the acknowledgement waits for the replies to be queued rather than
for the writer lock that routing held, and a message costs one transaction instead of two.
If that transaction fails, the batch is stored again without routing and left to the worker.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from bot.lanes import Lane
from bot.limits import unreachable
from bot.logs import describe
from handlers.inbound import receive_all
from handlers.messages import Inbound
from storage.db import session_scope

if TYPE_CHECKING:
    from bot.runtime import Runtime

logger = logging.getLogger(__name__)

MAX_BATCH = 256
Waiting = tuple[Inbound, str, "asyncio.Future[bool]"]  # a message and its request


class InboxWriter:
    """Stores inbound messages in batches; `accept` answers whether each one was new."""

    def __init__(self, runtime: Runtime) -> None:
        """Write into the runtime's database and wake its inbox worker."""
        self.runtime = runtime
        self.lane = Lane("inbox-writer")  # never queues behind other parts' threads
        self._pending: list[Waiting] = []
        self._writer: asyncio.Task[None] | None = None

    async def accept(self, inbound: Inbound, external_id: str) -> bool:
        """Store one message (with whatever else is waiting); False when it is a redelivery."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((inbound, external_id, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        return await done

    def _store(self, batch: list[tuple[Inbound, str]]) -> list[bool]:
        """Insert a batch in one transaction; True for each message not seen before."""
        with session_scope(self.runtime.engine) as session:
            return receive_all(session=session, messages=batch)

    @property
    def routes(self) -> bool:
        """True when a write also routes: the worker runs in this process, on one writer."""
        worker = self.runtime.worker
        return worker.running and worker.groups == 1

    async def _write(self, messages: list[tuple[Inbound, str]], *, routes: bool) -> list[bool]:
        """Store messages (and with `routes`, handle pending events in the same transaction)."""
        if not routes:
            return await self.lane.run(self._store, messages)
        worker = self.runtime.worker
        stored, events, queued = await self.lane.run(worker.store_and_process, messages)
        worker.report_stored(events, queued)
        return stored

    async def _write_all(self) -> None:
        """Write batches until nothing is waiting."""
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            routes = self.routes  # decided once: the worker may start or stop meanwhile
            try:
                results = await self._write([(i, e) for i, e, _ in batch], routes=routes)
            except Exception as error:
                logger.warning(
                    "inbox write failed for %d messages (%s)", len(batch), describe(error)
                )
                if unreachable(error) or (len(batch) == 1 and not routes):
                    self._fail(batch, error)
                else:  # only storing now: the worker routes them on its own
                    await self._write_one_by_one(batch)
                continue
            self._settle(batch, results, wake=not routes)

    async def _write_one_by_one(self, batch: list[Waiting]) -> None:
        """Store each message of a failed batch on its own, so only the refused ones fail."""
        for item in batch:
            inbound, external_id, _ = item
            try:
                results = await self.lane.run(self._store, [(inbound, external_id)])
            except Exception as error:
                logger.warning(
                    "inbox write failed for message=%s (%s)", external_id, describe(error)
                )
                self._fail([item], error)
                continue
            self._settle([item], results, wake=True)

    @staticmethod
    def _fail(batch: list[Waiting], error: Exception) -> None:
        """Fail the waiting requests of a batch with the write's error."""
        for _, _, done in batch:
            if not done.done():
                done.set_exception(error)

    def _settle(self, batch: list[Waiting], results: list[bool], *, wake: bool) -> None:
        """Count, answer the waiting requests and (`wake`) tell the worker what was stored."""
        for (inbound, _, done), stored in zip(batch, results, strict=True):
            result = "stored" if stored else "duplicate"
            self.runtime.count(f'inbound_total{{channel="{inbound.channel}",result="{result}"}}')
            if not done.done():
                done.set_result(stored)
        if wake and any(results):
            self.runtime.worker.notify()
