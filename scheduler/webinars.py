"""The webinar sweep: queues due reminders, survey invitations and notices (idempotent).

APScheduler only says when to look; the `webinar_reminder` table says what is due. Each batch
is claimed and turned into outbox rows in one transaction, so a crash, a restart or a second
scheduler never sends a message twice or loses one: a row left `scheduled` is picked up by
the next sweep of any process, late if need be (a reminder only until the webinar starts).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from sqlalchemy.engine import Engine

from handlers.webinars_sweep import SweepResult, deliver_due
from scheduler.setup import Clock, Sweep
from storage.db import session_scope

logger = logging.getLogger(__name__)

SWEEP_ID = "webinar_reminders"
DEFAULT_SECONDS = 30.0
BATCH = 500


def sweep_seconds() -> float:
    """The sweep interval: WEBINAR_SWEEP_SECONDS, 30 s by default (reminders go this late)."""
    raw = os.environ.get("WEBINAR_SWEEP_SECONDS", "")
    try:
        value = float(raw) if raw else DEFAULT_SECONDS
    except ValueError:
        logger.warning("WEBINAR_SWEEP_SECONDS is not a number; using %s", DEFAULT_SECONDS)
        return DEFAULT_SECONDS
    return value if value > 0 else DEFAULT_SECONDS


def run_sweep(
    *, engine: Engine, clock: Clock, batch: int = BATCH, horizon: float = 0.0
) -> SweepResult:
    """Queue what is due now (and reminders due within `horizon` s) in batches; return totals."""
    ahead = timedelta(seconds=horizon)
    total = SweepResult()
    while True:
        now = clock.now()
        try:
            with session_scope(engine) as session:
                result = deliver_due(session=session, now=now, limit=batch, horizon=ahead)
        except Exception:  # one bad row: redo the batch row by row, skipping only that one
            logger.exception("webinar sweep batch failed; redoing it row by row")
            with session_scope(engine) as session:
                result = deliver_due(
                    session=session, now=now, limit=batch, careful=True, horizon=ahead
                )
        for name in ("claimed", "queued", "skipped", "cancelled", "deferred"):
            setattr(total, name, getattr(total, name) + getattr(result, name))
        if result.claimed < batch:
            break
    if total.claimed:
        logger.info(
            "webinar sweep queued=%d skipped=%d cancelled=%d deferred=%d",
            total.queued,
            total.skipped,
            total.cancelled,
            total.deferred,
        )
    return total


def sweeps(*, engine: Engine, clock: Clock) -> list[Sweep]:
    """The webinar sweep for scheduler/setup.py."""

    seconds = sweep_seconds()

    def run() -> SweepResult:
        """Run one sweep; reminders due within two intervals are handed over early."""
        return run_sweep(engine=engine, clock=clock, horizon=2 * seconds)

    return [Sweep(id=SWEEP_ID, seconds=seconds, run=run)]
