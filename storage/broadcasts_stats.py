"""Broadcast reporting: where recipients stand, the recipient list, whether all are queued."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, col, func, select

from storage.broadcasts_queue import FAILED
from storage.models import OutboxMessage
from storage.staff_models import BroadcastRecipient

WAITING = ("pending", "sending")


@dataclass(slots=True)
class BroadcastStats:
    """Where a broadcast's recipients stand (outbox statuses as stored)."""

    recipients: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    unqueued: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_channel: dict[str, int] = field(default_factory=dict)
    reasons: list[tuple[str, str, str, int]] = field(default_factory=list)

    @property
    def to_send(self) -> int:
        """Recipients not excluded."""
        return self.recipients - sum(self.excluded.values())

    @property
    def waiting(self) -> int:
        """Messages not yet attempted to the end (unqueued, pending or in flight)."""
        return self.unqueued + sum(self.by_status.get(s, 0) for s in WAITING)

    @property
    def processed(self) -> int:
        """Messages with an outcome (sent, delivered, read, failed, cancelled …)."""
        return self.to_send - self.waiting


def stats(*, session: Session, broadcast_id: int) -> BroadcastStats:
    """Count a broadcast's recipients by exclusion, outbox status, channel and failure reason."""
    found = BroadcastStats()
    r = BroadcastRecipient
    for excluded, queued, n in session.execute(
        select(r.excluded, col(r.outbox_id).is_not(None), func.count())
        .where(r.broadcast_id == broadcast_id)
        .group_by(r.excluded, col(r.outbox_id).is_not(None))
    ):
        found.recipients += int(n)
        if excluded is not None:
            found.excluded[str(excluded)] = found.excluded.get(str(excluded), 0) + int(n)
        elif not queued:
            found.unqueued += int(n)
    joined = (
        select(OutboxMessage.status, OutboxMessage.channel, func.count())
        .join(r, col(r.outbox_id) == col(OutboxMessage.id))
        .where(r.broadcast_id == broadcast_id)
        .group_by(OutboxMessage.status, OutboxMessage.channel)
    )
    for status, channel, n in session.execute(joined):
        found.by_status[str(status)] = found.by_status.get(str(status), 0) + int(n)
        found.by_channel[str(channel)] = found.by_channel.get(str(channel), 0) + int(n)
    reasons = (
        select(
            OutboxMessage.status,
            func.coalesce(OutboxMessage.error_code, ""),
            func.coalesce(OutboxMessage.error_reason, ""),
            func.count(),
        )
        .join(r, col(r.outbox_id) == col(OutboxMessage.id))
        .where(r.broadcast_id == broadcast_id, col(OutboxMessage.status).in_(FAILED))
        .group_by(
            col(OutboxMessage.status),
            col(OutboxMessage.error_code),
            col(OutboxMessage.error_reason),
        )
        .order_by(func.count().desc())
    )
    found.reasons = [
        (str(s), str(c), str(why), int(n)) for s, c, why, n in session.execute(reasons)
    ]
    return found


def recipients_of(*, session: Session, broadcast_id: int) -> list[BroadcastRecipient]:
    """Return a broadcast's recipients, in order."""
    stmt = (
        select(BroadcastRecipient)
        .where(BroadcastRecipient.broadcast_id == broadcast_id)
        .order_by(col(BroadcastRecipient.id))
    )
    return list(session.exec(stmt))


def is_queued(*, session: Session, broadcast_id: int) -> bool:
    """Say whether every recipient to send to has its outbox row."""
    stmt = select(func.count()).where(
        BroadcastRecipient.broadcast_id == broadcast_id,
        col(BroadcastRecipient.excluded).is_(None),
        col(BroadcastRecipient.outbox_id).is_(None),
    )
    return int(session.exec(stmt).one()) == 0
