"""Webinar storage on SQLite and PostgreSQL: concurrency, unique keys, figures for staff."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from handlers import webinars_core as core
from scheduler.webinars import run_sweep
from storage import contacts, outbox
from storage import webinars as db
from storage.db import make_engine, session_scope
from tests.scheduler.webinar_cases import (
    START,
    T0,
    make_contact,
    make_webinar,
    register,
    rows,
    sent,
)

pytestmark = pytest.mark.postgres
T = TypeVar("T")


def run_threads(count: int, work: Callable[[threading.Barrier, int], T]) -> list[T]:
    """Run `work` in `count` threads released together; return their results."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def target(index: int) -> None:
        """Run the work, keeping any error."""
        try:
            results[index] = work(barrier, index)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def other_engine(engine: Engine) -> Engine:
    """A second engine on the same database, as another process would have (own pool/lock)."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "sqlite":
        return make_engine(url)
    with engine.connect() as connection:
        path = str(connection.execute(text("SHOW search_path")).scalar())
    second = make_engine(url)

    @event.listens_for(second, "connect")
    def _search_path(dbapi_connection: Any, _record: Any) -> None:
        """Use the test schema."""
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET search_path TO {path}")
        cursor.close()
        dbapi_connection.commit()

    return second


@pytest.fixture
def second(any_engine: Engine) -> Iterator[Engine]:
    """Another engine on the same database."""
    engine = other_engine(any_engine)
    yield engine
    engine.dispose()


def test_two_schedulers_at_once_queue_each_reminder_exactly_once(
    any_engine: Engine, second: Engine
) -> None:
    """Four sweeps in two processes race over 60 reminders: each is queued exactly once."""
    webinars = [make_webinar(any_engine, T0), make_webinar(any_engine, T0)]
    for i in range(30):
        person = make_contact(any_engine, f"console:r{i}", T0, tz="Africa/Freetown")
        for webinar in webinars:
            register(any_engine, webinar, person, T0)
    due = START - timedelta(hours=24)

    def work(barrier: threading.Barrier, index: int) -> int:
        """One scheduler's sweep: two at the due time, two 30 s before with a 60 s look-ahead."""
        engine = any_engine if index % 2 else second
        early = index < 2
        clock = FixedClock(due - timedelta(seconds=30) if early else due)
        barrier.wait()
        return run_sweep(engine=engine, clock=clock, batch=4, horizon=60 if early else 0).queued

    queued = run_threads(4, work)
    assert sum(queued) == 60
    reminders = [r for r in rows(any_engine) if r.kind == "reminder" and r.offset_minutes == 1440]
    assert {r.status for r in reminders} == {"queued"}
    assert len({r.outbox_id for r in reminders}) == 60
    messages = sent(any_engine)
    assert len(messages) == 60
    assert sorted(m.idempotency_key for m in messages) == sorted(f"rem:{r.id}" for r in reminders)
    again = run_threads(2, work)
    assert again == [0, 0]


def test_a_claim_skips_rows_another_scheduler_holds(any_engine: Engine, second: Engine) -> None:
    """PostgreSQL: SKIP LOCKED hands concurrent sweeps disjoint rows, never a queued one."""
    if any_engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers; there is nothing to skip")
    webinar = make_webinar(any_engine, T0)
    for i in range(6):
        register(any_engine, webinar, make_contact(any_engine, f"console:s{i}", T0), T0)
    due = START - timedelta(hours=24)
    with session_scope(any_engine) as first:
        held = db.claim_due(session=first, now=due, limit=4)
        with session_scope(second) as other:
            rest = db.claim_due(session=other, now=due, limit=10)
            assert {r.id for r in held}.isdisjoint({r.id for r in rest})
            assert len(rest) == 2
        for row in held:
            row.status = "queued"
            db.save_reminder(session=first, reminder=row, now=due)
    with session_scope(second) as other:
        left = db.claim_due(session=other, now=due, limit=10)
        assert {r.id for r in left} == {r.id for r in rest}


