"""Webinar reminders across time zones, DST changes and quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from handlers.webinars_time import QuietHours
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
    text_for,
)
from tests.scheduler.webinar_cases import t0 as t0  # a fixture


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
