"""Storing updates before acknowledging them, with group commit.

Each webhook request (or polled update) waits until its update is in the inbox. Updates that
arrive while a write is under way are stored together by the next write, in one transaction
and one thread hop, so a burst costs one commit instead of one each: under load the
acknowledgement waits for at most one write before its own. Order is kept (arrival order is
inbox order, so one chat's messages stay in order), a redelivery inside a batch is still
recognised by the unique (channel, update_id) key, and a failed write fails every update of
its batch (the webhook answers 500, and Telegram delivers them again).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from handlers.inbound import receive
from handlers.messages import Inbound
from storage.db import session_scope

if TYPE_CHECKING:
    from bot.runtime import Runtime

logger = logging.getLogger(__name__)

MAX_BATCH = 256


class InboxWriter:
    """Stores inbound messages in batches; `accept` answers whether each one was new."""

    def __init__(self, runtime: Runtime) -> None:
        """Write into the runtime's database and wake its inbox worker."""
        self.runtime = runtime
        self._pending: list[tuple[Inbound, str, asyncio.Future[bool]]] = []
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
            return [
                receive(session=session, inbound=inbound, external_id=external_id) is not None
                for inbound, external_id in batch
            ]

    async def _write_all(self) -> None:
        """Write batches until nothing is waiting."""
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                results = await asyncio.to_thread(self._store, [(i, e) for i, e, _ in batch])
            except Exception as error:
                logger.exception("inbox write failed for %d updates", len(batch))
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            for (inbound, _, done), stored in zip(batch, results, strict=True):
                result = "stored" if stored else "duplicate"
                self.runtime.count(
                    f'inbound_total{{channel="{inbound.channel}",result="{result}"}}'
                )
                if not done.done():
                    done.set_result(stored)
            if any(results):
                self.runtime.worker.notify()