def test_capacity_holds_when_many_register_at_once(any_engine: Engine, second: Engine) -> None:
    """The webinar row is locked while registering: eight at once for three places."""
    webinar = make_webinar(any_engine, T0, capacity=3)
    people = [make_contact(any_engine, f"console:c{i}", T0, tz="UTC") for i in range(8)]

    def work(barrier: threading.Barrier, index: int) -> str:
        """Register one person at the shared instant."""
        engine = any_engine if index % 2 else second
        barrier.wait()
        return register(engine, webinar, people[index], T0)

    outcomes = run_threads(8, work)
    assert sorted(outcomes) == ["full"] * 5 + ["registered"] * 3
    with session_scope(any_engine) as session:
        assert db.count_registered(session=session, webinar_ids=[webinar]) == {webinar: 3}


def test_registering_again_reuses_the_row_and_its_reminders(any_engine: Engine) -> None:
    """One registration and one row per message key, whatever is clicked how often."""
    webinar = make_webinar(any_engine, T0)
    person = make_contact(any_engine, "console:again", T0, tz="UTC")
    assert register(any_engine, webinar, person, T0) == "registered"
    assert register(any_engine, webinar, person, T0) == "already"
    first = {(r.kind, r.offset_minutes): r.id for r in rows(any_engine, webinar)}
    with session_scope(any_engine) as session:
        contact = contacts.get_contact(session=session, contact_id=person)
        assert contact is not None
        outcome = core.unregister(session=session, webinar_id=webinar, contact=contact, now=T0)
        assert outcome.status == "unregistered"
    assert {r.status for r in rows(any_engine, webinar)} == {"cancelled"}
    later = T0 + timedelta(hours=1)
    assert register(any_engine, webinar, person, later) == "registered"
    again = rows(any_engine, webinar)
    assert {(r.kind, r.offset_minutes): r.id for r in again} == first
    assert {r.status for r in again} == {"scheduled"}
    with session_scope(any_engine) as session:
        registration = db.get_registration(session=session, webinar_id=webinar, contact_id=person)
        assert registration is not None
        assert (registration.status, registration.registered_at) == ("registered", later)


def test_the_staff_interface_registrants_and_summary(any_engine: Engine) -> None:
    """What the staff engineer's reports call: registrant ids and a programme summary."""
    webinar = make_webinar(any_engine, T0, capacity=10)
    other = make_webinar(any_engine, T0, starts_at=START + timedelta(days=7))
    people = [
        make_contact(any_engine, "console:sl", T0, tz="Africa/Freetown", country="SL", lang="en"),
        make_contact(any_engine, "console:cn", T0, tz="Asia/Shanghai", country="CN", lang="zh"),
        make_contact(any_engine, "console:x", T0, lang="fr"),
    ]
    for person in people:
        register(any_engine, webinar, person, T0)
    register(any_engine, other, people[0], T0)
    with session_scope(any_engine) as session:
        core.cancel_webinar(session=session, webinar_id=other, now=T0)
    clock = FixedClock(START - timedelta(hours=24, minutes=70))  # 21:50 in Shanghai
    run_sweep(engine=any_engine, clock=clock)
    clock.advance(timedelta(minutes=70))  # 15:00 in Freetown
    run_sweep(engine=any_engine, clock=clock)
    with session_scope(any_engine) as session:
        assert db.registrant_contact_ids(session=session, webinar_id=webinar) == people
        assert db.registrant_contact_ids(session=session, webinar_id=999) == []
        figures = db.summary(session=session)
    assert figures["webinars"] == {"scheduled": 1, "cancelled": 1}
    assert figures["registered"] == 4 and figures["unregistered"] == 0
    assert figures["by_country"] == {"SL": 2, "CN": 1, "unknown": 1}
    assert figures["by_language"] == {"en": 2, "zh": 1, "fr": 1}
    assert figures["reminders"]["reminder"] == {"queued": 3, "scheduled": 3, "cancelled": 2}
    assert figures["delivery"] == {"reminder": {"pending": 3}, "cancelled": {"pending": 1}}
    assert figures["skip_reasons"] == {"webinar_cancelled": 3}
    assert [w["id"] for w in figures["per_webinar"]] == [webinar, other]
    assert figures["per_webinar"][0]["registered"] == 3


