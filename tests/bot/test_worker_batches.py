"""The inbox worker on one writer (SQLite): each batch is read and handled in one hop."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from bot.runtime import build_runtime
from bot.settings import Settings
from handlers.inbound import receive
from handlers.messages import Inbound
from handlers.places import Gazetteer
from storage import inbox, outbox
from storage.db import read_scope, session_scope
from storage.inbox import PendingEvent


def test_one_writer_handles_batches_in_order_and_drain_ends(
    engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """Batches of `batch_size`, oldest first; each person's messages in order; then 0."""
    settings = Settings(database_url=str(engine.url), _env_file=None)  # type: ignore[call-arg]
    runtime = build_runtime(
        settings, engine=engine, clock=clock, places=places, channels={}, with_scheduler=False
    )
    worker = runtime.worker
    assert worker.groups == 1
    worker.batch_size = 4
    handled: list[list[PendingEvent]] = []
    worker.on_processed = handled.append
    with session_scope(engine) as session:
        for i in range(10):
            urn = f"console:{'ab'[i % 2]}"
            text = "Hello, good morning from the mayor's office" if i < 2 else "help"
            inbound = Inbound(urn=urn, text=text, received_at=clock.now())
            assert receive(session=session, inbound=inbound, external_id=f"m{i}") is not None

    async def scenario() -> list[int]:
        """Look three times, then once more with nothing left."""
        counts = [await worker.run_once() for _ in range(4)]
        await worker.drain()
        return counts

    assert asyncio.run(scenario()) == [4, 4, 2, 0]
    assert [[e.external_id for e in batch] for batch in handled] == [
        ["m0", "m1", "m2", "m3"],
        ["m4", "m5", "m6", "m7"],
        ["m8", "m9"],
    ]
    with read_scope(engine) as session:
        assert inbox.pending_batch(session=session) == []
        assert sum(outbox.count_by_status(session=session).values()) >= 10
