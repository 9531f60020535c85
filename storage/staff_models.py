"""Staff: broadcasts and their recipients: table models (migration 0006_staff)."""

from __future__ import annotations
