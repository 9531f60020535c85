"""Outbox: messages decided by handlers or jobs, drained per channel by a dispatcher."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select, update

from storage.models import OutboxMessage
from storage.upsert import insert_ignore, insert_ignore_many

# Delivery statuses only move forward; failed and undelivered are terminal.
STATUS_RANK = {
    "pending": 0,
    "sending": 1,
    "queued": 2,
    "sent": 3,
    "delivered": 4,
    "read": 5,
}
TERMINAL = frozenset({"failed", "undelivered", "cancelled", "needs_template", "read"})


def enqueue(
    *,
    session: Session,
    idempotency_key: str,
    urn: str,
    channel: str,
    body: dict[str, Any],
    now: datetime,
    contact_id: int | None = None,
    kind: str = "reply",
    language: str = "en",
    not_before: datetime | None = None,
) -> int | None:
    """Add a message unless one with the same key exists; return the new row's id or None."""
    row = new_message(
        idempotency_key=idempotency_key,
        urn=urn,
        channel=channel,
        body=body,
        now=now,
        contact_id=contact_id,
        kind=kind,
        language=language,
        not_before=not_before,
    )
    # no pending ORM row can be an outbox message's parent: nothing to flush first
    return insert_ignore(session, OutboxMessage, row, flush=False)


def new_message(
    *,
    idempotency_key: str,
    urn: str,
    channel: str,
    body: dict[str, Any],
    now: datetime,
    contact_id: int | None = None,
    kind: str = "reply",
    language: str = "en",
    not_before: datetime | None = None,
) -> dict[str, Any]:
    """Return the row `enqueue` writes, for `enqueue_many`."""
    return {
        "idempotency_key": idempotency_key,
        "urn": urn,
        "channel": channel,
        "body": body,
        "contact_id": contact_id,
        "kind": kind,
        "language": language,
        "status": "pending",
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        "next_attempt_at": not_before or now,
    }


def enqueue_many(*, session: Session, rows: list[dict[str, Any]]) -> int:
    """Add messages (rows from `new_message`) in one statement, in order, skipping known keys."""
    return insert_ignore_many(session, OutboxMessage, rows)


