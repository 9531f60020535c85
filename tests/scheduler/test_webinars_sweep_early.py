"""Webinar reminders handed over early go out on time, or are taken back."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from bot.dispatcher import Dispatcher
from handlers import webinars_core as core
from scheduler.webinars import run_sweep
from storage import contacts
from storage.db import session_scope
from tests.scheduler.webinar_cases import (
    START,
    T0,
    make_contact,
    make_webinar,
    register,
    row_of,
    sent,
)
from tests.scheduler.webinar_cases import t0 as t0  # a fixture
from tests.support import RecordingSender


def _dispatch(engine: Engine, clock: FixedClock) -> list[str]:
    """Send what the outbox holds due now (console); return the texts sent."""
    sender = RecordingSender()
    dispatcher = Dispatcher(engine, {"console": sender}, clock)

    async def drain() -> None:
        """Send everything due."""
        while await dispatcher.drain("console"):
            pass

    asyncio.run(drain())
    return [message.text for _, message in sender.sent]


def test_reminders_due_before_the_next_sweep_go_out_at_their_due_time(
    engine: Engine, t0: FixedClock
) -> None:
    """A reminder handed over early waits in the outbox for its due time."""
    webinar = make_webinar(engine, t0.now())
    person = make_contact(engine, "console:ontime", T0, tz="UTC")
    register(engine, webinar, person, t0.now())
    due = START - timedelta(hours=24)
    t0.advance(due - timedelta(seconds=20) - t0.now())
    assert run_sweep(engine=engine, clock=t0, horizon=30).queued == 1
    (message,) = sent(engine)
    assert message.next_attempt_at == due
    assert "starts in 1 day" in message.body["text"]  # counted from the due time
    t0.advance(timedelta(seconds=19))
    assert _dispatch(engine, t0) == []
    t0.advance(timedelta(seconds=1))
    assert len(_dispatch(engine, t0)) == 1


def test_a_change_takes_back_reminders_handed_over_early(engine: Engine, t0: FixedClock) -> None:
    """Unregistering, a new link or a cancellation takes back reminders handed over early."""
    webinar = make_webinar(engine, t0.now())
    leaver = make_contact(engine, "console:leaver", T0, tz="UTC")
    stayer = make_contact(engine, "console:stayer", T0, tz="UTC")
    register(engine, webinar, leaver, t0.now())
    register(engine, webinar, stayer, t0.now())
    due = START - timedelta(hours=24)
    t0.advance(due - timedelta(seconds=20) - t0.now())
    assert run_sweep(engine=engine, clock=t0, horizon=30).queued == 2
    with session_scope(engine) as session:
        contact = contacts.get_contact(session=session, contact_id=leaver)
        assert contact is not None
        core.unregister(session=session, webinar_id=webinar, contact=contact, now=t0.now())
        core.edit_webinar(
            session=session,
            webinar_id=webinar,
            changes={"join_url": "https://meet.example/new"},
            now=t0.now(),
        )
    assert row_of(engine, leaver, "reminder", 1440).status == "cancelled"
    moved = row_of(engine, stayer, "reminder", 1440)
    assert (moved.status, moved.version) == ("scheduled", 2)
    assert [m.status for m in sent(engine)] == ["cancelled", "cancelled"]
    assert run_sweep(engine=engine, clock=t0, horizon=30).queued == 2  # and the change notice
    (fresh,) = [m for m in sent(engine) if m.kind == "reminder" and m.status == "pending"]
    assert fresh.idempotency_key == f"rem:{moved.id}:v2"
    assert "https://meet.example/new" in fresh.body["text"]
    t0.advance(timedelta(seconds=20))
    texts = _dispatch(engine, t0)
    assert len(texts) == 2 and all("https://meet.example/new" in t for t in texts)
    late = make_webinar(engine, t0.now(), starts_at=START + timedelta(days=2))
    register(engine, late, stayer, t0.now())
    ahead = START + timedelta(days=1)
    t0.advance(ahead - timedelta(seconds=10) - t0.now())
    run_sweep(engine=engine, clock=t0, horizon=30)
    with session_scope(engine) as session:
        core.cancel_webinar(session=session, webinar_id=late, now=t0.now())
    t0.advance(timedelta(seconds=10))
    run_sweep(engine=engine, clock=t0)
    texts = _dispatch(engine, t0)
    assert any("has been cancelled" in t for t in texts)
    assert not [t for t in texts if t.startswith("⏰")]  # the reminder handed over was taken back
