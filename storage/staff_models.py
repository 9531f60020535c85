"""Staff: broadcasts and their recipients: table models (migration 0006_staff).

A `broadcast` holds one text per language, the segment it goes to (a JSON spec, evaluated when
sending starts), its status (draft, scheduled, sending, done, cancelled) and when it is due.
Its recipients are materialised once into `broadcast_recipient` (unique per contact), each
either excluded with a reason or linked to the outbox row that carries its message; the
outbox key `bc:<broadcast>:<contact>` makes queueing idempotent, so a crash resumes cleanly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow


class Broadcast(SQLModel, table=True):
    """An announcement to a segment of contacts; times are UTC."""

    __tablename__ = "broadcast"
    __table_args__ = (Index("ix_broadcast_status_due", "status", "scheduled_at"),)

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(default="", max_length=200)
    texts: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    base_language: str = Field(default="en", max_length=8)
    segment: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="draft", max_length=16)
    scheduled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_by: int | None = Field(default=None, foreign_key="contact.id")
    created_via: str = Field(default="chat", max_length=16)
    notify_contact_id: int | None = None
    recipients: int = 0
    excluded: int = 0
    progress_reported: int = 0
    retries: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    queued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class BroadcastRecipient(SQLModel, table=True):
    """One contact a broadcast went (or would have gone) to; `excluded` says why not."""

    __tablename__ = "broadcast_recipient"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "contact_id", name="uq_broadcast_recipient"),
    )

    id: int | None = Field(default=None, primary_key=True)
    broadcast_id: int = Field(foreign_key="broadcast.id")
    contact_id: int = Field(foreign_key="contact.id", index=True)
    urn: str | None = Field(default=None, max_length=200)
    channel: str | None = Field(default=None, max_length=16)
    language: str = Field(default="en", max_length=8)
    fallback: bool = False
    excluded: str | None = Field(default=None, max_length=32)
    outbox_id: int | None = Field(default=None, index=True)
    attempt: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    queued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
