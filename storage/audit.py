"""Audit log of actions staff (and the system on people's behalf) must account for."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
    direct.add(session, AuditEntry, values)


def entries(*, session: Session, action: str | None = None) -> list[AuditEntry]:
    """Return audit entries, oldest first."""
    stmt = select(AuditEntry).order_by(col(AuditEntry.id))
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    return list(session.exec(stmt))
