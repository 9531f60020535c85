"""INSERT … ON CONFLICT DO NOTHING for SQLite and PostgreSQL: dedupe in one statement."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session, SQLModel


@cache
def _statement(dialect: str, model: type[SQLModel]) -> Insert:
    """Build the statement once per dialect and table, so its compiled form is reused."""
    table = model.__table__  # type: ignore[attr-defined]
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return builder(table).on_conflict_do_nothing().returning(table.c.id)


def insert_ignore(session: Session, model: type[SQLModel], values: dict[str, Any]) -> int | None:
    """Insert a row unless a unique key already holds it; return the new id or None."""
    stmt = _statement(session.get_bind().dialect.name, model)
    row = session.execute(stmt, values).first()
    return None if row is None else int(row[0])
