"""The webinar feature's shared values: its error, specs, outcomes, field sets, small helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from handlers.webinars_time import DEFAULT_OFFSETS, DEFAULT_SURVEY_DELAY, QuietHours
from storage.webinars_models import Webinar, WebinarRegistration

ALL_KINDS = ("reminder", "survey", "changed", "cancelled")
NOTIFY_FIELDS = frozenset({"starts_at", "duration_minutes", "join_url", "title"})
RESCHEDULE_FIELDS = frozenset(  # "timezone": registrants without a city use the organiser's
    {"starts_at", "timezone", "duration_minutes", "reminder_offsets", "survey_delay_minutes"}
    | {"quiet"}
)


class WebinarError(ValueError):
    """A webinar change that cannot be made (the message says why, for staff)."""


@dataclass(frozen=True, slots=True)
class WebinarSpec:
    """Everything a new webinar needs; times in UTC, `timezone` is the organiser's zone."""

    title: dict[str, str]
    starts_at: datetime
    timezone: str
    duration_minutes: int = 60
    join_url: str = ""
    description: dict[str, str] = field(default_factory=dict)
    interpretation: list[str] = field(default_factory=list)
    focus_area: str | None = None
    capacity: int | None = None
    registration_deadline: datetime | None = None
    reminder_offsets: list[int] = field(default_factory=lambda: list(DEFAULT_OFFSETS))
    survey_delay_minutes: int = DEFAULT_SURVEY_DELAY
    quiet: QuietHours = field(default_factory=QuietHours)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a registration request came to: registered, already, full, closed, cancelled …"""

    status: str
    webinar: Webinar | None = None
    registration: WebinarRegistration | None = None


@dataclass(frozen=True, slots=True)
class EditResult:
    """What an edit changed and how many registrants will be told."""

    webinar: Webinar
    changed: tuple[str, ...]
    notified: int


def quiet_of(webinar: Webinar) -> QuietHours:
    """The webinar's quiet hours (applied in each registrant's zone)."""
    return QuietHours(webinar.quiet_start_minute, webinar.quiet_end_minute)


def length(webinar: Webinar) -> timedelta:
    """How long the webinar lasts."""
    return timedelta(minutes=webinar.duration_minutes)
