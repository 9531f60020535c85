"""Inbox: received platform events, deduplicated by the platform's id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select, update

from storage.models import InboxEvent
from storage.upsert import insert_ignore


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
    )


def pending_events(
    *, session: Session, urn: str | None = None, limit: int = 100
) -> list[InboxEvent]:
    """Return unprocessed events, oldest first, optionally for one URN."""
    stmt = select(InboxEvent).where(col(InboxEvent.processed_at).is_(None))
    if urn is not None:
        stmt = stmt.where(InboxEvent.urn == urn)
    return list(session.exec(stmt.order_by(col(InboxEvent.id)).limit(limit)))


def pending_urns(*, session: Session, limit: int = 100) -> list[str]:
    """Return the URNs that have unprocessed events, by their oldest event."""
    stmt = (
        select(InboxEvent.urn)
        .where(col(InboxEvent.processed_at).is_(None))
        .group_by(InboxEvent.urn)
        .order_by(func.min(InboxEvent.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


def mark_processed(
    *, session: Session, event: InboxEvent, now: datetime, error: str | None = None
) -> None:
    """Record that an event was handled (or failed for good, with a short reason)."""
    event.processed_at = now
    event.error = error
    session.add(event)
    session.flush()


def redact_events(*, session: Session, urns: list[str]) -> int:
    """Drop the payload of every event from these URNs and replace the URN; return the count."""
    if not urns:
        return 0
    result = session.exec(
        update(InboxEvent).where(col(InboxEvent.urn).in_(urns)).values(payload={}, urn="erased")
    )
    return int(result.rowcount or 0)
