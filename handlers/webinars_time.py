"""Webinar time: zones, quiet hours, reminder due times, parsing and showing times per language.

Instants are UTC; wall-clock rules (quiet hours) are applied in the registrant's zone with
zoneinfo, so a DST change between two dates is accounted for on each date. Offsets such as
"24 h before" are real durations (the reminder goes out 24 hours before the start, whatever
the clocks do in between); the start is then shown in the registrant's local time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_time, format_timedelta

QUIET_MARGIN = timedelta(minutes=10)  # a reminder moved out of quiet hours goes this early
DEFAULT_OFFSETS = (24 * 60, 60)
DEFAULT_SURVEY_DELAY = 60
DEFAULT_QUIET = (22 * 60, 7 * 60)


def zone_of(name: str | None) -> ZoneInfo | None:
    """Return the zone of an IANA name, or None when it is empty or unknown."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local hours without messages, `[start, end)` in minutes after midnight; may wrap."""

    start: int = DEFAULT_QUIET[0]
    end: int = DEFAULT_QUIET[1]

    @property
    def empty(self) -> bool:
        """Say whether there are no quiet hours at all."""
        return self.start == self.end

    def contains(self, local: datetime) -> bool:
        """Say whether a local time falls in the quiet hours."""
        if self.empty:
            return False
        minute = local.hour * 60 + local.minute
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def _wrapped_after_midnight(self, local: datetime) -> bool:
        """Say whether a quiet local time is in the part after midnight of a wrapping window."""
        return self.start > self.end and local.hour * 60 + local.minute < self.end

    def began(self, local: datetime) -> datetime:
        """Return when the quiet hours holding `local` began (aware, in its zone)."""
        day = local.date() - timedelta(days=1 if self._wrapped_after_midnight(local) else 0)
        return _at(day, self.start, local)

    def ends(self, local: datetime) -> datetime:
        """Return when the quiet hours holding `local` end (aware, in its zone)."""
        wraps_today = self.start > self.end and not self._wrapped_after_midnight(local)
        day = local.date() + timedelta(days=1 if wraps_today else 0)
        return _at(day, self.end, local)


def _at(day: date, minute: int, like: datetime) -> datetime:
    """The wall-clock time `minute` after midnight of `day` in the zone of `like`."""
    wall = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=like.tzinfo)
    return wall.astimezone(UTC).astimezone(like.tzinfo)  # normalise a time in a DST gap


def reminder_due(
    *, nominal: datetime, zone: ZoneInfo, quiet: QuietHours, now: datetime, starts_at: datetime
) -> datetime:
    """When a reminder due at `nominal` goes out: before the quiet hours it would fall in.

    When that earlier time has passed already, it goes at the end of the quiet hours if that
    is still before the start, else at its nominal time (the webinar starts in quiet hours).
    """
    local = nominal.astimezone(zone)
    if not quiet.contains(local):
        return nominal
    earlier = (quiet.began(local) - QUIET_MARGIN).astimezone(UTC)
    if earlier > now:
        return earlier
    later = quiet.ends(local).astimezone(UTC)
    return later if later < starts_at else nominal


def survey_due(*, nominal: datetime, zone: ZoneInfo, quiet: QuietHours) -> datetime:
    """When a post-webinar survey due at `nominal` goes out: after any quiet hours."""
    local = nominal.astimezone(zone)
    if not quiet.contains(local):
        return nominal
    return quiet.ends(local).astimezone(UTC)


def quiet_deferral(
    *, now: datetime, zone: ZoneInfo, quiet: QuietHours, before: datetime | None
) -> datetime | None:
    """For a late message: the end of the quiet hours `now` is in, if it comes `before`."""
    local = now.astimezone(zone)
    if not quiet.contains(local):
        return None
    end = quiet.ends(local).astimezone(UTC)
    return end if before is None or end < before else None


# -- parsing ------------------------------------------------------------------------------------

_OFFSET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|h|m|min)?\s*$", re.IGNORECASE)
_CLOCK = re.compile(
    r"^\s*(\d{1,2})(?:\s*[:h.\s]\s*(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?\s*$", re.IGNORECASE
)


def parse_duration_minutes(text: str) -> int:
    """Read `24h`, `90m`, `2d` or a bare number of minutes; ValueError otherwise."""
    found = _OFFSET.match(text)
    if found is None:
        raise ValueError(f"not a duration: {text!r} (use 24h, 90m or 2d)")
    value, unit = float(found.group(1)), (found.group(2) or "m").lower()
    factor = {"d": 1440, "h": 60, "m": 1, "min": 1}[unit]
    return round(value * factor)


