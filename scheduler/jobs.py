"""Sweeps: idempotent jobs that re-read what is due from the database on every run."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from handlers.runs import expire_due
from storage.db import session_scope

logger = logging.getLogger(__name__)


def expire_runs_sweep(*, engine: Engine, now_iso: str, batch: int = 500) -> int:
    """Expire runs left unanswered past their expiry; return how many (safe to run twice)."""
    from datetime import datetime

    now = datetime.fromisoformat(now_iso)
    total = 0
    while True:
        with session_scope(engine) as session:
            count = expire_due(session=session, now=now, limit=batch)
        total += count
        if count < batch:
            break
    if total:
        logger.info("expired runs=%d", total)
    return total


def redact_erased_sweep(*, engine: Engine) -> int:
    """Blank the body and address of sent messages to forgotten contacts (the last goodbye)."""
    from storage import contacts, outbox

    with session_scope(engine) as session:
        return sum(
            outbox.redact_messages(session=session, contact_id=contact_id)
            for contact_id in contacts.erased_contact_ids(session=session)
        )
