"""Copying SQLite's write-ahead log into the database off the writers' path.

By default SQLite checkpoints inside a commit: the transaction that takes the log past 1,000
pages copies them all into the database file and syncs it to disk before its commit returns.
That commit holds the writer lock meanwhile, so every webhook and batch waiting to write
waits for a disk sync too: the slowest messages of a busy minute are those. A long-running
process (`serve`, `worker`) turns that off on its connections and checkpoints here instead,
in a thread of its own, a few times a second, in PASSIVE mode: it never blocks a writer or a
reader, and a sync no longer lands inside anybody's transaction. Processes that do not run
this (CLI commands) keep SQLite's default.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)

DEFAULT_PAGES = 1000  # SQLite's own wal_autocheckpoint
_OFF = "citybot_autocheckpoint_off"
_RUNNING: weakref.WeakSet[Engine] = weakref.WeakSet()
_LISTENING: weakref.WeakSet[Engine] = weakref.WeakSet()


def database_file(engine: Engine) -> str | None:
    """The file of a SQLite database with a log (None for in-memory and other databases)."""
    if engine.dialect.name != "sqlite":
        return None
    path = engine.url.database
    return path if path and path != ":memory:" else None


def _listen(engine: Engine) -> None:
    """Make every checkout set the connection's autocheckpoint for the engine's mode (once)."""
    if engine not in _LISTENING:
        event.listen(engine, "checkout", _on_checkout(engine))
        _LISTENING.add(engine)


def _on_checkout(engine: Engine) -> Any:
    """A pool listener that sets a connection's autocheckpoint for the engine's mode."""

    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        """Turn SQLite's own checkpoints off while the thread runs, back on after."""
        off = engine in _RUNNING
        if record.info.get(_OFF, False) != off:
            pages = 0 if off else DEFAULT_PAGES
            dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={pages}")
            record.info[_OFF] = off

    return _checkout


class Checkpointer:
    """A thread that checkpoints one engine's database every `interval` seconds."""

    def __init__(self, engine: Engine, path: str, *, interval: float = 0.25) -> None:
        """Bind the engine (whose connections stop checkpointing) and its file."""
        self.engine, self.path, self.interval = engine, path, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def start(self) -> None:
        """Turn the connections' own checkpoints off and start the thread."""
        _listen(self.engine)
        _RUNNING.add(self.engine)
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """Checkpoint until stopped; a failed round is logged and the next one tries again."""
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self.interval):
                self._round(connection)
            self._round(connection)  # leave little in the log for the next process
        finally:
            connection.close()

    def _round(self, connection: sqlite3.Connection) -> None:
        """One checkpoint, its failure logged."""
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.rounds += 1
        except Exception as error:  # the thread must outlive any one failure
            logger.warning("wal checkpoint failed (%s)", type(error).__name__)

    def stop(self) -> None:
        """Stop the thread after a last checkpoint; connections checkpoint themselves again."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        _RUNNING.discard(self.engine)  # each connection gets its default at its next checkout


@contextmanager
def checkpointing(engine: Engine) -> Iterator[None]:
    """Checkpoint the engine's SQLite file in the background while the block runs."""
    checkpointer = start_checkpoints(engine)
    try:
        yield
    finally:
        if checkpointer is not None:
            checkpointer.stop()


def start_checkpoints(engine: Engine, *, interval: float = 0.25) -> Checkpointer | None:
    """Checkpoint the engine's SQLite file in the background; None when there is no log."""
    path = database_file(engine)
    if path is None:
        return None
    checkpointer = Checkpointer(engine, path, interval=interval)
    checkpointer.start()
    return checkpointer
