"""Broadcast sending state: outbox rows queued in batches, retried, cancelled or released.

Queueing writes outbox rows keyed `bc:<broadcast>:<contact>` (`…:r<n>` for the n-th retry) in
batches, each batch in the caller's transaction together with the recipients' outbox ids, so a
crash resumes without duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, func, select

from storage.broadcasts_audience import _preferred
from storage.models import Contact, OutboxMessage
from storage.staff_models import Broadcast, BroadcastRecipient

FAILED = ("failed", "undelivered", "needs_template")


def _outbox_insert(session: Session) -> Any:
    """INSERT … ON CONFLICT DO NOTHING into the outbox (executemany-friendly, no RETURNING)."""
    builder = (
        postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )
    return builder(OutboxMessage.__table__).on_conflict_do_nothing()  # type: ignore[attr-defined]


def message_key(broadcast_id: int, contact_id: int, attempt: int = 0) -> str:
    """The outbox idempotency key of a recipient's message (its n-th retry for attempt n)."""
    base = f"bc:{broadcast_id}:{contact_id}"
    return base if attempt == 0 else f"{base}:r{attempt}"


def _queued_per_channel(session: Session, broadcast_id: int) -> dict[str, int]:
    """How many recipients of a broadcast were queued so far, per channel."""
    stmt = (
        select(BroadcastRecipient.channel, func.count())
        .where(
            BroadcastRecipient.broadcast_id == broadcast_id,
            col(BroadcastRecipient.queued_at).is_not(None),
        )
        .group_by(BroadcastRecipient.channel)
    )
    return {str(c): int(n) for c, n in session.exec(stmt)}


def _write_batch(
    session: Session,
    rows: list[dict[str, Any]],
    recipients: list[tuple[int, str, str | None, str | None, int]],
    now: datetime,
) -> int:
    """Insert outbox rows (ignoring keys already there) and link each recipient to its row."""
    if not rows:
        return 0
    session.execute(_outbox_insert(session), rows)
    keys = [r["idempotency_key"] for r in rows]
    ids: dict[str, int] = {
        str(key): int(message_id)
        for key, message_id in session.execute(
            sa_select(col(OutboxMessage.idempotency_key), col(OutboxMessage.id)).where(
                col(OutboxMessage.idempotency_key).in_(keys)
            )
        )
    }
    table = BroadcastRecipient.__table__  # type: ignore[attr-defined]
    session.execute(
        sa_update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            outbox_id=bindparam("b_outbox"),
            attempt=bindparam("b_attempt"),
            urn=bindparam("b_urn"),
            channel=bindparam("b_channel"),
            queued_at=now,
        ),
        [
            {
                "b_id": rid,
                "b_outbox": ids[key],
                "b_attempt": attempt,
                "b_urn": urn,
                "b_channel": channel,
            }
            for (rid, key, urn, channel, attempt) in recipients
        ],
    )
    return len(rows)


def _outbox_row(
    *,
    key: str,
    recipient: BroadcastRecipient,
    urn: str,
    channel: str,
    body: dict[str, Any],
    now: datetime,
    at: datetime,
) -> dict[str, Any]:
    """The values of one broadcast outbox row."""
    return {
        "idempotency_key": key,
        "urn": urn,
        "channel": channel,
        "body": body,
        "contact_id": recipient.contact_id,
        "kind": "broadcast",
        "language": recipient.language,
        "status": "pending",
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        "next_attempt_at": at,
    }


@dataclass
class _Queue:
    """A broadcast's outbox rows to insert and the recipients they go to."""

    broadcast_id: int
    base_language: str
    bodies: dict[str, dict[str, Any]]
    now: datetime
    rows: list[dict[str, Any]] = field(default_factory=list)
    links: list[tuple[int, str, str | None, str | None, int]] = field(default_factory=list)

    def add(
        self, recipient: BroadcastRecipient, *, urn: str, channel: str, attempt: int, at: datetime
    ) -> None:
        """Add a recipient's message (in their language, else the broadcast's), due at `at`."""
        key = message_key(self.broadcast_id, recipient.contact_id, attempt)
        body = self.bodies.get(recipient.language) or self.bodies[self.base_language]
        self.rows.append(
            _outbox_row(
                key=key,
                recipient=recipient,
                urn=urn,
                channel=channel,
                body=body,
                now=self.now,
                at=at,
            )
        )
        self.links.append((recipient.id or 0, key, urn, channel, attempt))

    def write(self, session: Session, size: int = 500) -> int:
        """Insert the rows and link the recipients, `size` at a time; return how many."""
        return sum(
            _write_batch(session, self.rows[i : i + size], self.links[i : i + size], self.now)
            for i in range(0, len(self.rows), size)
        )


