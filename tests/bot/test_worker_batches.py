"""The inbox worker on one writer (SQLite): each batch is read and handled in one hop."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from handlers.i18n import t
from handlers.inbound import receive
from handlers.messages import Inbound
from handlers.places import Gazetteer
from storage import inbox, outbox
from storage.db import read_scope, session_scope
from storage.inbox import PendingEvent
from tests.support import bare_runtime


def test_one_writer_handles_batches_in_order_and_drain_ends(
    engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """Batches of `batch_size`, oldest first; each person's messages in order; then 0."""
    runtime = bare_runtime(engine, clock, places)
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


def test_on_one_writer_accept_stores_and_routes_in_one_transaction(
    engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """When `accept` returns, the replies are queued and nothing is left for the worker."""
    runtime = bare_runtime(engine, clock, places)
    handled: list[list[PendingEvent]] = []
    runtime.worker.on_processed = handled.append
    messages = [("console:a", "Hello, good morning"), ("console:b", "help"), ("console:a", "?")]

    async def scenario() -> list[bool]:
        """Three people's messages at once (one group commit), then a redelivery."""
        await runtime.start()
        try:
            return await accept_all()
        finally:
            await runtime.stop()

    async def accept_all() -> list[bool]:
        """Accept the messages together, then one again."""
        accepted = await asyncio.gather(
            *(
                runtime.accept(Inbound(urn=urn, text=text, received_at=clock.now()), f"m{i}")
                for i, (urn, text) in enumerate(messages)
            )
        )
        again = Inbound(urn="console:b", text="help", received_at=clock.now())
        return [*accepted, await runtime.accept(again, "m1")]

    assert asyncio.run(scenario()) == [True, True, True, False]
    assert [e.external_id for batch in handled for e in batch] == ["m0", "m1", "m2"]
    assert runtime.worker._stored is False  # everything was taken: no look needed
    with read_scope(engine) as session:
        assert inbox.pending_batch(session=session) == []
        assert len(outbox.messages_for(session=session, urn="console:a")) >= 2
        assert len(outbox.messages_for(session=session, urn="console:b")) >= 1


def test_when_routing_fails_the_messages_are_stored_for_the_worker(
    engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """A write that cannot route is redone as a plain store: acknowledged, left pending."""
    with session_scope(engine) as session:  # the database refuses every reply to console:b
        session.execute(
            text(
                "CREATE TRIGGER refuse AFTER INSERT ON outboxmessage WHEN NEW.urn = 'console:b'"
                " BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    runtime = bare_runtime(engine, clock, places)

    async def scenario() -> list[bool]:
        """Two people's messages in one write; one of them cannot be answered."""
        runtime.worker.running = True  # as under `start`, without its sweep taking them
        return list(
            await asyncio.gather(
                *(
                    runtime.accept(Inbound(urn=urn, text="help", received_at=clock.now()), urn)
                    for urn in ("console:a", "console:b")
                )
            )
        )

    assert asyncio.run(scenario()) == [True, True]
    assert runtime.worker._stored is True  # the worker was told to look
    with read_scope(engine) as session:
        assert [e.urn for e in inbox.pending_batch(session=session)] == [
            "console:a",
            "console:b",
        ]


def test_a_batch_that_fails_is_redone_one_by_one_and_only_the_bad_message_fails(
    engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """The others are answered as usual; the bad one gets an apology and its error's name."""
    with session_scope(engine) as session:  # the database refuses console:bad as a new contact
        session.execute(
            text(
                "CREATE TRIGGER refuse AFTER INSERT ON contacturn WHEN NEW.urn = 'console:bad'"
                " BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
        for urn in ("console:a", "console:bad", "console:c"):
            inbound = Inbound(urn=urn, text="help", received_at=clock.now())
            receive(session=session, inbound=inbound, external_id=urn)
    runtime = bare_runtime(engine, clock, places)
    handled: list[list[PendingEvent]] = []
    runtime.worker.on_processed = handled.append
    asyncio.run(runtime.worker.drain())
    assert [[e.urn for e in batch] for batch in handled] == [
        ["console:a", "console:bad", "console:c"]
    ]
    with read_scope(engine) as session:
        assert inbox.pending_batch(session=session) == []
        rows = session.connection().exec_driver_sql("SELECT urn, error FROM inboxevent")
        errors = {urn: error for urn, error in rows}
        bad = [m.body["text"] for m in outbox.messages_for(session=session, urn="console:bad")]
        good = [m.body["text"] for m in outbox.messages_for(session=session, urn="console:c")]
    assert errors == {"console:a": None, "console:bad": "IntegrityError", "console:c": None}
    assert bad == [t("internal_error", "en")]
    assert good and t("internal_error", "en") not in good
