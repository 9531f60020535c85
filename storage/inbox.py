"""Inbox: received platform events, deduplicated by the platform's id."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, Update, bindparam
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlmodel import Session, col, update

from storage import direct
from storage.models import InboxEvent
from storage.upsert import insert_ignore


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An unprocessed inbox event as the worker reads it."""

    id: int
    channel: str
    external_id: str
    urn: str
    payload: dict[str, Any]
    received_at: datetime


def store_event(
    *,
    session: Session,
    channel: str,
    external_id: str,
    urn: str,
    payload: dict[str, Any],
    received_at: datetime,
) -> int | None:
    """Insert an event and return its id; None when (channel, external_id) was stored before."""
    return insert_ignore(
        session,
        InboxEvent,
        {
            "channel": channel,
            "external_id": external_id,
            "urn": urn,
            "payload": payload,
            "received_at": received_at,
        },
        flush=False,  # nothing refers to the inbox
    )


def pending_batch(
    *,
    session: Session,
    limit: int = 100,
    skip_urns: Collection[str] = (),
    urn: str | None = None,
) -> list[PendingEvent]:
    """Return unprocessed events, oldest first, as plain rows (cheap: no ORM objects).

    Events of `skip_urns` (in hand elsewhere) are left out; `urn` keeps only that URN's.
    """
    if not skip_urns and urn is None:  # the worker's usual look: straight on the driver
        return [
            PendingEvent(*row) for row in direct.fetch_all(session, _oldest(), {"limit": limit})
        ]
    params: dict[str, Any] = {"limit": limit, "skip": list(skip_urns)}
    if urn is not None:
        params["urn"] = urn
    rows = session.connection().execute(_pending(urn is not None), params)
    return [PendingEvent(*row) for row in rows]


def _unprocessed() -> Select[Any]:
    """A pending event's columns, for the events not yet processed."""
    table = InboxEvent.__table__  # type: ignore[attr-defined]
    return sa_select(
        table.c.id,
        table.c.channel,
        table.c.external_id,
        table.c.urn,
        table.c.payload,
        table.c.received_at,
    ).where(table.c.processed_at.is_(None))


@cache
def _oldest() -> Select[Any]:
    """The oldest unprocessed events, whoever sent them, as Core, built once."""
    table = InboxEvent.__table__  # type: ignore[attr-defined]
    return _unprocessed().order_by(table.c.id).limit(bindparam("limit"))


@cache
def _pending(one_urn: bool) -> Select[Any]:
    """The pending-events query as Core, built once (with or without a URN filter)."""
    table = InboxEvent.__table__  # type: ignore[attr-defined]
    stmt = _unprocessed().where(
        table.c.urn.not_in(bindparam("skip", expanding=True)),  # cached whatever the list
    )
    if one_urn:
        stmt = stmt.where(table.c.urn == bindparam("urn"))
    return stmt.order_by(table.c.id).limit(bindparam("limit"))


def mark_processed(
    *, session: Session, event_id: int, now: datetime, error: str | None = None
) -> None:
    """Record that an event was handled (or failed for good, with a short reason)."""
    session.connection().execute(_done(), {"i": event_id, "now": now, "error": error})


def mark_processed_many(*, session: Session, event_ids: list[int], now: datetime) -> None:
    """Record that these events were handled, in one statement run for all of them."""
    if event_ids:
        params = [{"i": i, "now": now, "error": None} for i in event_ids]
        direct.execute_many(session, _done(), params)


@cache
def _done() -> Update:
    """The mark-processed update as Core, built once."""
    table = InboxEvent.__table__  # type: ignore[attr-defined]
    return (
        sa_update(table)
        .where(table.c.id == bindparam("i"))
        .values(processed_at=bindparam("now"), error=bindparam("error"))
    )


def redact_events(*, session: Session, urns: list[str]) -> int:
    """Drop the payload of every event from these URNs and replace the URN; return the count."""
    if not urns:
        return 0
    result = session.exec(
        update(InboxEvent).where(col(InboxEvent.urn).in_(urns)).values(payload={}, urn="erased")
    )
    return int(result.rowcount or 0)
