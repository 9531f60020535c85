"""Webinar time rules and parsing: quiet hours, due times, DST, shown times, .ics text."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers import webinars_core as core
from handlers.webinars_ics import CalendarEvent, render
from handlers.webinars_time import (
    QuietHours,
    parse_clock,
    parse_duration_minutes,
    parse_offsets,
    parse_quiet,
    parse_start,
    quiet_deferral,
    reminder_due,
    show_duration,
    show_time,
    show_until,
    survey_due,
)
from storage.webinars_models import Webinar

NY = ZoneInfo("America/New_York")
QUIET = QuietHours()


def at(zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    """A wall-clock time in a zone, as a UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=zone).astimezone(UTC)


@pytest.mark.parametrize(
    ("clock", "inside"),
    [((21, 59), False), ((22, 0), True), ((23, 30), True), ((0, 0), True), ((6, 59), True)]
    + [((7, 0), False), ((12, 0), False)],
)
def test_quiet_hours_wrap_midnight(clock: tuple[int, int], inside: bool) -> None:
    """22:00–07:00 holds 22:00 and 06:59, not 21:59 or 07:00."""
    local = datetime(2026, 11, 3, *clock, tzinfo=NY)
    assert QUIET.contains(local) is inside


def test_quiet_hours_within_a_day_and_none() -> None:
    """A window inside one day, and no window at all."""
    siesta = QuietHours(13 * 60, 15 * 60)
    assert siesta.contains(datetime(2026, 11, 3, 14, 0, tzinfo=NY))
    assert not siesta.contains(datetime(2026, 11, 3, 15, 0, tzinfo=NY))
    assert not QuietHours(0, 0).contains(datetime(2026, 11, 3, 3, 0, tzinfo=NY))
    assert parse_quiet("off").empty and parse_quiet("21:30-08:00") == QuietHours(1290, 480)


def test_a_reminder_in_quiet_hours_moves_before_them_on_the_right_evening() -> None:
    """After midnight it moves to the evening before; before midnight to the same evening."""
    now = at(NY, 2026, 11, 1, 12, 0)
    start = at(NY, 2026, 11, 10, 9, 0)
    after_midnight = at(NY, 2026, 11, 5, 3, 0)
    before_midnight = at(NY, 2026, 11, 5, 23, 0)
    assert reminder_due(
        nominal=after_midnight, zone=NY, quiet=QUIET, now=now, starts_at=start
    ) == at(NY, 2026, 11, 4, 21, 50)
    assert reminder_due(
        nominal=before_midnight, zone=NY, quiet=QUIET, now=now, starts_at=start
    ) == at(NY, 2026, 11, 5, 21, 50)


def test_the_evening_before_a_dst_change_is_computed_in_that_evenings_offset() -> None:
    """New York, night of 31 Oct → 1 Nov 2026 (clocks go back at 02:00): 21:50 EDT."""
    nominal = at(NY, 2026, 11, 1, 5, 0)  # 05:00 EST
    due = reminder_due(
        nominal=nominal,
        zone=NY,
        quiet=QUIET,
        now=at(NY, 2026, 10, 25, 12, 0),
        starts_at=nominal + timedelta(hours=1),
    )
    assert due == datetime(2026, 11, 1, 1, 50, tzinfo=UTC)  # 21:50 EDT (UTC−4)
    assert survey_due(nominal=nominal, zone=NY, quiet=QUIET) == datetime(
        2026, 11, 1, 12, 0, tzinfo=UTC
    )  # 07:00 EST (UTC−5)


def test_late_messages_wait_for_the_end_of_quiet_hours_only_when_that_comes_in_time() -> None:
    """A late reminder at 23:00 waits until 07:00 if the webinar starts after it."""
    now = at(NY, 2026, 11, 3, 23, 0)
    assert quiet_deferral(now=now, zone=NY, quiet=QUIET, before=at(NY, 2026, 11, 4, 9, 0)) == at(
        NY, 2026, 11, 4, 7, 0
    )
    assert quiet_deferral(now=now, zone=NY, quiet=QUIET, before=at(NY, 2026, 11, 4, 6, 0)) is None
    assert (
        quiet_deferral(now=at(NY, 2026, 11, 3, 12, 0), zone=NY, quiet=QUIET, before=None) is None
    )


ZONES = ["America/New_York", "Asia/Kolkata", "Pacific/Auckland", "Asia/Kathmandu", "UTC"]


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    start=st.datetimes(
        min_value=datetime(2026, 1, 1),  # noqa: DTZ001  (hypothesis wants naive bounds)
        max_value=datetime(2028, 12, 31),  # noqa: DTZ001
    ),
    offset=st.integers(min_value=1, max_value=3 * 1440),
    lead=st.integers(min_value=0, max_value=5 * 1440),
)
def test_reminder_due_never_lands_in_quiet_hours_unless_the_webinar_does(
    zone: str, start: datetime, offset: int, lead: int
) -> None:
    """A due time is out of quiet hours, before the start, unless the webinar is in them."""
    tz = ZoneInfo(zone)
    starts_at = start.replace(tzinfo=UTC)
    nominal = starts_at - timedelta(minutes=offset)
    now = nominal - timedelta(minutes=lead)
    due = reminder_due(nominal=nominal, zone=tz, quiet=QUIET, now=now, starts_at=starts_at)
    assert due <= starts_at
    if QUIET.contains(due.astimezone(tz)):
        assert due == nominal
        assert QUIET.ends(nominal.astimezone(tz)).astimezone(UTC) >= starts_at
    elif due != nominal:
        assert due > now


