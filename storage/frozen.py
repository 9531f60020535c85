"""A memo of facts about rows that never change once committed (per database).

Stored survey definitions are frozen: their id, survey and digest never change. Looking them
up on every message costs a query each; remembering them costs nothing, provided a fact is
only remembered once the transaction that saw it has committed. A row read or written before
a rollback (a savepoint's too) may vanish and its id be given to another row, so until the
commit a fact is only staged on the session.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable
from functools import cache

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

_KNOWN: weakref.WeakKeyDictionary[Engine, dict[Hashable, object]] = weakref.WeakKeyDictionary()
_STAGED = "citybot_frozen"


def recall(session: Session, key: Hashable) -> object | None:
    """Return what is known for `key` in this session's database (committed or staged)."""
    bind = session.bind
    known = _KNOWN.get(bind) if isinstance(bind, Engine) else None
    found = known.get(key) if known else None
    if found is None:
        found = session.info.get(_STAGED, {}).get(key)
    return found


def remember(session: Session, key: Hashable, value: object) -> None:
    """Stage a fact; it becomes known to every session once this one commits."""
    if isinstance(session.bind, Engine):
        _install_hooks()
        session.info.setdefault(_STAGED, {})[key] = value


@cache
def _install_hooks() -> None:
    """Install (once) the hooks that publish staged facts on commit and drop them on rollback."""

    @event.listens_for(Session, "after_commit")
    def _publish(session: Session) -> None:
        staged = session.info.pop(_STAGED, None)
        bind = session.bind
        if staged and isinstance(bind, Engine):
            _KNOWN.setdefault(bind, {}).update(staged)

    @event.listens_for(Session, "after_soft_rollback")
    def _forget(session: Session, _previous: object) -> None:
        session.info.pop(_STAGED, None)  # any rollback, savepoints too: keep nothing unsure