def queue_batch(
    *,
    session: Session,
    broadcast: Broadcast,
    bodies: dict[str, dict[str, Any]],
    now: datetime,
    rates: dict[str, float] | None = None,
    limit: int = 500,
    lead: float = 2.0,
) -> int:
    """Queue the next batch of unqueued recipients; return how many (0 when all are queued).

    With `rates` (messages a second per channel) each channel's messages are spread from the
    start of the sending at that rate (the first `lead` seconds' worth due at once, so the
    sender never waits for the next one to fall due), and people chatting with the bot
    meanwhile are not kept waiting behind the whole broadcast. The senders still enforce the
    limits themselves.
    """
    assert broadcast.id is not None
    stmt = (
        select(BroadcastRecipient)
        .where(
            BroadcastRecipient.broadcast_id == broadcast.id,
            col(BroadcastRecipient.excluded).is_(None),
            col(BroadcastRecipient.outbox_id).is_(None),
        )
        .order_by(col(BroadcastRecipient.id))
        .limit(limit)
    )
    batch = list(session.exec(stmt))
    if not batch:
        return 0
    done = _queued_per_channel(session, broadcast.id) if rates else {}
    start = broadcast.started_at or now
    queue = _Queue(broadcast.id, broadcast.base_language, bodies, now)
    for recipient in batch:  # queued recipients always have an address (`excluded` if not)
        channel, urn = recipient.channel or "", recipient.urn or ""
        rate = (rates or {}).get(channel, 0.0)
        at = now
        if rate > 0:
            index = done.get(channel, 0)
            done[channel] = index + 1
            at = max(now, start + timedelta(seconds=max(0.0, index - lead * rate) / rate))
        queue.add(recipient, urn=urn, channel=channel, attempt=0, at=at)
    return queue.write(session, size=limit)


def retry_failed(
    *,
    session: Session,
    broadcast: Broadcast,
    bodies: dict[str, dict[str, Any]],
    now: datetime,
    rates: dict[str, float] | None = None,
) -> tuple[int, dict[str, int]]:
    """Queue again the recipients whose message failed; return (queued, skipped by reason).

    Contacts opted out, unreachable or without an address since are skipped. Each retry gets
    its own key (`…:r<n>`), so retrying twice at once still queues one message.
    """
    assert broadcast.id is not None
    stmt = (
        select(BroadcastRecipient, Contact)
        .join(OutboxMessage, col(OutboxMessage.id) == col(BroadcastRecipient.outbox_id))
        .join(Contact, col(Contact.id) == col(BroadcastRecipient.contact_id))
        .where(
            BroadcastRecipient.broadcast_id == broadcast.id,
            col(OutboxMessage.status).in_(FAILED),
        )
        .order_by(col(BroadcastRecipient.id))
    )
    queue = _Queue(broadcast.id, broadcast.base_language, bodies, now)
    skipped: dict[str, int] = {}
    counts: dict[str, int] = {}
    urn_of = _preferred("urn")
    for recipient, contact in session.exec(stmt).all():
        reason = None
        if contact.opted_out:
            reason = "opted_out"
        elif contact.unreachable:
            reason = "unreachable"
        urn = session.execute(select(urn_of).where(col(Contact.id) == contact.id)).scalar()
        if reason is None and urn is None:
            reason = "no_channel"
        if reason is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        assert isinstance(urn, str)
        channel = urn.partition(":")[0]
        rate = (rates or {}).get(channel, 0.0)
        index = counts.get(channel, 0)
        counts[channel] = index + 1
        at = now + timedelta(seconds=index / rate) if rate > 0 else now
        queue.add(recipient, urn=urn, channel=channel, attempt=recipient.attempt + 1, at=at)
    return queue.write(session), skipped


def _update_queued(session: Session, broadcast_id: int, *where: Any, **values: Any) -> int:
    """Update a broadcast's queued outbox messages that match `where`; return how many."""
    queued = select(BroadcastRecipient.outbox_id).where(
        BroadcastRecipient.broadcast_id == broadcast_id,
        col(BroadcastRecipient.outbox_id).is_not(None),
    )
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    result = session.execute(
        sa_update(table).where(table.c.id.in_(queued.scalar_subquery()), *where).values(**values)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def cancel_pending(*, session: Session, broadcast_id: int, now: datetime) -> int:
    """Cancel a broadcast's messages not yet handed to a sender; return how many."""
    return _update_queued(
        session,
        broadcast_id,
        col(OutboxMessage.status) == "pending",
        status="cancelled",
        updated_at=now,
        error_code="cancelled",
    )


def release_in_flight(*, session: Session, broadcast_id: int, channel: str, now: datetime) -> int:
    """Make a broadcast's leased (`sending`) messages on a channel due again; return how many.

    Only for a channel this process alone drains (the CLI's console delivery): the messages
    were in flight when a previous run stopped, so each may have been sent once already.
    """
    return _update_queued(
        session,
        broadcast_id,
        col(OutboxMessage.status) == "sending",
        col(OutboxMessage.channel) == channel,
        status="pending",
        next_attempt_at=now,
        updated_at=now,
    )
