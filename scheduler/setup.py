"""Build the APScheduler 3 AsyncIOScheduler with our sweeps (started in the ASGI lifespan)."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from handlers.features import import_present
from scheduler.jobs import expire_runs_sweep, redact_erased_sweep


class Clock(Protocol):
    """What the sweeps need of a clock."""

    def now(self) -> datetime:
        """Return the current time (UTC)."""


logger = logging.getLogger(__name__)

# (sweep id, seconds it started late, seconds it ran, whether it succeeded)
SweepObserver = Callable[[str, float, float, bool], None]


def _wall_now() -> datetime:
    """The real time: lag is measured against the scheduler's clock, not the test clock."""
    return datetime.now(UTC)


class TimedSweep:
    """A sweep as a job that tells its observer how late each run started and how long it ran."""

    def __init__(
        self,
        sweep_id: str,
        run: Callable[[], object],
        trigger: IntervalTrigger,
        *,
        wall: Callable[[], datetime] = _wall_now,
    ) -> None:
        """Wrap `run`, fired by `trigger` (an interval trigger: start_date + n × interval)."""
        self.sweep_id = sweep_id
        self.run = run
        self.trigger = trigger
        self.wall = wall
        self.observer: SweepObserver | None = None
        self._next_due: datetime | None = None

    def _grid(self, started: datetime) -> datetime | None:
        """The trigger's latest fire time at or before `started` (None before the first)."""
        start: datetime = self.trigger.start_date
        interval: timedelta = self.trigger.interval
        if started < start:
            return None
        latest: datetime = start + interval * ((started - start) // interval)
        return latest

    def scheduled(self, started: datetime) -> datetime:
        """The fire time this run answers: the earliest one not run yet, at or before `started`."""
        latest = self._grid(started)
        if latest is None:
            return started  # run by hand before its first fire time: not late
        if self._next_due is not None and self._next_due < latest:
            return self._next_due  # runs were missed (coalesced): late since the first of them
        return latest

    def __call__(self) -> object:
        """Run the sweep, then report its lag and duration."""
        started = self.wall()
        scheduled = self.scheduled(started)
        latest = self._grid(started)
        if latest is not None:
            self._next_due = latest + self.trigger.interval
        began, ok = time.perf_counter(), False
        try:
            result = self.run()
            ok = True
            return result
        finally:
            self._report(max(0.0, (started - scheduled).total_seconds()), began, ok)

    def _report(self, lag: float, began: float, ok: bool) -> None:
        """Tell the observer; an observer failure never fails the sweep."""
        observer = self.observer
        if observer is None:
            return
        try:
            observer(self.sweep_id, lag, time.perf_counter() - began, ok)
        except Exception:
            logger.exception("sweep observer failed sweep=%s", self.sweep_id)


def add_sweep(
    scheduler: AsyncIOScheduler, sweep_id: str, seconds: float, run: Callable[[], object]
) -> TimedSweep:
    """Schedule `run` every `seconds`, timed."""
    trigger = IntervalTrigger(seconds=seconds, timezone=UTC)
    timed = TimedSweep(sweep_id, run, trigger)
    scheduler.add_job(timed, trigger, id=sweep_id, replace_existing=True)
    return timed


def timed_sweeps(scheduler: AsyncIOScheduler) -> list[TimedSweep]:
    """The timed sweeps of a scheduler (started or not)."""
    return [job.func for job in scheduler.get_jobs() if isinstance(job.func, TimedSweep)]


def observe_sweeps(scheduler: AsyncIOScheduler, observer: SweepObserver | None) -> None:
    """Report every sweep run of this scheduler to `observer` (replacing any earlier one)."""
    for timed in timed_sweeps(scheduler):
        timed.observer = observer


def build_scheduler(
    *,
    engine: Engine,
    clock: Clock,
    sweep_seconds: float = 60.0,
    observer: SweepObserver | None = None,
) -> AsyncIOScheduler:
    """Create (not start) the scheduler; every job is idempotent, so a missed tick is harmless."""
    scheduler = AsyncIOScheduler(
        timezone="UTC",
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )

    def expire() -> None:
        """Run the expiry sweep now."""
        expire_runs_sweep(engine=engine, now_iso=clock.now().isoformat())

    add_sweep(scheduler, "expire_runs", sweep_seconds, expire)
    add_sweep(
        scheduler,
        "redact_erased",
        sweep_seconds,
        functools.partial(redact_erased_sweep, engine=engine),
    )
    for module in _feature_modules():
        for sweep in module.sweeps(engine=engine, clock=clock):
            add_sweep(scheduler, sweep.id, sweep.seconds, sweep.run)
    observe_sweeps(scheduler, observer)
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
    return import_present(FEATURE_SWEEPS)