def test_parsing_staff_input() -> None:
    """Offsets, times of day, starts in a zone (refusing a time in a DST gap)."""
    assert parse_offsets("24h, 1h") == [1440, 60]
    assert parse_offsets("2d 30m 30") == [2880, 30]
    assert parse_duration_minutes("1.5h") == 90
    with pytest.raises(ValueError):
        parse_duration_minutes("soon")
    assert [parse_clock(t) for t in ("14:30", "14h30", "1430", "9", "2pm", "12 am")] == [
        time(14, 30),
        time(14, 30),
        time(14, 30),
        time(9, 0),
        time(14, 0),
        time(0, 0),
    ]
    assert parse_clock("25:00") is None and parse_clock("noon") is None
    assert parse_start("2026-12-03 14:00", ZoneInfo("Asia/Shanghai")) == datetime(
        2026, 12, 3, 6, 0, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="does not exist"):
        parse_start("2027-03-14 02:30", NY)


def test_times_and_durations_in_every_language() -> None:
    """The reader's language and zone, with the UTC offset and the place."""
    instant = datetime(2026, 12, 3, 6, 30, tzinfo=UTC)
    assert show_time(instant, "Asia/Kathmandu", "en") == (
        "Thursday, December 3, 2026 12:15\u202fPM (UTC+05:45, Kathmandu)"
    )
    assert show_time(instant, "America/Argentina/Buenos_Aires", "es").endswith(
        "(UTC−03:00, Buenos Aires)"
    )
    assert "2026年12月3日星期四" in show_time(instant, "Asia/Shanghai", "zh")
    assert show_duration(90, "en") == "90 minutes" and show_duration(120, "fr") == "2\xa0heures"
    assert show_until(timedelta(hours=23, minutes=59, seconds=40), "en") == "in 1 day"


def test_the_calendar_text_escapes_and_folds() -> None:
    """Commas, semicolons and newlines are escaped; lines fold at 75 octets in UTF-8."""
    event = CalendarEvent(
        uid="webinar-7@citybot",
        sequence=2,
        starts_at=datetime(2026, 12, 3, 6, 30, tzinfo=UTC),
        duration=timedelta(minutes=90),
        summary="Villes, tourisme; patrimoine",
        description="Первая строка\nвторая строка — " + "длинный текст " * 8,
        url="https://meet.example/x",
        stamp=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
    )
    body = render(event)
    assert "SUMMARY:Villes\\, tourisme\\; patrimoine\r\n" in body
    assert "DESCRIPTION:Первая строка\\nвторая" in body
    assert "DTSTART:20261203T063000Z\r\nDTEND:20261203T080000Z\r\n" in body
    lines = body.split("\r\n")
    assert all(len(line.encode("utf-8")) <= 75 for line in lines)
    unfolded = body.replace("\r\n ", "")
    assert "длинный текст " * 8 in unfolded.replace("\\n", "\n")
    cancelled = render(dataclasses.replace(event, cancelled=True))
    assert "METHOD:CANCEL" in cancelled and "STATUS:CANCELLED" in cancelled


def test_translations_typed_in_one_message() -> None:
    """`fr: titre | description es: título` (the create form's translations question)."""
    assert core.parse_translations("fr: Villes | Les villes. es: Ciudades zh: 城市 | 说明") == {
        "fr": ("Villes", "Les villes."),
        "es": ("Ciudades", ""),
        "zh": ("城市", "说明"),
    }
    assert core.parse_translations("") == {}


def test_staff_edits_are_read_and_checked() -> None:
    """Field names and values as staff type them; refused ones say why."""
    webinar = Webinar(
        id=1,
        title={"en": "X"},
        starts_at=datetime(2026, 12, 3, 6, 0, tzinfo=UTC),
        timezone="Asia/Shanghai",
    )
    assert core.parse_change(webinar, "start", "2026-12-04 15:00") == {
        "starts_at": datetime(2026, 12, 4, 7, 0, tzinfo=UTC)
    }
    assert core.parse_change(webinar, "start", "2026-12-04 09:00 Europe/Paris") == {
        "starts_at": datetime(2026, 12, 4, 8, 0, tzinfo=UTC),
        "timezone": "Europe/Paris",
    }
    assert core.parse_change(webinar, "title", "fr Villes") == {"title": {"fr": "Villes"}}
    assert core.parse_change(webinar, "reminders", "2d,1h") == {"reminder_offsets": [2880, 60]}
    assert core.parse_change(webinar, "capacity", "none") == {"capacity": None}
    assert core.parse_change(webinar, "quiet", "23:00-06:00") == {"quiet": QuietHours(1380, 360)}
    for name, value in (("colour", "blue"), ("start", "tomorrow"), ("title", "xx Hello")):
        with pytest.raises(core.WebinarError):
            core.parse_change(webinar, name, value)


def test_a_webinar_is_refused_with_the_reason() -> None:
    """Past starts, unknown zones, links with spaces, deadlines after the start."""
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    good = {
        "title": {"en": "X"},
        "starts_at": now + timedelta(days=1),
        "timezone": "UTC",
    }
    from sqlmodel import Session, create_engine

    with Session(create_engine("sqlite://")) as session:
        for bad, reason in (
            ({"starts_at": now - timedelta(hours=1)}, "future"),
            ({"timezone": "Mars/Olympus"}, "time zone"),
            ({"join_url": "not a link"}, "link"),
            ({"registration_deadline": now + timedelta(days=2)}, "before the start"),
            ({"interpretation": ["xx"]}, "interpretation"),
            ({"title": {"en": " "}}, "title"),
        ):
            spec = core.WebinarSpec(**{**good, **bad})  # type: ignore[arg-type]
            with pytest.raises(core.WebinarError, match=reason):
                core.create_webinar(session=session, spec=spec, now=now)
