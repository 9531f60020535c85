"""Cancelling a broadcast and retrying its failed messages (chat and CLI, audited)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from handlers.broadcasts_compose import change_status, record_action, wrong_status
from handlers.broadcasts_sending import DEFAULT_RATES, PROGRESS_STEPS, bodies
from storage import broadcasts as db
from storage.staff_models import Broadcast

logger = logging.getLogger(__name__)


def cancel(
    *, session: Session, broadcast: Broadcast, now: datetime, actor: int | None, via: str
) -> int:
    """Cancel a draft, a scheduled or a sending broadcast; return the messages withdrawn."""
    if broadcast.status in ("done", "cancelled"):
        raise wrong_status(broadcast)
    withdrawn = 0
    if broadcast.status == "sending":
        withdrawn = db.cancel_pending(session=session, broadcast_id=broadcast.id or 0, now=now)
    change_status(
        session=session, broadcast=broadcast, now=now, actor=actor, via=via, action="cancelled",
        fields={"status": "cancelled", "cancelled_at": now}, withdrawn=withdrawn,
    )  # fmt: skip
    logger.info("broadcast cancelled broadcast=%s withdrawn=%d", broadcast.id, withdrawn)
    return withdrawn


def retry(
    *,
    session: Session,
    broadcast: Broadcast,
    now: datetime,
    actor: int | None,
    via: str,
    rates: dict[str, float] | None = None,
) -> tuple[int, dict[str, int]]:
    """Queue the failed messages again; return (queued, skipped by reason)."""
    if broadcast.status not in ("sending", "done"):
        raise wrong_status(broadcast)
    queued, skipped = db.retry_failed(
        session=session,
        broadcast=broadcast,
        bodies=bodies(broadcast),
        now=now,
        rates=DEFAULT_RATES if rates is None else rates,
    )
    if queued:
        db.save_broadcast(
            session=session,
            broadcast=broadcast,
            now=now,
            status="sending",
            finished_at=None,
            retries=broadcast.retries + 1,
            progress_reported=max(PROGRESS_STEPS),  # only the end is told again
        )
    record_action(
        session=session, broadcast=broadcast, action="retry", now=now, actor=actor, via=via,
        queued=queued, skipped=skipped,
    )  # fmt: skip
    logger.info("broadcast retry broadcast=%s queued=%d", broadcast.id, queued)
    return queued, skipped
