"""Webinar test helpers (also used by the CLI and storage tests): contacts, webinars, sweeps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.clock import FixedClock
from handlers import webinars_core as core
from handlers import webinars_sweep as sweep
from scheduler.webinars import run_sweep
from storage import contacts
from storage import webinars as db
from storage.db import session_scope
from storage.models import OutboxMessage
from storage.webinars_models import WebinarReminder

START = datetime(2027, 3, 14, 15, 0, tzinfo=UTC)  # 11:00 in New York, the day clocks go forward
T0 = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)


def make_contact(
    engine: Engine,
    urn: str,
    now: datetime,
    *,
    tz: str | None = None,
    lang: str = "en",
    country: str | None = None,
    **flags: Any,
) -> int:
    """Create a contact with a city time zone and a language; return its id."""
    with session_scope(engine) as session:
        contact, _ = contacts.get_or_create_contact(session=session, urn=urn, now=now)
        contacts.update_contact(
            session=session,
            contact=contact,
            timezone=tz,
            language=lang,
            language_source="chosen",
            country_code=country,
            **flags,
        )
        session.flush()
        assert contact.id is not None
        return contact.id


def make_webinar(engine: Engine, now: datetime, **overrides: Any) -> int:
    """Create a webinar (organised from Shanghai, starting at START unless told); return its id."""
    fields: dict[str, Any] = {
        "title": {"en": "Making cities resilient", "fr": "Rendre les villes résilientes"},
        "starts_at": START,
        "timezone": "Asia/Shanghai",
        "duration_minutes": 90,
        "join_url": "https://meet.example/drr",
        **overrides,
    }
    with session_scope(engine) as session:
        webinar = core.create_webinar(session=session, spec=core.WebinarSpec(**fields), now=now)
        assert webinar.id is not None
        return webinar.id


def register(engine: Engine, webinar_id: int, contact_id: int, now: datetime) -> str:
    """Register a contact; return the outcome."""
    with session_scope(engine) as session:
        contact = contacts.get_contact(session=session, contact_id=contact_id)
        assert contact is not None
        outcome = core.register(
            session=session, webinar_id=webinar_id, contact=contact, now=now, source="button"
        )
        return outcome.status


def rows(engine: Engine, webinar_id: int | None = None) -> list[WebinarReminder]:
    """Every scheduled message, in due order."""
    with session_scope(engine) as session:
        return db.reminders_of(session=session, webinar_id=webinar_id)


def row_of(engine: Engine, contact_id: int, kind: str, offset: int) -> WebinarReminder:
    """The one scheduled message of a contact with this kind and offset."""
    found = [
        r
        for r in rows(engine)
        if (r.contact_id, r.kind, r.offset_minutes) == (contact_id, kind, offset)
    ]
    assert len(found) == 1, found
    return found[0]


def sent(engine: Engine, prefix: str = "rem:") -> list[OutboxMessage]:
    """Outbox rows the webinar sweep queued, oldest first."""
    with session_scope(engine) as session:
        stmt = (
            select(OutboxMessage)
            .where(col(OutboxMessage.idempotency_key).startswith(prefix))
            .order_by(col(OutboxMessage.id))
        )
        return list(session.exec(stmt))


def sweep_at(engine: Engine, clock: FixedClock, when: datetime) -> sweep.SweepResult:
    """Move the clock to `when` (never back) and run one sweep."""
    assert when >= clock.now()
    clock.advance(when - clock.now())
    return run_sweep(engine=engine, clock=clock)


def text_for(engine: Engine, contact_id: int) -> list[str]:
    """The texts queued for a contact by the sweep."""
    return [m.body["text"] for m in sent(engine) if m.contact_id == contact_id]


@pytest.fixture
def t0() -> FixedClock:
    """A clock four days before START."""
    return FixedClock(T0)
