"""Fixtures: databases (SQLite; PostgreSQL with TEST_DATABASE_URL), a fixed clock, dialogs."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from handlers.config import BotConfig
from handlers.places import Gazetteer, gazetteer
from storage import migrate
from storage.db import make_engine
from tests.support import Dialog

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _postgres_engine() -> Iterator[Engine]:
    """A fresh schema in the test PostgreSQL database, dropped afterwards."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL not set")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(url)
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _search_path(dbapi_connection: object, _record: object) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute(f"SET search_path TO {schema}")
        cursor.close()
        dbapi_connection.commit()  # type: ignore[attr-defined]

    migrate.upgrade(engine=engine)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def any_engine(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[Engine]:
    """Storage contract tests run on both databases."""
    if request.param == "postgres":
        yield from _postgres_engine()
        return
    engine = make_engine(f"sqlite:///{tmp_path}/contract.db")
    migrate.upgrade(engine=engine)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(tmp_path: object) -> Iterator[Engine]:
    """A migrated SQLite database in a temporary file."""
    engine = make_engine(f"sqlite:///{tmp_path}/bot.db")
    migrate.upgrade(engine=engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FixedClock:
    """A clock fixed at a known Monday morning, UTC."""
    return FixedClock(START)


@pytest.fixture
def config() -> BotConfig:
    """The default configuration."""
    return BotConfig()


@pytest.fixture(scope="session")
def places() -> Gazetteer:
    """The real gazetteer, built once for the session."""
    return gazetteer()


@pytest.fixture
def dialog(
    engine: Engine, config: BotConfig, clock: FixedClock, places: Gazetteer
) -> Callable[..., Dialog]:
    """Make dialogs for people (`dialog("console:amina")`)."""

    def make(urn: str = "console:tester", **overrides: object) -> Dialog:
        cfg = dataclasses.replace(config, **overrides) if overrides else config  # type: ignore[arg-type]
        return Dialog(engine, cfg, clock, places, urn)

    return make
