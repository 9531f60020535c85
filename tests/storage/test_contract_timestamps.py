"""Storage contract, timestamps: stored ones read back aware in UTC; naive ones are refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta, timezone

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError
from sqlmodel import Session, SQLModel

from storage import audit, contacts, inbox, outbox, surveys
from storage.db import session_scope
from tests.storage.contract_cases import (
    NOW,
    assert_utc,
    datetimes_of,
    in_tx,
    new_contact,
    pin,
    start,
    store,
)

pytestmark = pytest.mark.postgres


def test_every_datetime_reads_back_aware_utc(any_engine: Engine) -> None:
    """Timestamps given in another zone read back as the same instant, aware, in UTC."""
    local = NOW.astimezone(timezone(timedelta(hours=5, minutes=30)))
    me = new_contact(any_engine, "telegram:1")
    with session_scope(any_engine) as session:
        contact = contacts.get_contact(session=session, contact_id=me)
        assert contact is not None
        contacts.update_contact(
            session=session,
            contact=contact,
            consent_at=local,
            consent_refused_at=local,
            last_inbound_at=local,
            erased_at=local,
        )
        event_id = store(session, "e1", at=local)
        assert event_id is not None
        message_id = outbox.enqueue(
            session=session,
            idempotency_key="k1",
            urn="telegram:1",
            channel="telegram",
            body={},
            now=local,
        )
        assert message_id is not None
        outbox.mark_sent(session=session, message_id=message_id, now=local, provider_id="p1")
        run = start(session, me, expires_at=local)
        surveys.save_response(
            session=session,
            run=run,
            version=1,
            language="en",
            answers={},
            now=local,
            contact_id=me,
            country_code=None,
            city_name=None,
        )
        audit.record(session=session, action="test", now=local)
    with session_scope(any_engine) as session:
        if any_engine.dialect.name == "postgresql":  # read back in a session that is not UTC
            session.connection().exec_driver_sql("SET LOCAL TIME ZONE 'Asia/Kolkata'")
        rows: list[SQLModel | inbox.PendingEvent | None] = [
            contacts.get_contact(session=session, contact_id=me),
            *inbox.pending_batch(session=session),
            outbox.get_message(session=session, message_id=message_id),
            surveys.active_run(session=session, contact_id=me),
            *surveys.responses(session=session),
            surveys.get_definition(session=session, definition_id=pin(session)),
            *audit.entries(session=session),
        ]
        seen = 0
        for stored in rows:
            assert stored is not None
            for name, value in datetimes_of(stored).items():
                assert_utc(value)
                assert value == NOW, (type(stored).__name__, name)
                seen += 1
        assert seen == 16
        assert len(rows) == 7


def test_naive_datetime_is_refused(any_engine: Engine) -> None:
    """Naive datetimes are rejected on write and in queries, and nothing is stored."""
    naive = NOW.replace(tzinfo=None)
    me = new_contact(any_engine, "telegram:1")
    attempts: dict[str, Callable[[Session], object]] = {
        "contact": lambda s: contacts.get_or_create_contact(
            session=s, urn="telegram:2", now=naive
        ),
        "inbox": lambda s: store(s, "e1", at=naive),
        "outbox": lambda s: outbox.enqueue(
            session=s,
            idempotency_key="k1",
            urn="telegram:1",
            channel="telegram",
            body={},
            now=naive,
        ),
        "claim": lambda s: outbox.claim_due(session=s, channel="telegram", now=naive),
        "run": lambda s: start(s, me, expires_at=naive),
        "audit": lambda s: audit.record(session=s, action="naive", now=naive),
    }
    for where, attempt in attempts.items():
        with pytest.raises((ValueError, StatementError)):
            in_tx(any_engine, attempt)
            pytest.fail(f"{where}: a naive datetime was accepted")
    with session_scope(any_engine) as session:
        assert contacts.get_contact_by_urn(session=session, urn="telegram:2") is None
        assert inbox.pending_batch(session=session) == []
        assert outbox.count_by_status(session=session) == {}
        assert surveys.active_run(session=session, contact_id=me) is None
        assert audit.entries(session=session) == []
