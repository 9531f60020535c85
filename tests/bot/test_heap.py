"""The runtime loads what the first messages need at start, then freezes that heap."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest
from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from handlers import language
from handlers.definitions import catalog
from handlers.places import Gazetteer, Place
from tests.support import bare_runtime


class RecordingPlaces:
    """The real gazetteer, recording each name it is asked to resolve (or failing)."""

    def __init__(self, places: Gazetteer, *, fail: bool = False) -> None:
        """Wrap `places`; with `fail`, every lookup raises."""
        self.places, self.fail = places, fail
        self.asked: list[str] = []

    def resolve(self, text: str) -> list[Place]:
        """Record the name, then resolve it (or fail)."""
        self.asked.append(text)
        if self.fail:
            raise RuntimeError("gazetteer unavailable")
        return self.places.resolve(text)

    def by_id(self, geonameid: int) -> Place | None:
        """A city by id."""
        return self.places.by_id(geonameid)

    def country(self, text: str) -> str | None:
        """A typed country's code."""
        return self.places.country(text)

    def country_timezone(self, code: str) -> str | None:
        """A country's main zone."""
        return self.places.country_timezone(code)


def test_start_loads_ahead_then_freezes_and_stop_thaws(
    engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """After start: places, definitions and language models loaded, heap frozen; stop thaws."""
    recording = RecordingPlaces(places)
    runtime = bare_runtime(engine, clock, recording)
    catalog.cache_clear()
    language._factory.cache_clear()  # noqa: SLF001 - the cache is what warm-up fills
    assert gc.get_freeze_count() == 0

    async def scenario() -> tuple[int, int]:
        """Start, wait for the warm-up, note the frozen count; stop."""
        await runtime.start()
        try:
            await runtime.warmed()
            kept = object.__new__(RecordingPlaces)  # made after the freeze: still collected
            return gc.get_freeze_count(), sum(o is kept for o in gc.get_objects())
        finally:
            await runtime.stop()

    frozen, young = asyncio.run(scenario())
    assert frozen > 10_000  # at least the definitions, strings and language models
    assert young == 1
    assert recording.asked == ["koidu"]
    assert catalog.cache_info().currsize == 1
    assert language._factory.cache_info().currsize == 1  # noqa: SLF001
    assert gc.get_freeze_count() == 0


def test_a_failed_warm_up_is_logged_and_the_runtime_still_answers(
    engine: Engine, clock: FixedClock, places: Gazetteer, caplog: pytest.LogCaptureFixture
) -> None:
    """The gazetteer failing at start costs a log line; messages are still handled."""
    from handlers.messages import Inbound

    runtime = bare_runtime(engine, clock, RecordingPlaces(places, fail=True))

    async def scenario() -> bool:
        """Start, wait for the warm-up, accept one message; stop."""
        await runtime.start()
        try:
            await runtime.warmed()
            inbound = Inbound(urn="console:a", text="help", received_at=clock.now())
            return await runtime.accept(inbound, "m1")
        finally:
            await runtime.stop()

    with caplog.at_level(logging.ERROR, logger="bot.runtime"):
        assert asyncio.run(scenario()) is True
    assert [r.getMessage() for r in caplog.records] == ["warm-up failed"]
    assert gc.get_freeze_count() == 0
