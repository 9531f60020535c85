"""The log checkpoints run in their own thread while a long-running process runs."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from storage.db import make_engine, session_scope
from storage.wal import DEFAULT_PAGES, start_checkpoints


def _autocheckpoint(engine: Engine) -> int:
    """What a connection handed out now would checkpoint at (pages; 0: never)."""
    with engine.connect() as connection:
        return int(connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def _write(engine: Engine, rounds: int) -> None:
    """Commit `rounds` transactions of about 40 pages each."""
    with session_scope(engine) as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS blob (data BLOB)"))
    for _ in range(rounds):
        with session_scope(engine) as session:
            session.execute(text("INSERT INTO blob VALUES (randomblob(160000))"))


def _log_bytes(path: Path) -> int:
    """The size of the database's write-ahead log file."""
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_connections_leave_checkpoints_to_the_thread_while_it_runs(tmp_path: Path) -> None:
    """Autocheckpoint is off on every connection while running, back to SQLite's after."""
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    assert _autocheckpoint(engine) == DEFAULT_PAGES
    checkpointer = start_checkpoints(engine, interval=0.01)
    assert checkpointer is not None
    try:
        assert _autocheckpoint(engine) == 0
    finally:
        checkpointer.stop()
    assert _autocheckpoint(engine) == DEFAULT_PAGES


def test_the_thread_keeps_the_log_from_growing(tmp_path: Path) -> None:
    """With the thread, the log is copied and reused: it stays far below what was written."""
    path = tmp_path / "b.db"
    engine = make_engine(f"sqlite:///{path}")
    checkpointer = start_checkpoints(engine, interval=0.005)
    assert checkpointer is not None
    try:
        for _ in range(10):
            _write(engine, 5)  # about 200 pages
            rounds = checkpointer.rounds
            while checkpointer.rounds < rounds + 2:  # a round copied what these wrote
                time.sleep(0.002)
    finally:
        checkpointer.stop()
    written = 50 * 160_000
    assert _log_bytes(path) < written / 3, "the log holds everything: nothing was checkpointed"
    with engine.connect() as connection:
        count = connection.exec_driver_sql("SELECT count(*) FROM blob").scalar_one()
    assert count == 50


def test_no_thread_for_a_database_without_a_log() -> None:
    """In-memory SQLite has no log to copy."""
    assert start_checkpoints(make_engine("sqlite://")) is None
