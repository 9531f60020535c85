"""Webinars, registrations, reminders: table models (migration 0005_webinars).

Every message the webinar feature schedules is a `webinar_reminder` row with a unique key
(registration, kind, offset): the reminders before the start, the post-webinar survey, and
the notices of a change or a cancellation. A sweep turns due rows into outbox messages in the
same transaction, so the database, not a timer, is the source of truth.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow


class Webinar(SQLModel, table=True):
    """A webinar of a series; times are UTC, `timezone` is the organiser's IANA zone."""

    __tablename__ = "webinar"

    id: int | None = Field(default=None, primary_key=True)
    title: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    description: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    starts_at: datetime = Field(sa_type=UTCDateTime, index=True)
    timezone: str = Field(max_length=64)
    duration_minutes: int = 60
    join_url: str = Field(default="", max_length=500)
    interpretation: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    focus_area: str | None = Field(default=None, max_length=40)
    capacity: int | None = None
    registration_deadline: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminder_offsets: list[int] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    survey_delay_minutes: int = 60
    quiet_start_minute: int = 22 * 60
    quiet_end_minute: int = 7 * 60
    status: str = Field(default="scheduled", max_length=16)
    version: int = 1
    created_by_contact_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebinarRegistration(SQLModel, table=True):
    """A contact registered for a webinar; status: registered or unregistered."""

    __tablename__ = "webinar_registration"
    __table_args__ = (
        UniqueConstraint("webinar_id", "contact_id", name="uq_webinar_registration"),
    )

    id: int | None = Field(default=None, primary_key=True)
    webinar_id: int = Field(foreign_key="webinar.id")
    contact_id: int = Field(foreign_key="contact.id", index=True)
    status: str = Field(default="registered", max_length=16)
    source: str = Field(default="button", max_length=16)
    language: str = Field(default="en", max_length=8)
    country_code: str | None = Field(default=None, max_length=2)
    timezone: str = Field(max_length=64)
    zone_source: str = Field(default="contact", max_length=16)
    registered_at: datetime = Field(sa_type=UTCDateTime)
    unregistered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    survey_response_id: int | None = None
    certificate_name: str | None = Field(default=None, max_length=120)
    feedback_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebinarReminder(SQLModel, table=True):
    """One scheduled message: status scheduled, queued (in the outbox), skipped or cancelled.

    `kind` is `reminder` (offset: minutes before the start), `survey` (minutes after the end),
    `changed` (offset: the webinar version announced) or `cancelled` (offset 0).
    """

    __tablename__ = "webinar_reminder"
    __table_args__ = (
        UniqueConstraint(
            "registration_id", "kind", "offset_minutes", name="uq_webinar_reminder_key"
        ),
        Index("ix_webinar_reminder_due", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    registration_id: int = Field(foreign_key="webinar_registration.id")
    webinar_id: int = Field(foreign_key="webinar.id", index=True)
    contact_id: int = Field(foreign_key="contact.id")
    kind: str = Field(max_length=16)
    offset_minutes: int = 0
    nominal_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime)
    zone: str = Field(max_length=64)
    status: str = Field(default="scheduled", max_length=16)
    reason: str | None = Field(default=None, max_length=40)
    version: int = 1
    outbox_id: int | None = None
    queued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
