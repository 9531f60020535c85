"""Helpers for the storage contract tests: one-transaction wrappers, threads, UTC checks."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from storage import contacts, inbox, outbox, surveys
from storage.db import session_scope
from storage.models import Contact, OutboxMessage, SurveyRun

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=2)
T = TypeVar("T")


def in_tx(engine: Engine, work: Callable[[Session], T]) -> T:
    """Run `work` in its own transaction and return its result."""
    with session_scope(engine) as session:
        return work(session)


def new_contact(engine: Engine, urn: str) -> int:
    """Create a contact for `urn` in its own transaction and return its id."""
    with session_scope(engine) as session:
        contact, _ = contacts.get_or_create_contact(session=session, urn=urn, now=NOW)
        assert contact.id is not None
        return contact.id


def read_contact(engine: Engine, contact_id: int) -> Contact:
    """Read a contact back in a fresh transaction."""
    with session_scope(engine) as session:
        contact = contacts.get_contact(session=session, contact_id=contact_id)
        assert contact is not None
        return contact


def read_message(engine: Engine, message_id: int) -> OutboxMessage:
    """Read an outbox row back in a fresh transaction."""
    with session_scope(engine) as session:
        row = outbox.get_message(session=session, message_id=message_id)
        assert row is not None
        return row


def enqueue(
    engine: Engine,
    key: str,
    *,
    channel: str = "telegram",
    urn: str | None = None,
    now: datetime = NOW,
    contact_id: int | None = None,
    not_before: datetime | None = None,
) -> int:
    """Enqueue one message (to its own URN unless given) in a transaction; return its id."""
    with session_scope(engine) as session:
        message_id = outbox.enqueue(
            session=session,
            idempotency_key=key,
            urn=urn or f"{channel}:{key}",
            channel=channel,
            body={"text": key},
            now=now,
            contact_id=contact_id,
            not_before=not_before,
        )
        assert isinstance(message_id, int)
        return message_id


def claim(
    engine: Engine, now: datetime, *, channel: str = "telegram", limit: int = 50
) -> list[int]:
    """Claim due messages in their own transaction and return their ids."""
    with session_scope(engine) as session:
        rows = outbox.claim_due(
            session=session, channel=channel, now=now, limit=limit, lease=LEASE
        )
        return [row.id for row in rows if row.id is not None]


def sent_message(engine: Engine, key: str, provider_id: str) -> int:
    """Enqueue, claim and hand over one message; return its id."""
    message_id = enqueue(engine, key)
    assert claim(engine, NOW) == [message_id]
    with session_scope(engine) as session:
        outbox.mark_sent(session=session, message_id=message_id, now=NOW, provider_id=provider_id)
    return message_id


def callback(
    engine: Engine,
    provider_id: str,
    status: str,
    *,
    now: datetime = NOW,
    error_code: str | None = None,
) -> bool:
    """Apply one provider status callback in its own transaction."""
    with session_scope(engine) as session:
        return outbox.apply_status(
            session=session, provider_id=provider_id, status=status, now=now, error_code=error_code
        )


def store(
    session: Session,
    external_id: str,
    *,
    urn: str = "telegram:1",
    channel: str = "telegram",
    payload: dict[str, Any] | None = None,
    at: datetime = NOW,
) -> int | None:
    """Store an inbox event and return its id (None for a duplicate)."""
    return inbox.store_event(
        session=session,
        channel=channel,
        external_id=external_id,
        urn=urn,
        payload=payload if payload is not None else {"text": external_id},
        received_at=at,
    )


def pin(session: Session, digest: str = "d1", survey_id: str = "city_profile") -> int:
    """Pin a small survey definition; return its id."""
    return surveys.pin_definition(
        session=session,
        survey_id=survey_id,
        version=1,
        digest=digest,
        body={"questions": [{"id": "q1"}]},
        now=NOW,
    )


def start(
    session: Session, contact_id: int, *, expires_at: datetime = NOW + timedelta(days=1)
) -> SurveyRun:
    """Start a run of the pinned definition for a contact."""
    return surveys.start_run(
        session=session,
        contact_id=contact_id,
        survey_id="city_profile",
        definition_id=pin(session),
        now=NOW,
        expires_at=expires_at,
    )


def run_threads(n: int, work: Callable[[threading.Barrier], T]) -> list[T]:
    """Run `work` in `n` threads released together by a barrier; return their results."""
    barrier = threading.Barrier(n, timeout=10)
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(work, barrier) for _ in range(n)]
        return [future.result(timeout=30) for future in futures]


def assert_utc(value: datetime | None) -> None:
    """A stored timestamp reads back aware, in UTC."""
    assert value is not None
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)
    assert value.tzinfo == UTC


def datetimes_of(row: SQLModel | inbox.PendingEvent) -> dict[str, datetime]:
    """Every non-null datetime field of a row (a table model or a pending inbox event)."""
    fields = row.model_dump() if isinstance(row, SQLModel) else dataclasses.asdict(row)
    return {k: v for k, v in fields.items() if isinstance(v, datetime)}
