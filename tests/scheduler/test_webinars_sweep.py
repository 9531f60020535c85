"""Webinar reminders with a fixed clock: zones, DST, quiet hours, changes, restarts, crashes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.clock import FixedClock
from bot.dispatcher import Dispatcher
from handlers import notify
from handlers import webinars_core as core
from handlers import webinars_sweep as sweep
from handlers.webinars_time import QuietHours
from scheduler.webinars import SWEEP_ID, run_sweep
from storage import contacts
from storage import webinars as db
from storage.db import make_engine, session_scope
from storage.models import OutboxMessage
from storage.webinars_models import WebinarReminder
from tests.support import RecordingSender

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2027, 3, 14, 15, 0, tzinfo=UTC)  # 11:00 in New York, the day clocks go forward
T0 = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)


# --- helpers (also used by the other webinar tests) ----------------------------------------------


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


# --- zones, DST, quiet hours ---------------------------------------------------------------


def test_registrants_in_six_zones_get_each_reminder_at_its_local_time(
    engine: Engine, t0: FixedClock
) -> None:
    """Six zones (New York across DST, no zone): each reminder goes at its due time, once."""
    webinar = make_webinar(engine, t0.now())
    people = {
        "ny": make_contact(engine, "console:ny", T0, tz="America/New_York", lang="en"),
        "fn": make_contact(engine, "console:fn", T0, tz="Africa/Freetown", lang="fr"),
        "in": make_contact(engine, "console:in", T0, tz="Asia/Kolkata", lang="ru"),
        "cn": make_contact(engine, "console:cn", T0, tz="Asia/Shanghai", lang="zh"),
        "nz": make_contact(engine, "console:nz", T0, tz="Pacific/Auckland", lang="pt"),
        "none": make_contact(engine, "console:none", T0, tz=None, lang="es"),
    }
    for contact_id in people.values():
        assert register(engine, webinar, contact_id, t0.now()) == "registered"
    day, hour = 1440, 60
    expected = {
        ("ny", day): datetime(2027, 3, 13, 15, 0, tzinfo=UTC),  # 10:00 EST
        ("ny", hour): datetime(2027, 3, 14, 14, 0, tzinfo=UTC),  # 10:00 EDT
        ("fn", day): datetime(2027, 3, 13, 15, 0, tzinfo=UTC),
        ("fn", hour): datetime(2027, 3, 14, 14, 0, tzinfo=UTC),
        ("in", day): datetime(2027, 3, 13, 15, 0, tzinfo=UTC),  # 20:30 IST
        ("in", hour): datetime(2027, 3, 14, 14, 0, tzinfo=UTC),
        ("cn", day): datetime(2027, 3, 13, 13, 50, tzinfo=UTC),  # 23:00 → 21:50 CST
        ("cn", hour): datetime(2027, 3, 14, 13, 50, tzinfo=UTC),  # 22:00 → 21:50 CST
        ("none", day): datetime(2027, 3, 13, 13, 50, tzinfo=UTC),  # the organiser's zone
        ("none", hour): datetime(2027, 3, 14, 13, 50, tzinfo=UTC),
        ("nz", day): datetime(2027, 3, 13, 8, 50, tzinfo=UTC),  # 04:00 → 21:50 NZDT the eve
        ("nz", hour): datetime(2027, 3, 14, 8, 50, tzinfo=UTC),  # 03:00 → 21:50 NZDT the eve
    }
    for (who, offset), due in expected.items():
        assert row_of(engine, people[who], "reminder", offset).due_at == due, (who, offset)
    for due in sorted(set(expected.values())):
        before = len(sent(engine))
        sweep_at(engine, t0, due - timedelta(seconds=1))
        assert len(sent(engine)) == before
        result = sweep_at(engine, t0, due)
        assert result.queued == sum(1 for d in expected.values() if d == due)
    for (who, offset), due in expected.items():
        row = row_of(engine, people[who], "reminder", offset)
        assert (row.status, row.queued_at) == ("queued", due), (who, offset)
    assert len(sent(engine)) == len(expected)
    ny_day = text_for(engine, people["ny"])[0]
    assert "11:00\u202fAM (UTC−04:00, New York)" in ny_day  # shown after the DST change
    assert "11:00\u202fPM (UTC+08:00, Shanghai)" in ny_day  # and the organiser's time
    assert "https://meet.example/drr" in ny_day
    assert "Rappel : «Rendre les villes résilientes»" in text_for(engine, people["fn"])[0]
    assert "15:00 (UTC, Freetown)" in text_for(engine, people["fn"])[0]
    assert "20:30 (UTC+05:30, Kolkata)" in text_for(engine, people["in"])[0]
    assert "提醒" in text_for(engine, people["cn"])[0]
    assert "(UTC+13:00, Auckland)" in text_for(engine, people["nz"])[0]
    nozone = text_for(engine, people["none"])[0]
    assert "zona horaria del organizador" in nozone and "Shanghai" in nozone


def test_survey_invitation_waits_for_the_end_of_quiet_hours_across_a_dst_change(
    engine: Engine, t0: FixedClock
) -> None:
    """The survey due at 01:00 EST moves to 07:00 EDT, the clocks having gone forward."""
    start = datetime(2027, 3, 14, 4, 30, tzinfo=UTC)  # 23:30 EST on the 13th
    webinar = make_webinar(engine, t0.now(), starts_at=start, duration_minutes=60)
    ny = make_contact(engine, "console:ny", T0, tz="America/New_York")
    register(engine, webinar, ny, t0.now())
    survey = row_of(engine, ny, "survey", 60)
    assert survey.nominal_at == datetime(2027, 3, 14, 6, 30, tzinfo=UTC)  # 01:30 EST
    assert survey.due_at == datetime(2027, 3, 14, 11, 0, tzinfo=UTC)  # 07:00 EDT, not 12:00
    sweep_at(engine, t0, survey.due_at)
    (invite,) = [m for m in sent(engine) if m.kind == "webinar_survey"]
    assert invite.body["choices"] == [[f"w:f{webinar}", "Start the survey"]]


def test_quiet_hours_late_registration_and_a_webinar_inside_quiet_hours(
    engine: Engine, t0: FixedClock
) -> None:
    """Past the earlier slot: the end of quiet hours; a webinar in quiet hours: its time."""
    early = datetime(2027, 3, 10, 23, 45, tzinfo=UTC)  # 07:45 in Shanghai, 1 h reminder 06:45
    dawn = datetime(2027, 3, 10, 22, 30, tzinfo=UTC)  # 06:30 in Shanghai, 1 h reminder 05:30
    first = make_webinar(engine, t0.now(), starts_at=early)
    second = make_webinar(engine, t0.now(), starts_at=dawn)
    t0.advance(timedelta(hours=3, minutes=30))  # 23:30 in Shanghai, in quiet hours already
    cn = make_contact(engine, "console:cn", T0, tz="Asia/Shanghai")
    register(engine, first, cn, t0.now())
    register(engine, second, cn, t0.now())
    in_first = [r for r in rows(engine, first) if r.kind == "reminder"]
    assert {(r.offset_minutes, r.status, r.reason) for r in in_first} == {
        (1440, "skipped", "registered_after"),
        (60, "scheduled", None),
    }
    (hour_first,) = [r for r in in_first if r.offset_minutes == 60]
    assert hour_first.due_at == datetime(2027, 3, 10, 23, 0, tzinfo=UTC)  # 07:00, end of quiet
    (hour_second,) = [
        r for r in rows(engine, second) if r.kind == "reminder" and r.offset_minutes == 60
    ]
    assert hour_second.due_at == hour_second.nominal_at  # 05:30: the webinar is at dawn
    custom = make_webinar(
        engine, t0.now(), starts_at=START, quiet=QuietHours(0, 0)
    )  # no quiet hours
    register(engine, custom, cn, t0.now())
    day = [r for r in rows(engine, custom) if r.kind == "reminder" and r.offset_minutes == 1440]
    assert day[0].due_at == day[0].nominal_at  # 23:00 in Shanghai is allowed here


# --- reschedule and cancel -----------------------------------------------------------------


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


# --- downtime, restart, crash ------------------------------------------------------------------


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


# --- who does not get messages, and what WhatsApp templates get ---------------------------------


def test_opted_out_unreachable_and_erased_contacts_are_skipped_with_the_reason(
    engine: Engine, t0: FixedClock
) -> None:
    """The reason is kept on the row; staff see it in the figures."""
    webinar = make_webinar(engine, t0.now())
    out = make_contact(engine, "console:out", T0, tz="UTC")
    gone = make_contact(engine, "console:gone", T0, tz="UTC")
    erased = make_contact(engine, "console:erased", T0, tz="UTC")
    for person in (out, gone, erased):
        register(engine, webinar, person, t0.now())
    with session_scope(engine) as session:
        for person, flags in (
            (out, {"opted_out": True}),
            (gone, {"unreachable": True}),
            (erased, {"erased_at": T0}),
        ):
            contact = contacts.get_contact(session=session, contact_id=person)
            assert contact is not None
            contacts.update_contact(session=session, contact=contact, **flags)
    sweep_at(engine, t0, START - timedelta(hours=24))
    reasons = {r.contact_id: r.reason for r in rows(engine) if r.offset_minutes == 1440}
    assert reasons == {out: "opted_out", gone: "unreachable", erased: "erased"}
    with session_scope(engine) as session:
        figures = db.reminder_stats(session=session, webinar_id=webinar)
    assert figures["reasons"] == {"opted_out": 1, "unreachable": 1, "erased": 1}
    assert sent(engine) == []


def test_whatsapp_reminders_carry_the_fields_templates_use(engine: Engine, t0: FixedClock) -> None:
    """WhatsApp reminders carry the template fields: title, local time, link."""
    webinar = make_webinar(engine, t0.now())
    person = make_contact(engine, "whatsapp:+23276000001", T0, tz="Africa/Freetown", lang="fr")
    register(engine, webinar, person, t0.now())
    sweep_at(engine, t0, START - timedelta(hours=1))
    (message,) = sent(engine)
    assert (message.channel, message.kind, message.language) == ("whatsapp", "reminder", "fr")
    meta = message.body["meta"]
    assert meta["title"] == "Rendre les villes résilientes"
    assert meta["link"] == "https://meet.example/drr"
    assert meta["local_time"] == "dimanche 14 mars 2027 15:00 (UTC, Freetown)"
    assert meta["webinar_id"] == webinar and meta["until"] == "dans 1 heure"


# --- APScheduler wiring ------------------------------------------------------------------------


def test_the_serve_scheduler_runs_the_webinar_sweep(
    engine: Engine, t0: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The serve scheduler runs the sweep, which queues what is due."""
    from scheduler.setup import build_scheduler

    monkeypatch.setenv("WEBINAR_SWEEP_SECONDS", "0.05")
    webinar = make_webinar(engine, t0.now())
    register(engine, webinar, make_contact(engine, "console:s", T0, tz="UTC"), t0.now())
    t0.advance(START - timedelta(hours=24) - t0.now())

    async def serve_briefly() -> None:
        """Start the scheduler in the running loop until something is queued."""
        scheduler = build_scheduler(engine=engine, clock=t0)
        job = scheduler.get_job(SWEEP_ID)
        assert job is not None
        scheduler.start()
        for _ in range(100):
            await asyncio.sleep(0.02)
            if sent(engine):
                break
        scheduler.shutdown(wait=False)

    asyncio.run(serve_briefly())
    assert len(sent(engine)) == 1


# --- handed over early, on time ------------------------------------------------------------


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
