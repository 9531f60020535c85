"""The webinars themselves: creating, loading, saving and listing them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from storage.webinars_models import Webinar


def create_webinar(*, session: Session, now: datetime, **fields: Any) -> Webinar:
    """Store a new webinar (fields as in `Webinar`) and return it with its id."""
    webinar = Webinar(**fields, created_at=now, updated_at=now)
    session.add(webinar)
    session.flush()
    return webinar


def get_webinar(*, session: Session, webinar_id: int, for_update: bool = False) -> Webinar | None:
    """Return a webinar, locking its row when `for_update` (registrations, edits)."""
    stmt = select(Webinar).where(Webinar.id == webinar_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.exec(stmt).first()


def save_webinar(*, session: Session, webinar: Webinar, now: datetime) -> None:
    """Write a changed webinar."""
    webinar.updated_at = now
    session.add(webinar)
    session.flush()


def upcoming_webinars(*, session: Session, now: datetime, limit: int = 10) -> list[Webinar]:
    """Scheduled webinars that have not started yet, soonest first."""
    stmt = (
        select(Webinar)
        .where(Webinar.status == "scheduled", Webinar.starts_at > now)
        .order_by(col(Webinar.starts_at), col(Webinar.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


def list_webinars(*, session: Session, since: datetime | None = None) -> list[Webinar]:
    """Every webinar (starting at or after `since`), soonest first."""
    stmt = select(Webinar).order_by(col(Webinar.starts_at), col(Webinar.id))
    if since is not None:
        stmt = stmt.where(Webinar.starts_at >= since)
    return list(session.exec(stmt))
