"""Webinar reminders after downtime, a restart or a crash mid-sweep."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from handlers import notify
from handlers import webinars_sweep as sweep
from scheduler.webinars import run_sweep
from storage import webinars as db
from storage.db import make_engine
from storage.webinars_models import WebinarReminder
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

ROOT = Path(__file__).resolve().parents[2]


def test_missed_reminders_go_late_until_the_start_then_are_skipped_with_a_reason(
    engine: Engine, t0: FixedClock
) -> None:
    """Missed reminders go late until the start (the nearer one only), then are skipped."""
    fn = make_contact(engine, "console:fn", T0, tz="Africa/Freetown")
    one = make_webinar(engine, t0.now())
    two = make_webinar(engine, t0.now(), starts_at=START + timedelta(hours=5))
    three = make_webinar(engine, t0.now(), starts_at=START + timedelta(days=1))
    for webinar in (one, two, three):
        register(engine, webinar, fn, t0.now())
    sweep_at(engine, t0, START - timedelta(hours=20))  # 4 h late for one's 24 h reminder
    late = [r for r in rows(engine, one) if r.kind == "reminder" and r.offset_minutes == 1440]
    assert late[0].status == "queued"
    assert late[0].queued_at is not None
    assert late[0].queued_at - late[0].due_at == timedelta(hours=4)
    sweep_at(engine, t0, START + timedelta(hours=4, minutes=30))  # down over two's both
    two_rows = {r.offset_minutes: r for r in rows(engine, two) if r.kind == "reminder"}
    assert (two_rows[1440].status, two_rows[1440].reason) == ("skipped", "superseded")
    assert two_rows[60].status == "queued"
    one_rows = {r.offset_minutes: r for r in rows(engine, one) if r.kind == "reminder"}
    assert (one_rows[60].status, one_rows[60].reason) == ("skipped", "webinar_started")
    (survey,) = [r for r in rows(engine, one) if r.kind == "survey"]
    assert survey.status == "queued"  # due 60 min after the 90 min webinar, sent late
    assert db.SCHEDULED in {r.status for r in rows(engine, three)}


def _subprocess(script: str, db_url: str, when: datetime) -> str:
    """Run a script in a new Python process against the same database; return its output."""
    env = {**os.environ, "DB_URL": db_url, "WHEN": when.isoformat(), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


SCHEDULE = """
import os
from datetime import datetime
from handlers import notify
from handlers import webinars_core as core
from handlers import webinars_sweep as sweep
from storage import contacts
from storage.db import make_engine, session_scope
engine = make_engine(os.environ["DB_URL"])
now = datetime.fromisoformat(os.environ["WHEN"])
start = datetime.fromisoformat("2027-03-14T15:00:00+00:00")
zones = ["Africa/Freetown", "Asia/Kolkata", "America/Mexico_City", "Europe/Paris"]
with session_scope(engine) as session:
    spec = core.WebinarSpec(title={"en": "Cross-border e-commerce"}, starts_at=start,
                            timezone="Asia/Shanghai", join_url="https://meet.example/ec")
    webinar = core.create_webinar(session=session, spec=spec, now=now)
    for i, zone in enumerate(zones):
        contact, _ = contacts.get_or_create_contact(session=session, urn=f"console:p{i}", now=now)
        contact.timezone, contact.language = zone, "en"
        core.register(session=session, webinar_id=webinar.id, contact=contact, now=now,
                      source="button")
print(webinar.id)
"""

SWEEP = """
import os
from datetime import datetime
from bot.clock import FixedClock
from scheduler.webinars import run_sweep
from storage.db import make_engine
engine = make_engine(os.environ["DB_URL"])
clock = FixedClock(datetime.fromisoformat(os.environ["WHEN"]))
print(run_sweep(engine=engine, clock=clock).queued)
"""


def test_a_restart_between_scheduling_and_sending_sends_each_reminder_exactly_once(
    tmp_path: Path,
) -> None:
    """Scheduled in one process, swept in another and again after a restart: each goes once."""
    url = f"sqlite:///{tmp_path}/restart.db"
    engine = make_engine(url)
    from storage import migrate

    migrate.upgrade(engine=engine)
    engine.dispose()
    webinar = int(_subprocess(SCHEDULE, url, T0))
    assert _subprocess(SWEEP, url, START - timedelta(hours=24)) == "4"
    fresh = make_engine(url)
    clock = FixedClock(START - timedelta(hours=24))
    assert run_sweep(engine=fresh, clock=clock).queued == 0
    clock.advance(timedelta(hours=23, minutes=1))
    assert run_sweep(engine=fresh, clock=clock).queued == 4
    assert run_sweep(engine=fresh, clock=clock).queued == 0
    reminders = [r for r in rows(fresh, webinar) if r.kind == "reminder"]
    assert len(reminders) == 8 and {r.status for r in reminders} == {"queued"}
    keys = [m.idempotency_key for m in sent(fresh)]
    assert sorted(keys) == sorted(f"rem:{r.id}" for r in reminders)
    fresh.dispose()


class Crash(BaseException):
    """The process dying mid-sweep (not an error a row handler would catch)."""


def test_a_crash_mid_sweep_leaves_nothing_half_done(
    engine: Engine, t0: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash rolls the batch back; the next sweep queues each reminder once."""
    webinar = make_webinar(engine, t0.now())
    for i in range(5):
        register(engine, webinar, make_contact(engine, f"console:k{i}", T0, tz="UTC"), t0.now())
    real = notify.queue_for_contact
    calls = {"n": 0}

    def dying(**kwargs: Any) -> int | None:
        """Crash on the third message."""
        calls["n"] += 1
        if calls["n"] == 3:
            raise Crash
        return real(**kwargs)

    monkeypatch.setattr(sweep, "queue_for_contact", dying)
    with pytest.raises(Crash):
        sweep_at(engine, t0, START - timedelta(hours=24))
    assert sent(engine) == []
    assert {r.status for r in rows(engine) if r.offset_minutes == 1440} == {"scheduled"}
    monkeypatch.setattr(sweep, "queue_for_contact", real)
    assert run_sweep(engine=engine, clock=t0).queued == 5
    assert run_sweep(engine=engine, clock=t0).queued == 0
    assert len(sent(engine)) == 5


def test_a_failing_row_is_skipped_with_a_reason_and_the_others_go(
    engine: Engine, t0: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row whose message cannot be composed does not hold back the batch (no poison row)."""
    webinar = make_webinar(engine, t0.now())
    first = make_contact(engine, "console:a", T0, tz="UTC")
    second = make_contact(engine, "console:b", T0, tz="UTC")
    register(engine, webinar, first, t0.now())
    register(engine, webinar, second, t0.now())
    real = sweep.compose

    def broken(row: WebinarReminder, *args: Any) -> Any:
        """Fail for the first contact only."""
        if row.contact_id == first:
            raise RuntimeError("boom")
        return real(row, *args)

    monkeypatch.setattr(sweep, "compose", broken)
    result = sweep_at(engine, t0, START - timedelta(hours=24))
    assert (result.queued, result.skipped) == (1, 1)
    assert row_of(engine, first, "reminder", 1440).reason == "error"
