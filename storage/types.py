"""Column types: UTC-aware timestamps on every backend."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.processors import str_to_datetime
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes and normalise to UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Attach UTC to values read back without a zone."""
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_utc_bind(value: datetime) -> str:
    """A UTC column's parameter for SQLite in one step: what `UTCDateTime` and SQLite give.

    SQLAlchemy's SQLite DATETIME stores `YYYY-MM-DD HH:MM:SS.ffffff`, which is the ISO form
    with a space and microseconds; the hot statements (`storage/direct.py`) convert here
    instead of through the type decorator and the dialect's formatter.
    """
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def sqlite_utc_result(value: str) -> datetime:
    """A UTC column's value read from SQLite, timezone-aware, in one step."""
    parsed = str_to_datetime(value)
    if parsed is None:  # only for a NULL, which callers convert before asking
        raise ValueError("no timestamp to convert")
    return parsed.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)
