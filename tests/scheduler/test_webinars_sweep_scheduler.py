"""The serve scheduler (APScheduler) runs the webinar sweep."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from scheduler.webinars import SWEEP_ID
from tests.scheduler.webinar_cases import (
    START,
    T0,
    make_contact,
    make_webinar,
    register,
    sent,
)
from tests.scheduler.webinar_cases import t0 as t0  # a fixture


def test_the_serve_scheduler_runs_the_webinar_sweep(
    engine: Engine, t0: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The serve scheduler runs the sweep, which queues what is due."""
    from scheduler.setup import build_scheduler

    monkeypatch.setenv("WEBINAR_SWEEP_SECONDS", "0.05")
    webinar = make_webinar(engine, t0.now())
    register(engine, webinar, make_contact(engine, "console:s", T0, tz="UTC"), t0.now())
    t0.advance(START - timedelta(hours=24) - t0.now())

    async def serve_briefly() -> None:
        """Start the scheduler in the running loop until something is queued."""
        scheduler = build_scheduler(engine=engine, clock=t0)
        job = scheduler.get_job(SWEEP_ID)
        assert job is not None
        scheduler.start()
        for _ in range(100):
            await asyncio.sleep(0.02)
            if sent(engine):
                break
        scheduler.shutdown(wait=False)

    asyncio.run(serve_briefly())
    assert len(sent(engine)) == 1
