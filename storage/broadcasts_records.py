"""Broadcast rows: create, load, save and list broadcasts (drafts, scheduled, being sent)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from storage.staff_models import Broadcast

STATUSES = ("draft", "scheduled", "sending", "done", "cancelled")


def create_broadcast(
    *,
    session: Session,
    title: str,
    texts: dict[str, str],
    base_language: str,
    segment: dict[str, Any],
    now: datetime,
    created_by: int | None,
    created_via: str,
    notify_contact_id: int | None = None,
) -> Broadcast:
    """Store a draft broadcast."""
    row = Broadcast(
        title=title[:200],
        texts=dict(texts),
        base_language=base_language,
        segment=dict(segment),
        status="draft",
        created_by=created_by,
        created_via=created_via,
        notify_contact_id=notify_contact_id,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def get_broadcast(
    *, session: Session, broadcast_id: int, for_update: bool = False
) -> Broadcast | None:
    """Return a broadcast, locking its row when `for_update` (PostgreSQL)."""
    stmt = select(Broadcast).where(Broadcast.id == broadcast_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.exec(stmt).first()


def save_broadcast(
    *, session: Session, broadcast: Broadcast, now: datetime, **fields: Any
) -> None:
    """Set fields on a broadcast and write them."""
    for key, value in fields.items():
        if not hasattr(broadcast, key):
            raise AttributeError(f"Broadcast has no field {key}")
        setattr(broadcast, key, value)
    broadcast.updated_at = now
    session.add(broadcast)
    session.flush()


def list_broadcasts(
    *, session: Session, limit: int = 10, statuses: Sequence[str] | None = None
) -> list[Broadcast]:
    """Return the latest broadcasts, newest first."""
    stmt = select(Broadcast).order_by(col(Broadcast.id).desc()).limit(limit)
    if statuses:
        stmt = stmt.where(col(Broadcast.status).in_(list(statuses)))
    return list(session.exec(stmt))


def latest_draft(*, session: Session, created_by: int) -> Broadcast | None:
    """Return the newest draft a contact composed."""
    stmt = (
        select(Broadcast)
        .where(Broadcast.created_by == created_by, Broadcast.status == "draft")
        .order_by(col(Broadcast.id).desc())
    )
    return session.exec(stmt).first()


def due_broadcasts(*, session: Session, now: datetime, limit: int = 10) -> list[Broadcast]:
    """Lock scheduled broadcasts whose time has come (skipping those another process holds)."""
    stmt = (
        select(Broadcast)
        .where(Broadcast.status == "scheduled", col(Broadcast.scheduled_at) <= now)
        .order_by(col(Broadcast.scheduled_at), col(Broadcast.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.exec(stmt))


def sending_broadcasts(*, session: Session, limit: int = 50) -> list[Broadcast]:
    """Return broadcasts being sent (queued or not yet fully)."""
    stmt = (
        select(Broadcast)
        .where(Broadcast.status == "sending")
        .order_by(col(Broadcast.id))
        .limit(limit)
    )
    return list(session.exec(stmt))
