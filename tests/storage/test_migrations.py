"""Alembic migrations produce exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from storage import migrate, models  # noqa: F401  (registers every table)


def test_upgrade_head_matches_the_models(any_engine: Engine) -> None:
    """After `upgrade head` autogenerate finds nothing to add, drop or alter."""
    assert migrate.current_revision(engine=any_engine) == migrate.head_revision()
    with any_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_downgrade_to_base_and_up_again(any_engine: Engine) -> None:
    """Every migration can be undone and redone."""
    migrate.downgrade(engine=any_engine, revision="base")
    assert migrate.current_revision(engine=any_engine) is None
    migrate.upgrade(engine=any_engine)
    assert migrate.current_revision(engine=any_engine) == migrate.head_revision()
