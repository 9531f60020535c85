"""Storage contract, concurrency: simultaneous inbox stores and outbox claims in threads."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.engine import Engine

from storage import inbox, outbox
from storage.db import session_scope
from tests.storage.contract_cases import (
    LEASE,
    NOW,
    enqueue,
    read_message,
    run_threads,
    store,
)

pytestmark = pytest.mark.postgres


def test_concurrent_store_event_same_id_stores_one_row(any_engine: Engine) -> None:
    """Threads storing the same (channel, external_id) at once leave exactly one row."""

    def work(barrier: threading.Barrier) -> int | None:
        """Store the shared event, holding the transaction open a moment."""
        barrier.wait()
        with session_scope(any_engine) as session:
            event_id = store(session, "dup", payload={"thread": threading.get_ident()})
            time.sleep(0.02)
            return event_id

    results = run_threads(4, work)
    assert len([r for r in results if r is not None]) == 1
    with session_scope(any_engine) as session:
        assert len(inbox.pending_batch(session=session)) == 1


def test_concurrent_claims_take_each_message_at_most_once(any_engine: Engine) -> None:
    """Dispatchers claiming at once never share a message, miss none, keep per-URN order."""
    ids = [enqueue(any_engine, f"k{i}") for i in range(12)]
    enqueue(any_engine, "wa", channel="whatsapp")
    for i in range(3):  # follow-ups wait for the URN's first message, whoever claims it
        enqueue(any_engine, f"k{i}-next", urn=f"telegram:k{i}")

    def work(barrier: threading.Barrier) -> list[int]:
        """Claim at the shared instant, holding the transaction open a moment."""
        barrier.wait()
        with session_scope(any_engine) as session:
            rows = outbox.claim_due(
                session=session, channel="telegram", now=NOW, limit=5, lease=LEASE
            )
            time.sleep(0.02)
            return [row.id for row in rows if row.id is not None]

    claimed = [message_id for batch in run_threads(4, work) for message_id in batch]
    assert len(claimed) == len(set(claimed))
    assert sorted(claimed) == ids
    for message_id in ids:
        assert read_message(any_engine, message_id).attempts == 1
