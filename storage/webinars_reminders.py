"""Scheduled messages of webinars: adding, listing, cancelling, claiming and withdrawing them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, insert, or_
from sqlmodel import Session, col, select, update

from storage.models import OutboxMessage
from storage.webinars_models import WebinarReminder
from storage.webinars_states import CANCELLED, QUEUED, SCHEDULED, SKIPPED


def find_reminder(
    *, session: Session, registration_id: int, kind: str, offset_minutes: int
) -> WebinarReminder | None:
    """Return the scheduled message with this unique key."""
    stmt = select(WebinarReminder).where(
        WebinarReminder.registration_id == registration_id,
        WebinarReminder.kind == kind,
        WebinarReminder.offset_minutes == offset_minutes,
    )
    return session.exec(stmt).first()


def add_reminders(*, session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert scheduled messages in one statement (keys checked free under the webinar lock)."""
    if rows:
        session.execute(insert(WebinarReminder.__table__), rows)  # type: ignore[attr-defined]


def registrations_with(
    *, session: Session, webinar_id: int, kind: str, offset_minutes: int
) -> set[int]:
    """Registrations of a webinar that already have a message with this kind and offset."""
    stmt = select(WebinarReminder.registration_id).where(
        WebinarReminder.webinar_id == webinar_id,
        WebinarReminder.kind == kind,
        WebinarReminder.offset_minutes == offset_minutes,
    )
    return {int(r) for r in session.exec(stmt)}


def save_reminder(*, session: Session, reminder: WebinarReminder, now: datetime) -> None:
    """Write a changed scheduled message."""
    reminder.updated_at = now
    session.add(reminder)


def reminders_of(
    *,
    session: Session,
    webinar_id: int | None = None,
    registration_id: int | None = None,
    statuses: Iterable[str] | None = None,
    kinds: Iterable[str] | None = None,
) -> list[WebinarReminder]:
    """Scheduled messages of a webinar or a registration, in due order."""
    stmt = select(WebinarReminder).order_by(col(WebinarReminder.due_at), col(WebinarReminder.id))
    if webinar_id is not None:
        stmt = stmt.where(WebinarReminder.webinar_id == webinar_id)
    if registration_id is not None:
        stmt = stmt.where(WebinarReminder.registration_id == registration_id)
    if statuses is not None:
        stmt = stmt.where(col(WebinarReminder.status).in_(list(statuses)))
    if kinds is not None:
        stmt = stmt.where(col(WebinarReminder.kind).in_(list(kinds)))
    return list(session.exec(stmt))


def cancel_reminders(
    *,
    session: Session,
    now: datetime,
    reason: str,
    webinar_id: int | None = None,
    registration_id: int | None = None,
    kinds: Iterable[str] = ("reminder", "survey"),
) -> int:
    """Cancel the not yet queued messages of a webinar or registration; return the count."""
    stmt = (
        update(WebinarReminder)
        .where(col(WebinarReminder.status) == SCHEDULED)
        .where(col(WebinarReminder.kind).in_(list(kinds)))
        .values(status=CANCELLED, reason=reason, updated_at=now)
    )
    if webinar_id is not None:
        stmt = stmt.where(col(WebinarReminder.webinar_id) == webinar_id)
    if registration_id is not None:
        stmt = stmt.where(col(WebinarReminder.registration_id) == registration_id)
    result = session.exec(stmt)
    return int(result.rowcount or 0)


def claim_due(
    *, session: Session, now: datetime, limit: int = 500, reminders_until: datetime | None = None
) -> list[WebinarReminder]:
    """Lock and return due scheduled messages (reminders due by `reminders_until` too).

    Oldest due first. On PostgreSQL rows another scheduler holds are skipped (FOR UPDATE
    SKIP LOCKED) and a row it has queued meanwhile no longer matches; on SQLite the writer
    lock serialises.
    The caller must change each row's status in the same transaction.
    """
    due = col(WebinarReminder.due_at) <= now
    if reminders_until is not None and reminders_until > now:
        early = and_(
            col(WebinarReminder.kind) == "reminder",
            col(WebinarReminder.due_at) <= reminders_until,
        )
        due = or_(due, early)
    stmt = (
        select(WebinarReminder)
        .where(WebinarReminder.status == SCHEDULED, due)
        .order_by(col(WebinarReminder.due_at), col(WebinarReminder.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.exec(stmt))


def withdraw_early(
    *,
    session: Session,
    now: datetime,
    webinar_id: int | None = None,
    registration_id: int | None = None,
) -> int:
    """Take back reminders handed to the outbox before their time and not yet sent.

    Their outbox rows become `cancelled`; the reminders are scheduled again under a new
    version (so a new outbox key) for the caller to cancel or reschedule. Returns the count.
    """
    stmt = select(WebinarReminder).where(
        WebinarReminder.status == QUEUED, WebinarReminder.due_at > now
    )
    if webinar_id is not None:
        stmt = stmt.where(WebinarReminder.webinar_id == webinar_id)
    if registration_id is not None:
        stmt = stmt.where(WebinarReminder.registration_id == registration_id)
    early = {r.outbox_id: r for r in session.exec(stmt) if r.outbox_id is not None}
    if not early:
        return 0
    taken = session.exec(
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(list(early)))
        .where(col(OutboxMessage.status) == "pending", col(OutboxMessage.attempts) == 0)
        .values(status=CANCELLED, updated_at=now, error_reason="withdrawn: webinar changed")
        .returning(col(OutboxMessage.id))
    ).scalars()
    count = 0
    for outbox_id in list(taken):
        row = early[int(outbox_id)]
        row.status, row.outbox_id, row.queued_at = SCHEDULED, None, None
        row.version += 1
        save_reminder(session=session, reminder=row, now=now)
        count += 1
    session.flush()
    return count


class Sibling(NamedTuple):
    """What the sweep needs of a registration's other messages to tell if one is moot."""

    id: int
    registration_id: int
    kind: str
    offset_minutes: int


def due_siblings(
    *, session: Session, registration_ids: Iterable[int], now: datetime
) -> list[Sibling]:
    """Reminders and change notices of these registrations due by `now`, scheduled or queued."""
    ids = list(registration_ids)
    if not ids:
        return []
    # NOT IN on the status keeps the planner on the registration's unique index; `status IN`
    # would have it walk the (status, due_at) index over every queued row.
    rem = WebinarReminder
    stmt = select(rem.id, rem.registration_id, rem.kind, rem.offset_minutes).where(
        col(rem.registration_id).in_(ids),
        col(rem.kind).in_(("reminder", "changed")),
        col(rem.due_at) <= now,
        col(rem.status).not_in((SKIPPED, CANCELLED)),
    )
    return [Sibling(int(i or 0), r, kind, offset) for i, r, kind, offset in session.exec(stmt)]
