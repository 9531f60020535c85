"""Staff: broadcasts and their recipients (tables of storage/staff_models.py).

Revision ID: 0006_staff
Revises: 0005_webinars
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401
from alembic import op  # noqa: F401

import storage.types  # noqa: F401

revision: str = "0006_staff"
down_revision: str | None = "0005_webinars"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the staff tables."""


def downgrade() -> None:
    """Drop the staff tables."""
