"""Donation sweeps: delivery updates for shipment events no city was told of yet."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from handlers import donations_shipping
from scheduler.setup import Clock, Sweep
from storage import donations as store
from storage.db import session_scope

logger = logging.getLogger(__name__)


def notify_pending(*, engine: Engine, clock: Clock, batch: int = 200) -> int:
    """Queue the delivery updates of events recorded without them (idempotent by event key)."""
    total = 0
    while True:
        with session_scope(engine) as session:
            events = store.unnotified_events(session=session, limit=batch)
            for event in events:
                donations_shipping.notify_event(session, event, clock.now())
        total += len(events)
        if len(events) < batch:
            break
    if total:
        logger.info("delivery updates swept events=%d", total)
    return total


def sweeps(*, engine: Engine, clock: Clock) -> list[Sweep]:
    """The periodic donation jobs."""

    def run() -> int:
        """Run the delivery-update sweep now."""
        return notify_pending(engine=engine, clock=clock)

    return [Sweep(id="donation_updates", seconds=60.0, run=run)]
