"""Storage contract, inbox: deduplication, pending batches, transactions, redaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage import inbox
from storage.db import session_scope
from tests.storage.contract_cases import (
    NOW,
    in_tx,
    store,
)

pytestmark = pytest.mark.postgres


def test_store_event_dedupes_per_channel_and_keeps_first_row(any_engine: Engine) -> None:
    """A repeated (channel, external_id) is refused now and later; other channels are fine."""
    with session_scope(any_engine) as session:
        first = store(session, "m1", payload={"text": "first"})
        assert first is not None
        assert store(session, "m1", urn="telegram:2", payload={"text": "same tx"}) is None
        store(session, "m2")  # the transaction is still usable after a duplicate
    with session_scope(any_engine) as session:
        later = NOW + timedelta(minutes=1)
        assert store(session, "m1", urn="telegram:3", payload={"text": "later"}, at=later) is None
    with session_scope(any_engine) as session:
        events = inbox.pending_batch(session=session)
        assert [(e.external_id, e.urn) for e in events] == [
            ("m1", "telegram:1"),
            ("m2", "telegram:1"),
        ]
        assert events[0].id == first
        assert events[0].payload == {"text": "first"}
        assert events[0].received_at == NOW
    with session_scope(any_engine) as session:  # deduplication is per channel
        other = store(session, "m1", channel="whatsapp", urn="whatsapp:+1")
        assert other is not None and other != first
    with session_scope(any_engine) as session:
        assert [e.channel for e in inbox.pending_batch(session=session, urn="whatsapp:+1")] == [
            "whatsapp"
        ]


def test_pending_batch_oldest_first_per_urn_and_mark_processed(any_engine: Engine) -> None:
    """Unprocessed events come oldest first, optionally per URN; processed ones drop out."""
    with session_scope(any_engine) as session:
        for i, urn in enumerate(["telegram:1", "telegram:2", "telegram:1", "telegram:2"]):
            store(session, f"e{i}", urn=urn, at=NOW + timedelta(seconds=i))
    with session_scope(any_engine) as session:
        assert [e.external_id for e in inbox.pending_batch(session=session)] == [
            "e0",
            "e1",
            "e2",
            "e3",
        ]
        assert [e.external_id for e in inbox.pending_batch(session=session, limit=2)] == [
            "e0",
            "e1",
        ]
        others = inbox.pending_batch(session=session, skip_urns={"telegram:1"}, limit=2)
        assert [e.external_id for e in others] == ["e1", "e3"]  # a URN in hand is skipped
        mine = inbox.pending_batch(session=session, urn="telegram:1")
        assert [e.external_id for e in mine] == ["e0", "e2"]
        inbox.mark_processed(
            session=session, event_id=mine[0].id or 0, now=NOW + timedelta(minutes=1)
        )
        inbox.mark_processed(
            session=session, event_id=mine[1].id or 0, now=NOW, error="bad payload"
        )
    with session_scope(any_engine) as session:
        assert inbox.pending_batch(session=session, urn="telegram:1") == []
        assert [e.external_id for e in inbox.pending_batch(session=session)] == ["e1", "e3"]


def test_direct_statements_follow_the_session_into_each_new_transaction(
    any_engine: Engine,
) -> None:
    """The driver connection is looked up once a transaction, never reused after it ends."""
    with Session(any_engine, expire_on_commit=False) as session:
        store(session, "kept-out")
        assert [e.external_id for e in inbox.pending_batch(session=session)] == ["kept-out"]
        session.rollback()  # the next statement runs in a new transaction
        assert inbox.pending_batch(session=session) == []
        store(session, "kept")
        session.commit()
        store(session, "also kept")
        session.commit()
    with session_scope(any_engine) as session:
        assert [e.external_id for e in inbox.pending_batch(session=session)] == [
            "kept",
            "also kept",
        ]


def test_redact_events_blanks_payload_and_urn(any_engine: Engine) -> None:
    """redact_events empties the payload and replaces the URN of the given URNs' events only."""
    with session_scope(any_engine) as session:
        store(session, "e1", urn="telegram:1", payload={"text": "my name is Amina"})
        store(session, "e2", urn="whatsapp:+1", payload={"text": "hi"})
        store(session, "e3", urn="telegram:2", payload={"text": "keep me"})
        assert inbox.redact_events(session=session, urns=[]) == 0
    n = in_tx(
        any_engine, lambda s: inbox.redact_events(session=s, urns=["telegram:1", "whatsapp:+1"])
    )
    assert n == 2
    with session_scope(any_engine) as session:
        events = {e.external_id: e for e in inbox.pending_batch(session=session)}
        assert (events["e1"].urn, events["e1"].payload) == ("erased", {})
        assert (events["e2"].urn, events["e2"].payload) == ("erased", {})
        assert (events["e3"].urn, events["e3"].payload) == ("telegram:2", {"text": "keep me"})
        assert inbox.pending_batch(session=session, urn="telegram:1") == []