def test_delivery_stats_follow_the_outbox(any_engine: Engine) -> None:
    """Reminders joined to their outbox rows: sent, delivered, read, failed, needs_template."""
    webinar = make_webinar(any_engine, T0)
    for i in range(5):
        person = make_contact(any_engine, f"console:d{i}", T0, tz="UTC")
        register(any_engine, webinar, person, T0)
    now = START - timedelta(hours=24)
    run_sweep(engine=any_engine, clock=FixedClock(now))
    ids = [m.id or 0 for m in sent(any_engine)]
    with session_scope(any_engine) as session:
        for index, message_id in enumerate(ids[:3]):
            outbox.mark_sent(
                session=session, message_id=message_id, now=now, provider_id=f"p{index}"
            )
        outbox.apply_status(session=session, provider_id="p1", status="delivered", now=now)
        outbox.apply_status(session=session, provider_id="p2", status="read", now=now)
        outbox.mark_failed(
            session=session,
            message_id=ids[3],
            now=now,
            code="63016",
            reason="outside the window",
            status="needs_template",
        )
        figures = db.reminder_stats(session=session, webinar_id=webinar)
    assert figures["delivery"] == {
        "reminder": {"sent": 1, "delivered": 1, "read": 1, "needs_template": 1, "pending": 1}
    }


def test_forgetting_a_contact_blanks_its_certificate_names(any_engine: Engine) -> None:
    """The certificate name is personal; the rest of the registration is not."""
    webinar = make_webinar(any_engine, T0)
    person = make_contact(any_engine, "console:f", T0)
    register(any_engine, webinar, person, T0)
    with session_scope(any_engine) as session:
        registration = db.get_registration(session=session, webinar_id=webinar, contact_id=person)
        assert registration is not None
        db.record_feedback(
            session=session,
            registration=registration,
            response_id=None,
            certificate_name="Amina Kamara",
            now=T0,
        )
    with session_scope(any_engine) as session:
        assert db.forget_contact(session=session, contact_id=person) == 1
        registration = db.get_registration(session=session, webinar_id=webinar, contact_id=person)
        assert registration is not None
        assert registration.certificate_name is None and registration.feedback_at == T0


def test_times_read_back_in_utc(any_engine: Engine) -> None:
    """Due times are stored and read back as aware UTC instants on both databases."""
    webinar = make_webinar(any_engine, T0, timezone="America/New_York")
    register(any_engine, webinar, make_contact(any_engine, "console:t", T0, tz="Asia/Tokyo"), T0)
    for row in rows(any_engine, webinar):
        assert row.due_at.tzinfo is not None and row.due_at.utcoffset() == timedelta(0)
    assert min(r.due_at for r in rows(any_engine, webinar)) > datetime(2027, 3, 12, tzinfo=UTC)


def test_reminders_handed_over_early_are_taken_back_by_a_cancellation(any_engine: Engine) -> None:
    """A cancellation takes back early outbox rows, not one a dispatcher holds."""
    webinar = make_webinar(any_engine, T0)
    people = [make_contact(any_engine, f"console:e{i}", T0, tz="UTC") for i in range(3)]
    for person in people:
        register(any_engine, webinar, person, T0)
    due = START - timedelta(hours=24)
    clock = FixedClock(due - timedelta(seconds=40))
    assert run_sweep(engine=any_engine, clock=clock, horizon=60).queued == 3
    first = sent(any_engine)[0]
    with session_scope(any_engine) as session:
        (claimed,) = outbox.claim_due(session=session, channel="console", now=due, limit=1)
        assert claimed.id == first.id  # a dispatcher has it in hand
    with session_scope(any_engine) as session:
        core.cancel_webinar(session=session, webinar_id=webinar, now=clock.now())
    statuses = {m.contact_id: m.status for m in sent(any_engine) if m.kind == "reminder"}
    assert statuses == {people[0]: "sending", people[1]: "cancelled", people[2]: "cancelled"}
    reminders = {
        r.contact_id: (r.status, r.version)
        for r in rows(any_engine, webinar)
        if r.kind == "reminder" and r.offset_minutes == 1440
    }
    assert reminders == {
        people[0]: ("queued", 1),
        people[1]: ("cancelled", 2),
        people[2]: ("cancelled", 2),
    }
