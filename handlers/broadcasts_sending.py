"""Sending broadcasts (the sweep, "send now" and the CLI): start, queue in batches, progress.

Starting materialises the recipients (unique per broadcast); queueing writes their outbox rows
batch by batch; `advance` tells the staff member who sent it from chat how far it got and
closes it when every message has an outcome.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlmodel import Session

from handlers.broadcasts_segments import resolve
from handlers.broadcasts_stats import stats_line
from handlers.i18n import t
from handlers.messages import Outgoing
from handlers.notify import queue_for_contact
from storage import broadcasts as db
from storage import contacts
from storage.staff_models import Broadcast

logger = logging.getLogger(__name__)

DEFAULT_RATES = {"telegram": 30.0, "whatsapp": 80.0}
PROGRESS_STEPS = (25, 50, 75)
INLINE_LIMIT = 1000  # "send now" queues this many recipients at once; the sweep does bigger ones


def bodies(broadcast: Broadcast) -> dict[str, dict[str, Any]]:
    """The outbox body of the broadcast's message in each of its languages."""
    meta = {"broadcast_id": broadcast.id, "title": broadcast.title}
    return {
        lang: Outgoing(text=text, kind="broadcast", meta=meta).to_body()
        for lang, text in broadcast.texts.items()
    }


def start(*, session: Session, broadcast: Broadcast, now: datetime) -> tuple[int, int]:
    """Begin sending: evaluate the segment and materialise the recipients (idempotent)."""
    resolved = resolve(session=session, spec=broadcast.segment)
    if broadcast.status in ("draft", "scheduled"):
        db.save_broadcast(
            session=session,
            broadcast=broadcast,
            now=now,
            status="sending",
            started_at=broadcast.started_at or now,
        )
    total, excluded = db.materialise(
        session=session, broadcast=broadcast, audience=resolved.audience, now=now
    )
    logger.info(
        "broadcast started broadcast=%s recipients=%d excluded=%d", broadcast.id, total, excluded
    )
    return total, excluded


def start_due(*, session: Session, now: datetime) -> list[int]:
    """Start every scheduled broadcast whose time has come; return their ids."""
    started: list[int] = []
    for broadcast in db.due_broadcasts(session=session, now=now):
        start(session=session, broadcast=broadcast, now=now)
        started.append(broadcast.id or 0)
    return started


def start_now(*, session: Session, broadcast: Broadcast, now: datetime) -> bool:
    """Start a broadcast due now; queue it whole when small (else the sweep queues it)."""
    total, excluded = start(session=session, broadcast=broadcast, now=now)
    if total - excluded > INLINE_LIMIT:
        return False
    assert broadcast.id is not None
    while queue_next(session=session, broadcast_id=broadcast.id, now=now):
        pass
    advance(session=session, broadcast_id=broadcast.id, now=now)
    return True


def queue_next(
    *,
    session: Session,
    broadcast_id: int,
    now: datetime,
    rates: dict[str, float] | None = None,
    limit: int = 500,
) -> int:
    """Queue one more batch of a sending broadcast's messages; 0 when none are left."""
    broadcast = db.get_broadcast(session=session, broadcast_id=broadcast_id)
    if broadcast is None or broadcast.status != "sending":
        return 0
    queued = db.queue_batch(
        session=session,
        broadcast=broadcast,
        bodies=bodies(broadcast),
        now=now,
        rates=DEFAULT_RATES if rates is None else rates,
        limit=limit,
    )
    if not queued and broadcast.queued_at is None:
        db.save_broadcast(session=session, broadcast=broadcast, now=now, queued_at=now)
    return queued


def advance(*, session: Session, broadcast_id: int, now: datetime) -> db.BroadcastStats | None:
    """Report progress to the staff member who sent it and close a finished broadcast."""
    broadcast = db.get_broadcast(session=session, broadcast_id=broadcast_id)
    if broadcast is None or broadcast.status != "sending":
        return None
    found = db.stats(session=session, broadcast_id=broadcast_id)
    total = found.to_send
    share = 100 if total == 0 else int(found.processed * 100 / total)
    if found.waiting == 0 and db.is_queued(session=session, broadcast_id=broadcast_id):
        _tell(session, broadcast, now, "done", t_key="staff_bc_done", stats=found)
        db.save_broadcast(
            session=session,
            broadcast=broadcast,
            now=now,
            status="done",
            finished_at=now,
            progress_reported=100,
        )
        logger.info("broadcast done broadcast=%s", broadcast.id)
        return found
    reported = broadcast.progress_reported
    if reported == 0:
        _tell(session, broadcast, now, "start", t_key="staff_bc_started", stats=found)
        reported = 1
    reached = [step for step in PROGRESS_STEPS if share >= step > reported]
    if reached:
        reported = reached[-1]
        _tell(session, broadcast, now, str(reported), t_key="staff_bc_progress", stats=found)
    if reported != broadcast.progress_reported:
        db.save_broadcast(
            session=session, broadcast=broadcast, now=now, progress_reported=reported
        )
    return found


def _tell(
    session: Session,
    broadcast: Broadcast,
    now: datetime,
    step: str,
    *,
    t_key: str,
    stats: db.BroadcastStats,
) -> None:
    """Queue a progress message for the staff member who sent the broadcast from chat."""
    if broadcast.notify_contact_id is None:
        return
    contact = contacts.get_contact(session=session, contact_id=broadcast.notify_contact_id)
    if contact is None:
        return
    lang = contact.language or "en"
    summary = stats_line(stats, lang)
    total = stats.to_send
    share = 100 if total == 0 else int(stats.processed * 100 / total)
    body = t(
        t_key,
        lang,
        id=broadcast.id,
        title=broadcast.title,
        done=stats.processed,
        total=total,
        share=share,
        summary=summary,
    )
    queue_for_contact(
        session=session,
        contact=contact,
        message=Outgoing(text=body, kind="staff"),
        kind="staff",
        key=f"bcp:{broadcast.id}:{broadcast.retries}:{step}",
        now=now,
    )
