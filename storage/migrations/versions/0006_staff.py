"""Staff: broadcasts and their recipients (tables of storage/staff_models.py).

Revision ID: 0006_staff
Revises: 0005_webinars
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0006_staff"
down_revision: str | None = "0005_webinars"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    """A bounded string column type, as SQLModel declares it."""
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _utc() -> storage.types.UTCDateTime:
    """A UTC timestamp column type."""
    return storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    """Create the staff tables."""
    op.create_table(
        "broadcast",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", _text(200), nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False),
        sa.Column("base_language", _text(8), nullable=False),
        sa.Column("segment", sa.JSON(), nullable=False),
        sa.Column("status", _text(16), nullable=False),
        sa.Column("scheduled_at", _utc(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_via", _text(16), nullable=False),
        sa.Column("notify_contact_id", sa.Integer(), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("excluded", sa.Integer(), nullable=False),
        sa.Column("progress_reported", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("started_at", _utc(), nullable=True),
        sa.Column("queued_at", _utc(), nullable=True),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("cancelled_at", _utc(), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["contact.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("broadcast", schema=None) as batch_op:
        batch_op.create_index(
            "ix_broadcast_status_due", ["status", "scheduled_at"], unique=False
        )

    op.create_table(
        "broadcast_recipient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("urn", _text(200), nullable=True),
        sa.Column("channel", _text(16), nullable=True),
        sa.Column("language", _text(8), nullable=False),
        sa.Column("fallback", sa.Boolean(), nullable=False),
        sa.Column("excluded", _text(32), nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("queued_at", _utc(), nullable=True),
        sa.ForeignKeyConstraint(["broadcast_id"], ["broadcast.id"]),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("broadcast_id", "contact_id", name="uq_broadcast_recipient"),
    )
    with op.batch_alter_table("broadcast_recipient", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_broadcast_recipient_contact_id"), ["contact_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_broadcast_recipient_outbox_id"), ["outbox_id"], unique=False
        )


def downgrade() -> None:
    """Drop the staff tables."""
    with op.batch_alter_table("broadcast_recipient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broadcast_recipient_outbox_id"))
        batch_op.drop_index(batch_op.f("ix_broadcast_recipient_contact_id"))
    op.drop_table("broadcast_recipient")
    with op.batch_alter_table("broadcast", schema=None) as batch_op:
        batch_op.drop_index("ix_broadcast_status_due")
    op.drop_table("broadcast")
