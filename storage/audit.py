"""Audit log of actions staff (and the system on people's behalf) must account for."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Insert, bindparam
from sqlalchemy import insert as sa_insert
from sqlmodel import Session, col, select

from storage import direct
from storage.models import AuditEntry


def record(
    *,
    session: Session,
    action: str,
    now: datetime,
    actor_contact_id: int | None = None,
    subject: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append an audit entry (one statement on the driver's cursor, no ORM object)."""
    values = {
        "actor_contact_id": actor_contact_id,
        "action": action,
        "subject": subject,
        "details": details or {},
        "at": now,
    }
    direct.execute(session, _insert(), values)


@cache
def _insert() -> Insert:
    """The audit insert, built once."""
    table = AuditEntry.__table__  # type: ignore[attr-defined]
    names = ("actor_contact_id", "action", "subject", "details", "at")
    return sa_insert(table).values({name: bindparam(name) for name in names})


def entries(*, session: Session, action: str | None = None) -> list[AuditEntry]:
    """Return audit entries, oldest first."""
    stmt = select(AuditEntry).order_by(col(AuditEntry.id))
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    return list(session.exec(stmt))
