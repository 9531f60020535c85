"""The broadcast sweep: start due broadcasts, queue their messages in batches, report progress.

Every step re-reads the database and is idempotent: recipients are unique per broadcast, outbox
rows per key, so a crash, a restart or a second scheduler never sends a message twice and
never loses one. Each batch commits on its own, so a crash mid-queueing resumes where it was.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Engine

from handlers import broadcasts_sending
from scheduler.setup import Sweep
from storage import broadcasts as db
from storage.db import session_scope

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0
BATCH = 500


class Clock(Protocol):
    """What the sweep needs of a clock."""

    def now(self) -> datetime:
        """Return the current time (UTC)."""


def channel_rates() -> dict[str, float]:
    """Messages a second per channel to spread broadcasts at (the senders' limits)."""
    rates = dict(broadcasts_sending.DEFAULT_RATES)
    for channel, variable in (
        ("telegram", "TELEGRAM_RATE_PER_SECOND"),
        ("whatsapp", "WHATSAPP_RATE_PER_SECOND"),
    ):
        value = os.environ.get(variable)
        if value:
            try:
                rates[channel] = float(value)
            except ValueError:
                logger.warning("ignoring %s: not a number", variable)
    return rates


def run_broadcasts(
    *,
    engine: Engine,
    now: datetime,
    rates: dict[str, float] | None = None,
    batch: int = BATCH,
    max_batches: int | None = None,
) -> int:
    """Start due broadcasts, queue what is left to queue and report progress; return queued."""
    with session_scope(engine) as session:
        broadcasts_sending.start_due(session=session, now=now)
    with session_scope(engine) as session:
        sending = [b.id or 0 for b in db.sending_broadcasts(session=session)]
    total = 0
    for broadcast_id in sending:
        batches = 0
        while max_batches is None or batches < max_batches:
            with session_scope(engine) as session:
                queued = broadcasts_sending.queue_next(
                    session=session,
                    broadcast_id=broadcast_id,
                    now=now,
                    rates=rates,
                    limit=batch,
                )
            if not queued:
                break
            total += queued
            batches += 1
        with session_scope(engine) as session:
            broadcasts_sending.advance(session=session, broadcast_id=broadcast_id, now=now)
    if total:
        logger.info("broadcast messages queued=%d", total)
    return total


def sweeps(*, engine: Engine, clock: Clock) -> list[Sweep]:
    """The scheduler's broadcast sweep (every few seconds, so "send now" starts promptly)."""
    rates = channel_rates()

    def run() -> None:
        """Run the broadcast sweep now."""
        run_broadcasts(engine=engine, now=clock.now(), rates=rates)

    return [Sweep(id="broadcasts", seconds=SWEEP_SECONDS, run=run)]
