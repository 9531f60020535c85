"""INSERT … ON CONFLICT DO NOTHING for SQLite and PostgreSQL: dedupe in one statement."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Integer, TextClause, TextualSelect, bindparam, text
from sqlmodel import Session, SQLModel

from storage import direct


@cache
def _statement(
    model: type[SQLModel], columns: tuple[str, ...], *, returning: bool = True
) -> TextClause | TextualSelect:
    """Build the statement once per table and column set.

    Written as text because SQLAlchemy cannot cache the compiled form of its dialects'
    `on_conflict_do_nothing()` (it compiles it again on every execution, the most expensive
    part of an insert). The SQL is the same on SQLite and PostgreSQL; typed bind parameters
    keep the column types' conversions (UTC timestamps, JSON).
    """
    table = model.__table__  # type: ignore[attr-defined]
    names = ", ".join(columns)
    values = ", ".join(f":{name}" for name in columns)
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({values}) ON CONFLICT DO NOTHING"  # noqa: S608
    binds = [bindparam(name, type_=table.c[name].type) for name in columns]
    if not returning:
        return text(sql).bindparams(*binds)
    return text(sql + " RETURNING id").bindparams(*binds).columns(id=Integer)


def insert_ignore(
    session: Session, model: type[SQLModel], values: dict[str, Any], *, flush: bool = True
) -> int | None:
    """Insert a row unless a unique key already holds it; return the new id or None.

    It runs on the driver's cursor of the session's connection (no ORM bookkeeping). Pending
    ORM changes are flushed first unless `flush` is False, for tables no pending row can be a
    parent of.
    """
    if flush:
        session.flush()
    row = direct.fetch_one(session, _statement(model, tuple(values)), values)
    return None if row is None else int(row[0])


def insert_ignore_many(session: Session, model: type[SQLModel], rows: list[dict[str, Any]]) -> int:
    """Insert rows (same keys each, in order) skipping those a unique key holds; return count.

    One statement run for every row (executemany), without flushing: for batches of rows
    nothing pending in the session refers to.
    """
    if not rows:
        return 0
    return direct.execute_many(session, _statement(model, tuple(rows[0]), returning=False), rows)