def parse_offsets(text: str) -> list[int]:
    """Read reminder offsets such as `24h,1h` into minutes, largest first, without repeats."""
    parts = [p for p in re.split(r"[,;\s]+", text.strip()) if p]
    minutes = sorted({parse_duration_minutes(p) for p in parts}, reverse=True)
    if any(m <= 0 for m in minutes):
        raise ValueError("reminder offsets must be positive")
    return minutes


def parse_clock(text: str) -> time | None:
    """Read a time of day: `14:30`, `14h30`, `14.30`, `1430`, `14`, `2pm`, `2:30 pm`."""
    cleaned = text.strip()
    if re.fullmatch(r"\d{3,4}", cleaned):
        cleaned = f"{cleaned[:-2]}:{cleaned[-2:]}"
    found = _CLOCK.match(cleaned)
    if found is None:
        return None
    hour, minute = int(found.group(1)), int(found.group(2) or 0)
    suffix = (found.group(3) or "").replace(".", "").lower()
    if suffix:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if suffix == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def parse_quiet(text: str) -> QuietHours:
    """Read quiet hours such as `22:00-07:00` (`off` for none); ValueError otherwise."""
    if text.strip().lower() in ("off", "none", "0"):
        return QuietHours(0, 0)
    start, sep, end = text.partition("-")
    first, second = parse_clock(start), parse_clock(end)
    if not sep or first is None or second is None:
        raise ValueError(f"not quiet hours: {text!r} (use 22:00-07:00)")
    return QuietHours(first.hour * 60 + first.minute, second.hour * 60 + second.minute)


def local_to_utc(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """Turn a wall-clock date and time in `zone` into UTC; ValueError inside a DST gap."""
    wall = datetime.combine(day, clock, tzinfo=zone)
    instant = wall.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != wall.replace(tzinfo=None):
        raise ValueError(f"{day} {clock:%H:%M} does not exist in {zone.key} (clocks change)")
    return instant


def parse_start(text: str, zone: ZoneInfo) -> datetime:
    """Read `YYYY-MM-DD HH:MM` as wall-clock time in `zone` and return it in UTC."""
    day_text, _, clock_text = text.strip().replace("T", " ").partition(" ")
    try:
        day = date.fromisoformat(day_text)
    except ValueError as exc:
        raise ValueError(f"not a date: {day_text!r} (use YYYY-MM-DD HH:MM)") from exc
    clock = parse_clock(clock_text or "00:00")
    if clock is None:
        raise ValueError(f"not a time: {clock_text!r} (use HH:MM)")
    return local_to_utc(day, clock, zone)


# -- showing ------------------------------------------------------------------------------------


def _offset_label(local: datetime) -> str:
    """`UTC+08:00`, `UTC−05:00` or `UTC` for a local time."""
    offset = local.utcoffset() or timedelta(0)
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes > 0 else "−"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def place_of(zone_name: str) -> str:
    """The place part of an IANA name: `America/Argentina/Buenos_Aires` → `Buenos Aires`."""
    return zone_name.rsplit("/", 1)[-1].replace("_", " ")


@lru_cache(maxsize=4096)
def show_time(instant: datetime, zone_name: str, lang: str) -> str:
    """Show an instant as the date and time in a zone, with its UTC offset and place."""
    zone = zone_of(zone_name) or ZoneInfo("UTC")
    local = instant.astimezone(zone)
    day = format_date(local, "full", locale=lang)
    clock = format_time(local, "short", locale=lang)
    place = place_of(zone.key)
    label = _offset_label(local) if place == "UTC" else f"{_offset_label(local)}, {place}"
    return f"{day} {clock} ({label})"


@lru_cache(maxsize=1024)
def show_duration(minutes: int, lang: str) -> str:
    """Show a length of time in words, exactly (`1 day`, `2 hours`, `90 minutes`)."""
    delta = timedelta(minutes=minutes)
    if minutes % 1440 == 0:
        return str(format_timedelta(delta, locale=lang, threshold=10_000, granularity="day"))
    if minutes % 60 == 0:
        return str(format_timedelta(delta, locale=lang, threshold=10_000, granularity="hour"))
    return str(format_timedelta(delta, locale=lang, threshold=10_000, granularity="minute"))


def show_until(delta: timedelta, lang: str) -> str:
    """Show how long until something (`in 1 day`, `dans 1 heure`)."""
    rounded = timedelta(minutes=max(1, round(delta.total_seconds() / 60)))
    return str(format_timedelta(rounded, locale=lang, add_direction=True, threshold=1.0))