def claim_due(
    *,
    session: Session,
    channel: str,
    now: datetime,
    limit: int = 50,
    lease: timedelta = timedelta(minutes=2),
) -> list[OutboxMessage]:
    """Lease due messages of a channel, at most one per URN and only its oldest unsent one.

    A URN's later message waits while an earlier one is in flight, due, or retrying (say,
    after a 429), so each person receives their messages in order; an earlier message merely
    scheduled for later (never attempted) does not hold the others back. The lease
    (next_attempt_at) makes a message claimable again if the dispatcher holding it dies.
    """
    earlier = aliased(OutboxMessage)
    blocked = (
        select(earlier.id)
        .where(col(earlier.urn) == col(OutboxMessage.urn))
        .where(col(earlier.id) < col(OutboxMessage.id))
        .where(
            or_(
                col(earlier.status) == "sending",
                and_(
                    col(earlier.status) == "pending",
                    or_(col(earlier.attempts) > 0, col(earlier.next_attempt_at) <= now),
                ),
            )
        )
        .exists()
    )
    stmt = (
        select(OutboxMessage)
        .where(OutboxMessage.channel == channel)
        .where(col(OutboxMessage.status).in_(("pending", "sending")))
        .where(OutboxMessage.next_attempt_at <= now)
        .where(~blocked)
        .order_by(col(OutboxMessage.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list(session.exec(stmt))
    for row in rows:
        row.status = "sending"
        row.attempts += 1
        row.next_attempt_at = now + lease
        row.updated_at = now
        session.add(row)
    session.flush()
    return rows


def _record(session: Session, message_id: int, **values: Any) -> None:
    """Set fields of an outbox message (none when it is gone) and flush."""
    row = session.get(OutboxMessage, message_id)
    if row is None:
        return
    for name, value in values.items():
        setattr(row, name, value)
    session.add(row)
    session.flush()


def mark_sent(
    *,
    session: Session,
    message_id: int,
    now: datetime,
    provider_id: str | None,
    status: str = "sent",
) -> None:
    """Record a successful hand-over to the platform."""
    _record(
        session,
        message_id,
        status=status,
        provider_id=provider_id,
        sent_at=now,
        updated_at=now,
        error_code=None,
        error_reason=None,
    )


def mark_retry(
    *, session: Session, message_id: int, now: datetime, at: datetime, code: str, reason: str
) -> None:
    """Put a message back in the queue for another attempt at `at`."""
    _record(
        session,
        message_id,
        status="pending",
        next_attempt_at=at,
        error_code=code,
        error_reason=reason[:300],
        updated_at=now,
    )


def mark_failed(
    *,
    session: Session,
    message_id: int,
    now: datetime,
    code: str,
    reason: str,
    status: str = "failed",
) -> None:
    """End a message with a terminal status and its reason."""
    _record(
        session,
        message_id,
        status=status,
        error_code=code,
        error_reason=reason[:300],
        updated_at=now,
    )


def apply_status(
    *,
    session: Session,
    provider_id: str,
    status: str,
    now: datetime,
    error_code: str | None = None,
) -> bool | None:
    """Apply a status callback: True if it moved, False if a regression, None if id unknown."""
    row = get_by_provider_id(session=session, provider_id=provider_id)
    if row is None:
        return None
    if row.status in TERMINAL:
        return False
    terminal = status in ("failed", "undelivered")
    if not terminal and STATUS_RANK.get(status, -1) <= STATUS_RANK.get(row.status, -1):
        return False
    row.status = status
    row.updated_at = now
    if error_code:
        row.error_code = error_code
    session.add(row)
    session.flush()
    return True


def get_message(*, session: Session, message_id: int) -> OutboxMessage | None:
    """Return one outbox row."""
    return session.get(OutboxMessage, message_id)


def messages_for(*, session: Session, urn: str) -> list[OutboxMessage]:
    """Return every message addressed to a URN, oldest first."""
    stmt = select(OutboxMessage).where(OutboxMessage.urn == urn).order_by(col(OutboxMessage.id))
    return list(session.exec(stmt))


def count_by_status(*, session: Session, channel: str | None = None) -> dict[str, int]:
    """Count messages per status, optionally for one channel."""
    stmt = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    if channel is not None:
        stmt = stmt.where(OutboxMessage.channel == channel)
    return {status: int(n) for status, n in session.exec(stmt)}


def redact_messages(*, session: Session, contact_id: int, keep_id: int | None = None) -> int:
    """Blank the bodies and addresses of a contact's sent messages; return the count."""
    stmt = (
        update(OutboxMessage)
        .where(col(OutboxMessage.contact_id) == contact_id)
        .where(col(OutboxMessage.status).not_in(("pending", "sending")))
        .values(body={}, urn="erased")
    )
    if keep_id is not None:
        stmt = stmt.where(col(OutboxMessage.id) != keep_id)
    result = session.exec(stmt)
    return int(result.rowcount or 0)


def recent_sent(
    *, session: Session, urn: str, before_id: int, limit: int = 3
) -> list[OutboxMessage]:
    """Return the last messages sent to a URN before `before_id`, oldest first."""
    stmt = (
        select(OutboxMessage)
        .where(OutboxMessage.urn == urn)
        .where(col(OutboxMessage.id) < before_id)
        .where(col(OutboxMessage.provider_id).is_not(None))
        .order_by(col(OutboxMessage.id).desc())
        .limit(limit)
    )
    return list(reversed(list(session.exec(stmt))))


HELD = "needs_template"  # no approved WhatsApp template for the message outside the window


def get_by_provider_id(*, session: Session, provider_id: str) -> OutboxMessage | None:
    """Return the message the platform knows by this id (for status callbacks), if any."""
    stmt = select(OutboxMessage).where(OutboxMessage.provider_id == provider_id).limit(1)
    return session.exec(stmt).first()


def _held_where(kind: str | None, language: str | None, channel: str | None) -> list[Any]:
    """Conditions picking held messages (not erased ones), narrowed by kind, language, channel."""
    where: list[Any] = [col(OutboxMessage.status) == HELD, col(OutboxMessage.urn) != "erased"]
    for column, value in (
        (OutboxMessage.kind, kind),
        (OutboxMessage.language, language),
        (OutboxMessage.channel, channel),
    ):
        if value is not None:
            where.append(col(column) == value)
    return where


def held_counts(
    *, session: Session, kind: str | None = None, language: str | None = None
) -> list[tuple[str, str, str, int]]:
    """Count held messages per (kind, language, channel), the largest groups first."""
    count = func.count()
    stmt = (
        select(OutboxMessage.kind, OutboxMessage.language, OutboxMessage.channel, count)
        .where(*_held_where(kind, language, None))
        .group_by(OutboxMessage.kind, OutboxMessage.language, OutboxMessage.channel)
        .order_by(count.desc(), OutboxMessage.kind, OutboxMessage.language)
    )
    return [(k, lang, channel, int(n)) for k, lang, channel, n in session.exec(stmt)]


def requeue_held(
    *,
    session: Session,
    now: datetime,
    kind: str | None = None,
    language: str | None = None,
    channel: str | None = None,
) -> int:
    """Put held messages back in the queue, due now with fresh attempts; return the count."""
    fresh = {"status": "pending", "attempts": 0, "next_attempt_at": now}
    return _change_held(
        session,
        (kind, language, channel),
        updated_at=now,
        error_code=None,
        error_reason=None,
        **fresh,
    )


def cancel_held(
    *,
    session: Session,
    now: datetime,
    reason: str,
    kind: str | None = None,
    language: str | None = None,
    channel: str | None = None,
) -> int:
    """End held messages as cancelled, keeping the reason; return the count."""
    return _change_held(
        session,
        (kind, language, channel),
        status="cancelled",
        updated_at=now,
        error_code="cancelled",
        error_reason=reason[:300],
    )


def _change_held(
    session: Session, where: tuple[str | None, str | None, str | None], **values: Any
) -> int:
    """Set `values` on the held messages the filters (kind, language, channel) select."""
    stmt = update(OutboxMessage).where(*_held_where(*where)).values(**values)
    return int(session.exec(stmt).rowcount or 0)


def due_by_channel(*, session: Session, now: datetime) -> dict[str, int]:
    """Count messages due and unsent per channel (what the dispatchers have yet to send)."""
    stmt = (
        select(OutboxMessage.channel, func.count())
        .where(col(OutboxMessage.status).in_(("pending", "sending")))
        .where(OutboxMessage.next_attempt_at <= now)
        .group_by(OutboxMessage.channel)
    )
    return {channel: int(n) for channel, n in session.exec(stmt)}
