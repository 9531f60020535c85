"""Table models. Time is UTC; JSON columns hold answers and message bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    """A UTC timestamp column."""
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _json() -> Any:
    """A JSON column defaulting to an empty object."""
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Contact(SQLModel, table=True):
    """A person talking to the bot, on one or more channels."""

    id: int | None = Field(default=None, primary_key=True)
    language: str | None = Field(default=None, max_length=8)
    language_source: str | None = Field(default=None, max_length=16)
    name: str | None = Field(default=None, max_length=200)
    role: str | None = Field(default=None, max_length=40)
    organisation: str | None = Field(default=None, max_length=200)
    city_name: str | None = Field(default=None, max_length=200)
    city_geonameid: int | None = None
    country_code: str | None = Field(default=None, max_length=2, index=True)
    timezone: str | None = Field(default=None, max_length=64)
    consent_version: str | None = Field(default=None, max_length=32)
    consent_at: datetime | None = _ts()
    consent_refused_at: datetime | None = _ts()
    opted_out: bool = False
    unreachable: bool = False
    staff_role: str | None = Field(default=None, max_length=16)
    prompt: str | None = Field(default=None, max_length=64)
    prompt_data: dict[str, Any] = _json()
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_inbound_at: datetime | None = _ts()
    erased_at: datetime | None = _ts()


class ContactURN(SQLModel, table=True):
    """A channel address of a contact, e.g. `telegram:12345` or `whatsapp:+23276000000`."""

    id: int | None = Field(default=None, primary_key=True)
    urn: str = Field(max_length=200, unique=True)
    channel: str = Field(max_length=16)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    last_seen_at: datetime | None = _ts()


class InboxEvent(SQLModel, table=True):
    """A received platform event, stored (deduplicated) before it is acknowledged."""

    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_inbox_channel_ext"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    external_id: str = Field(max_length=100)
    urn: str = Field(max_length=200, index=True)
    payload: dict[str, Any] = _json()
    received_at: datetime = Field(sa_type=UTCDateTime)
    processed_at: datetime | None = _ts(index=True)
    error: str | None = Field(default=None, max_length=200)


class OutboxMessage(SQLModel, table=True):
    """A message to send, written in the transaction that decided it; drained by a dispatcher."""

    __table_args__ = (
        Index("ix_outbox_drain", "channel", "status", "next_attempt_at"),
        Index("ix_outbox_urn_id", "urn", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=120, unique=True)
    contact_id: int | None = Field(default=None, index=True)
    urn: str = Field(max_length=200)
    channel: str = Field(max_length=16)
    kind: str = Field(default="reply", max_length=32)
    language: str = Field(default="en", max_length=8)
    body: dict[str, Any] = _json()
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    provider_id: str | None = Field(default=None, max_length=100, index=True)
    error_code: str | None = Field(default=None, max_length=32)
    error_reason: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = _ts()
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SurveyDefinition(SQLModel, table=True):
    """A frozen copy of a survey or form definition; runs are pinned to one."""

    __table_args__ = (UniqueConstraint("survey_id", "digest", name="uq_definition_digest"),)

    id: int | None = Field(default=None, primary_key=True)
    survey_id: str = Field(max_length=64)
    version: int
    digest: str = Field(max_length=64)
    body: dict[str, Any] = _json()
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SurveyRun(SQLModel, table=True):
    """One contact walking one survey or form; status: active, submitted, cancelled, expired."""

    __table_args__ = (Index("ix_run_contact_status", "contact_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id")
    survey_id: str = Field(max_length=64)
    definition_id: int = Field(foreign_key="surveydefinition.id")
    status: str = Field(default="active", max_length=16)
    step: str | None = Field(default=None, max_length=120)
    prompt_seq: int = 0
    answers: dict[str, Any] = _json()
    state: dict[str, Any] = _json()
    started_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    ended_at: datetime | None = _ts()


class SurveyResponse(SQLModel, table=True):
    """A submitted survey; `contact_id` is cleared when the contact asks to be forgotten."""

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(unique=True)
    survey_id: str = Field(max_length=64, index=True)
    version: int
    definition_id: int = Field(foreign_key="surveydefinition.id")
    contact_id: int | None = Field(default=None, index=True)
    country_code: str | None = Field(default=None, max_length=2)
    city_name: str | None = Field(default=None, max_length=200)
    language: str = Field(max_length=8)
    answers: dict[str, Any] = _json()
    submitted_at: datetime = Field(sa_type=UTCDateTime)


class AuditEntry(SQLModel, table=True):
    """Something a person did that staff must be able to account for."""

    id: int | None = Field(default=None, primary_key=True)
    actor_contact_id: int | None = Field(default=None, index=True)
    action: str = Field(max_length=64)
    subject: str | None = Field(default=None, max_length=120)
    details: dict[str, Any] = _json()
    at: datetime = Field(sa_type=UTCDateTime)


# Feature tables live in their own modules; importing them here registers them with the
# metadata Alembic and the tests use.
from storage import donations_models, staff_models, webinars_models  # noqa: E402, F401
