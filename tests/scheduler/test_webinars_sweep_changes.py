"""Webinar reminders when a webinar is rescheduled or cancelled."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from handlers import webinars_core as core
from storage import contacts
from storage.db import session_scope
from tests.scheduler.webinar_cases import (
    START,
    T0,
    make_contact,
    make_webinar,
    register,
    row_of,
    rows,
    sent,
    sweep_at,
)
from tests.scheduler.webinar_cases import t0 as t0  # a fixture


def test_rescheduling_moves_unsent_reminders_rearms_sent_ones_and_tells_registrants(
    engine: Engine, t0: FixedClock
) -> None:
    """A moved start moves unsent reminders, sends sent ones again and tells registrants."""
    webinar = make_webinar(engine, t0.now())
    fn = make_contact(engine, "console:fn", T0, tz="Africa/Freetown")
    ny = make_contact(engine, "console:ny", T0, tz="America/New_York", lang="fr")
    register(engine, webinar, fn, t0.now())
    register(engine, webinar, ny, t0.now())
    sweep_at(engine, t0, START - timedelta(hours=24))
    assert len(sent(engine)) == 2
    later = START + timedelta(days=2)
    with session_scope(engine) as session:
        result = core.edit_webinar(
            session=session,
            webinar_id=webinar,
            changes={"starts_at": later},
            now=t0.now(),
        )
    assert result.changed == ("starts_at",) and result.notified == 2
    day = row_of(engine, fn, "reminder", 1440)
    assert (day.status, day.version, day.due_at) == ("scheduled", 2, later - timedelta(days=1))
    assert row_of(engine, fn, "reminder", 60).due_at == later - timedelta(hours=1)
    assert row_of(engine, fn, "survey", 60).due_at == later + timedelta(minutes=150)
    sweep_at(engine, t0, t0.now())
    notices = [m for m in sent(engine) if m.kind == "webinar_update"]
    assert len(notices) == 2
    (ny_notice,) = [m for m in notices if m.contact_id == ny]
    assert "a été modifié" in ny_notice.body["text"]
    assert "mardi 16 mars 2027 11:00 (UTC−04:00, New York)" in ny_notice.body["text"]
    sweep_at(engine, t0, later - timedelta(days=1))
    mine = [m for m in sent(engine) if m.contact_id == fn]
    assert [m.kind for m in mine] == ["reminder", "webinar_update", "reminder"]
    assert [mine[0].idempotency_key, mine[2].idempotency_key] == [
        f"rem:{day.id}",
        f"rem:{day.id}:v2",
    ]
    sooner = t0.now() + timedelta(hours=5)  # now the 24 h reminder has passed: skipped
    with session_scope(engine) as session:
        core.edit_webinar(
            session=session, webinar_id=webinar, changes={"starts_at": sooner}, now=t0.now()
        )
    assert row_of(engine, ny, "reminder", 1440).status == "queued"  # sent (v2), stays so
    assert row_of(engine, ny, "reminder", 60).due_at == sooner - timedelta(hours=1)
    sweep_at(engine, t0, sooner - timedelta(hours=1))
    hour_keys = [m for m in sent(engine) if m.contact_id == ny and m.kind == "reminder"]
    assert len(hour_keys) == 3  # 24 h (v1), 24 h (v2), 1 h: nothing twice


def test_cancelling_cancels_pending_messages_and_tells_each_registrant_once(
    engine: Engine, t0: FixedClock
) -> None:
    """Cancelled reminders never go; registrants (not the unregistered) hear it once."""
    webinar = make_webinar(engine, t0.now())
    people = [
        make_contact(engine, f"console:c{i}", T0, tz="Africa/Freetown", lang="en")
        for i in range(3)
    ]
    for person in people:
        register(engine, webinar, person, t0.now())
    with session_scope(engine) as session:
        contact = contacts.get_contact(session=session, contact_id=people[2])
        assert contact is not None
        core.unregister(session=session, webinar_id=webinar, contact=contact, now=t0.now())
        result = core.cancel_webinar(session=session, webinar_id=webinar, now=t0.now())
    assert result.notified == 2
    statuses = {(r.kind, r.status, r.reason) for r in rows(engine, webinar)}
    assert ("reminder", "cancelled", "webinar_cancelled") in statuses
    assert ("reminder", "cancelled", "unregistered") in statuses
    assert not [
        r for r in rows(engine, webinar) if r.kind == "reminder" and r.status != "cancelled"
    ]
    sweep_at(engine, t0, t0.now())
    sweep_at(engine, t0, START + timedelta(days=1))
    messages = sent(engine)
    assert [m.contact_id for m in messages] == people[:2]
    assert all("has been cancelled" in m.body["text"] for m in messages)
    with session_scope(engine) as session:
        again = core.cancel_webinar(session=session, webinar_id=webinar, now=t0.now())
    assert again.notified == 0
