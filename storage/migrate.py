"""Schema migrations with Alembic, driven from code (`citybot db upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """Build an Alembic configuration for a database URL."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(*, engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind `engine` to `revision`."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(*, engine: Engine, revision: str) -> None:
    """Downgrade the database behind `engine` to `revision` (`base` empties it)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def current_revision(*, engine: Engine) -> str | None:
    """Return the revision the database is at (None when never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """Return the newest revision in the code."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def revision(*, engine: Engine, message: str) -> None:
    """Autogenerate a new revision against the database behind `engine` (developers only)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
