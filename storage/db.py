"""Engine and session factories; SQLite is tuned for one writer and many readers."""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine


class WriterLock:
    """SQLite's one writer at a time, as a queue rather than a polling busy handler.

    SQLite's busy handler sleeps between tries (1, 2, 5 … up to 100 ms), so a writer waiting
    for another one is late by a sleep and can be overtaken again and again by a process that
    writes in a loop (the inbox worker beside `serve`). Writers of one process queue on an
    RLock; those of different processes on an exclusive flock of a file beside the database,
    which the kernel hands over the moment it is released. Reentrant within a thread.
    """

    def __init__(self, path: str | None) -> None:
        """Guard the database file at `path` (None for an in-memory database)."""
        self.path = f"{path}-writer.lock" if path else None
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> None:
        """Wait for our turn to write."""
        self._thread_lock.acquire()
        if self._depth == 0 and self.path is not None:
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._thread_lock.release()
                raise
        self._depth += 1

    def __exit__(self, *_exc: object) -> None:
        """Let the next writer in."""
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()


_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, WriterLock] = weakref.WeakKeyDictionary()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Build an engine for `url`; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE."""
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        engine = create_engine(
            url,
            echo=echo,
            hide_parameters=True,  # error messages would otherwise carry bodies and numbers
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if in_memory else None,
        )
        _tune_sqlite(engine)
        _WRITE_LOCKS[engine] = WriterLock(None if in_memory else engine.url.database)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(
        url, echo=echo, hide_parameters=True, pool_pre_ping=True, pool_size=10, max_overflow=20
    )


def _tune_sqlite(engine: Engine) -> None:
    """Set pragmas on every connection and make every transaction BEGIN IMMEDIATE."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(_READ_ONLY)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_all(engine: Engine) -> None:
    """Create every table directly (tests only; deployments use `citybot db upgrade`)."""
    from storage import models  # noqa: F401  (registers the tables)

    SQLModel.metadata.create_all(engine)


_READ_ONLY = "citybot_read_only"
_READERS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """Yield a session for reading only, rolled back at the end.

    On SQLite it neither takes the in-process writer lock nor SQLite's write lock (a deferred
    BEGIN), so a process that polls never holds writers in other processes back.
    """
    reader = _READERS.get(engine)
    if reader is None:
        reader = _READERS[engine] = engine.execution_options(**{_READ_ONLY: True})
    with Session(reader, expire_on_commit=False) as session:
        try:
            yield session
        finally:
            session.rollback()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """Yield a session in one transaction: commit on success, roll back on error."""
    lock = _WRITE_LOCKS.get(engine)
    with (
        lock if lock is not None else nullcontext(),
        Session(engine, expire_on_commit=False) as session,
    ):
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
