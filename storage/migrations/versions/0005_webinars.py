"""Webinars, registrations, reminders (tables of storage/webinars_models.py).

Revision ID: 0005_webinars
Revises: 0004_donations
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401
from alembic import op  # noqa: F401

import storage.types  # noqa: F401

revision: str = "0005_webinars"
down_revision: str | None = "0004_donations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the webinars tables."""


def downgrade() -> None:
    """Drop the webinars tables."""
