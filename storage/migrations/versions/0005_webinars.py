"""Webinars, registrations, reminders (tables of storage/webinars_models.py).

Revision ID: 0005_webinars
Revises: 0004_donations
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0005_webinars"
down_revision: str | None = "0004_donations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    """A bounded string column type, as SQLModel declares it."""
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _utc() -> storage.types.UTCDateTime:
    """A UTC timestamp column type."""
    return storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    """Create the webinars tables."""
    op.create_table(
        "webinar",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.JSON(), nullable=False),
        sa.Column("description", sa.JSON(), nullable=False),
        sa.Column("starts_at", _utc(), nullable=False),
        sa.Column("timezone", _text(64), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("join_url", _text(500), nullable=False),
        sa.Column("interpretation", sa.JSON(), nullable=False),
        sa.Column("focus_area", _text(40), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("registration_deadline", _utc(), nullable=True),
        sa.Column("reminder_offsets", sa.JSON(), nullable=False),
        sa.Column("survey_delay_minutes", sa.Integer(), nullable=False),
        sa.Column("quiet_start_minute", sa.Integer(), nullable=False),
        sa.Column("quiet_end_minute", sa.Integer(), nullable=False),
        sa.Column("status", _text(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by_contact_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("cancelled_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webinar", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webinar_starts_at"), ["starts_at"], unique=False)

    op.create_table(
        "webinar_registration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("webinar_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("status", _text(16), nullable=False),
        sa.Column("source", _text(16), nullable=False),
        sa.Column("language", _text(8), nullable=False),
        sa.Column("country_code", _text(2), nullable=True),
        sa.Column("timezone", _text(64), nullable=False),
        sa.Column("zone_source", _text(16), nullable=False),
        sa.Column("registered_at", _utc(), nullable=False),
        sa.Column("unregistered_at", _utc(), nullable=True),
        sa.Column("survey_response_id", sa.Integer(), nullable=True),
        sa.Column("certificate_name", _text(120), nullable=True),
        sa.Column("feedback_at", _utc(), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.ForeignKeyConstraint(["webinar_id"], ["webinar.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("webinar_id", "contact_id", name="uq_webinar_registration"),
    )
    with op.batch_alter_table("webinar_registration", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webinar_registration_contact_id"), ["contact_id"], unique=False
        )

    op.create_table(
        "webinar_reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("webinar_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("kind", _text(16), nullable=False),
        sa.Column("offset_minutes", sa.Integer(), nullable=False),
        sa.Column("nominal_at", _utc(), nullable=False),
        sa.Column("due_at", _utc(), nullable=False),
        sa.Column("zone", _text(64), nullable=False),
        sa.Column("status", _text(16), nullable=False),
        sa.Column("reason", _text(40), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("queued_at", _utc(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.ForeignKeyConstraint(["registration_id"], ["webinar_registration.id"]),
        sa.ForeignKeyConstraint(["webinar_id"], ["webinar.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "registration_id", "kind", "offset_minutes", name="uq_webinar_reminder_key"
        ),
    )
    with op.batch_alter_table("webinar_reminder", schema=None) as batch_op:
        batch_op.create_index("ix_webinar_reminder_due", ["status", "due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_webinar_reminder_webinar_id"), ["webinar_id"], unique=False
        )


def downgrade() -> None:
    """Drop the webinars tables."""
    with op.batch_alter_table("webinar_reminder", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webinar_reminder_webinar_id"))
        batch_op.drop_index("ix_webinar_reminder_due")
    op.drop_table("webinar_reminder")
    with op.batch_alter_table("webinar_registration", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webinar_registration_contact_id"))
    op.drop_table("webinar_registration")
    with op.batch_alter_table("webinar", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webinar_starts_at"))
    op.drop_table("webinar")
