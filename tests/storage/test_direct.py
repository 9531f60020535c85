"""The hot-path statements (`storage/direct.py`): the same values and objects as the ORM's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import inspect, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.engine.processors import str_to_datetime
from sqlmodel import Session

from storage import contacts, inbox
from storage.db import session_scope
from storage.models import Contact, InboxEvent
from storage.types import UTCDateTime, sqlite_utc_bind, sqlite_utc_result

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DIALECT = sqlite.dialect()
ZONES = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
MOMENTS = st.datetimes(  # hypothesis bounds are naive by its API; `timezones` makes them aware
    min_value=datetime(1970, 1, 2),  # noqa: DTZ001
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=ZONES,
)


def _sqlalchemy_bind(value: datetime) -> str:
    """What SQLAlchemy's own chain stores for a UTC column on SQLite."""
    utc = UTCDateTime()
    naive = utc.process_bind_param(value, DIALECT)
    processor = utc.impl_instance.dialect_impl(DIALECT).bind_processor(DIALECT)
    assert processor is not None
    stored: str = processor(naive)
    return stored


@given(MOMENTS)
def test_timestamps_are_stored_as_sqlalchemy_stores_them(value: datetime) -> None:
    """One-step conversion, same string: rows written either way compare and sort alike."""
    assert sqlite_utc_bind(value) == _sqlalchemy_bind(value)


@given(MOMENTS)
def test_timestamps_read_back_as_sqlalchemy_reads_them(value: datetime) -> None:
    """Read back aware, in UTC, the same instant as was written."""
    stored = _sqlalchemy_bind(value)
    expected = UTCDateTime().process_result_value(str_to_datetime(stored), DIALECT)
    assert sqlite_utc_result(stored) == expected == value
    assert sqlite_utc_result(stored).tzinfo is UTC


def test_naive_timestamps_are_refused() -> None:
    """A naive datetime is an error, as through the ORM."""
    with pytest.raises(ValueError, match="naive"):
        sqlite_utc_bind(datetime(2026, 1, 1, 12, 0))  # noqa: DTZ001 - naive on purpose


def test_direct_and_orm_timestamps_meet_in_queries(engine: Engine) -> None:
    """A time written on the driver is found by an ORM filter and read back by the ORM."""
    received = datetime(2026, 11, 2, 10, 30, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    with session_scope(engine) as session:
        event_id = inbox.store_event(
            session=session,
            channel="telegram",
            external_id="e1",
            urn="telegram:1",
            payload={"text": "hi"},
            received_at=received,
        )
    with session_scope(engine) as session:
        found = session.exec(
            select(InboxEvent.id).where(InboxEvent.received_at < NOW + timedelta(minutes=31))
        ).all()
        later = session.exec(
            select(InboxEvent.id).where(InboxEvent.received_at > NOW + timedelta(minutes=29))
        ).all()
        assert [row[0] for row in found] == [row[0] for row in later] == [event_id]
        event = session.get(InboxEvent, event_id)
        assert event is not None and event.received_at == received
        [pending] = inbox.pending_batch(session=session)
        assert pending.received_at == received and pending.received_at.tzinfo is UTC


def _contact(session: Session) -> Contact:
    """The contact of telegram:1, read on the driver and attached."""
    found, _ = contacts.contact_with_active_run(session=session, urn="telegram:1")
    assert found is not None
    return found


def test_attached_rows_behave_as_loaded_objects(engine: Engine) -> None:
    """Persistent and clean; changes flush and commit; the session's own object wins."""
    with session_scope(engine) as session:
        contacts.create_contact(session=session, urn="telegram:1", now=NOW)
    with session_scope(engine) as session:
        contact = _contact(session)
        state = inspect(contact)
        assert state.persistent and contact not in session.dirty and not session.new
        assert session.get(Contact, contact.id) is contact  # in the identity map
        contact.name = "Amina"
        assert contact in session.dirty
        assert _contact(session) is contact and contact.name == "Amina"  # unflushed wins
    with session_scope(engine) as session:
        contact = _contact(session)
        assert contact.name == "Amina"
        contact.name = "Changed, then rolled back"
        session.rollback()
        assert contact.name == "Amina"  # expired by the rollback, reloaded on access
