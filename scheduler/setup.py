"""Build the APScheduler 3 AsyncIOScheduler with our sweeps (started in the ASGI lifespan)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import Engine

from scheduler.jobs import expire_runs_sweep


class Clock(Protocol):
    """What the sweeps need of a clock."""

    def now(self) -> datetime:
        """Return the current time (UTC)."""


def build_scheduler(
    *, engine: Engine, clock: Clock, sweep_seconds: float = 60.0
) -> AsyncIOScheduler:
    """Create (not start) the scheduler; every job is idempotent, so a missed tick is harmless."""
    scheduler = AsyncIOScheduler(
        timezone="UTC",
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )

    def expire() -> None:
        """Run the expiry sweep now."""
        expire_runs_sweep(engine=engine, now_iso=clock.now().isoformat())

    scheduler.add_job(
        expire, "interval", seconds=sweep_seconds, id="expire_runs", replace_existing=True
    )
    return scheduler
