"""Build the APScheduler 3 AsyncIOScheduler with our sweeps (started in the ASGI lifespan)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import Engine

from scheduler.jobs import expire_runs_sweep, redact_erased_sweep


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
    scheduler.add_job(
        redact_erased_sweep,
        "interval",
        seconds=sweep_seconds,
        id="redact_erased",
        replace_existing=True,
        kwargs={"engine": engine},
    )
    for module in _feature_modules():
        for sweep in module.sweeps(engine=engine, clock=clock):
            scheduler.add_job(
                sweep.run, "interval", seconds=sweep.seconds, id=sweep.id, replace_existing=True
            )
    return scheduler


FEATURE_SWEEPS = ("scheduler.donations", "scheduler.webinars", "scheduler.broadcasts")


@dataclass(frozen=True, slots=True)
class Sweep:
    """A periodic, idempotent job: `run()` re-reads what is due from the database."""

    id: str
    seconds: float
    run: Callable[[], object]


def _feature_modules() -> list[Any]:
    """Feature sweep modules that exist; each has `sweeps(*, engine, clock) -> list[Sweep]`."""
    found = []
    for name in FEATURE_SWEEPS:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return found
