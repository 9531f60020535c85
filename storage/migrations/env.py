"""Alembic environment: our SQLModel metadata, batch mode for SQLite, foreign tables ignored."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlmodel import SQLModel

from storage import models  # noqa: F401  (registers every table)
from storage.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def _include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Leave tables we do not own (e.g. a scheduler's) alone."""
    return not (type_ == "table" and reflected and compare_to is None)


def run_migrations() -> None:
    """Run the migrations on the configured URL (or a connection passed in)."""
    connection = config.attributes.get("connection")
    if connection is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.connect() as conn:
            _run(conn)
        engine.dispose()
    else:
        _run(connection)


def _run(connection: Any) -> None:
    """Configure the context on a connection and upgrade."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=_include,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
