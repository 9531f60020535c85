"""Donation storage plumbing: savepoints, locked reads, untyped table handles, line input."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from storage.donations_states import DonationError


def _models(*models: type[Any]) -> tuple[Any, ...]:
    """Table models as untyped handles, for core SQL expressions mypy cannot follow."""
    return models


@contextmanager
def _atomic(session: Session) -> Iterator[None]:
    """Run an operation in a savepoint: an error undoes every write it made."""
    with session.begin_nested():
        yield
    session.flush()


def _locked(session: Session, model: type[Any], row_id: int) -> Any:
    """Read a row again, locked for update on PostgreSQL (SQLite has one writer anyway)."""
    session.flush()
    row = session.get(model, row_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise DonationError("don_err_not_found", ref=str(row_id))
    return row


@dataclass(frozen=True, slots=True)
class LineInput:
    """An item and a quantity for a new request or pledge line."""

    item_id: str
    item_group: str
    quantity: int
    description: str | None = None
