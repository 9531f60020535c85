"""GET /metrics: Prometheus text exposition of counters, queue depth, send latency and sweeps."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from bot.clock import FixedClock
from bot.dispatcher import Job, Sent
from bot.metrics import Histogram, Registry, counter_lines, sweep_recorder
from bot.runtime import build_runtime
from bot.server import create_app, render_metrics
from bot.settings import get_settings
from handlers.messages import Outgoing
from handlers.places import Gazetteer
from scheduler.setup import TimedSweep, build_scheduler
from storage import outbox
from storage.db import session_scope
from tests.bot.test_server import LoopbackChannel
from tests.support import RecordingSender

SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r'(?P<labels>\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})?'
    r" (?P<value>-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|\+Inf|-Inf|NaN)$"
)
SUFFIXES = ("_bucket", "_sum", "_count")


def parse(text: str) -> dict[str, float]:
    """Check the exposition format and return every sample as `name{labels}` → value.

    Each family has one TYPE line, before its samples, which are contiguous.
    """
    assert text.endswith("\n")
    types: dict[str, str] = {}
    samples: dict[str, float] = {}
    finished: set[str] = set()
    current = ""
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ")
            assert family not in types, f"second TYPE for {family}"
            types[family] = kind
            continue
        if line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name = match["name"]
        family = next(
            (name[: -len(s)] for s in SUFFIXES if name.endswith(s) and name[: -len(s)] in types),
            name,
        )
        assert family in types, f"{family} has no TYPE line before it"
        if family != current:
            assert family not in finished, f"{family}'s samples are not together"
            finished.add(current)
            current = family
        key = name + (match["labels"] or "")
        assert key not in samples, f"duplicate sample {key}"
        value = match["value"]
        samples[key] = float("inf") if value == "+Inf" else float(value)
    return samples


def buckets(samples: dict[str, float], family: str, labels: str) -> list[tuple[float, float]]:
    """The (le, count) pairs of one histogram series, checked cumulative and ending at +Inf."""
    pattern = re.compile(re.escape(f"{family}_bucket{{{labels},le=") + r'"([^"]+)"\}')
    found = sorted(
        (float("inf") if m[1] == "+Inf" else float(m[1]), value)
        for key, value in samples.items()
        if (m := pattern.fullmatch(key))
    )
    assert found and found[-1][0] == float("inf")
    counts = [n for _, n in found]
    assert counts == sorted(counts), "buckets must be cumulative"
    assert found[-1][1] == samples[f"{family}_count{{{labels}}}"]
    return found


class SlowSender(RecordingSender):
    """A platform that takes 0.3 s to accept each message."""

    async def send(self, job: Job) -> Sent:
        """Wait, then record."""
        await asyncio.sleep(0.3)
        return await super().send(job)


def test_the_exposition_after_a_round_trip(
    engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """A stored, processed and answered message shows in every family, in valid format."""
    channel = LoopbackChannel()
    channel.sender = SlowSender("loop")
    runtime = build_runtime(
        get_settings(), engine=engine, clock=clock, places=places, channels={"loop": channel}
    )
    channel.runtime = runtime
    with TestClient(create_app(runtime)) as client:
        client.post("/loop", json={"id": 1, "from": "ana", "text": "Hello, good morning all"})
        deadline = time.monotonic() + 30
        while not channel.sender.sent and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # the outcome is recorded right after the send
        response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse(response.text)
    assert samples['citybot_inbound_total{channel="loop",result="stored"}'] == 1
    assert samples['citybot_outbox_messages{channel="loop",status="sent"}'] == 1
    assert samples['citybot_dispatcher_queue_depth{channel="loop"}'] == 0
    assert samples['citybot_dispatcher_queue_depth{channel="console"}'] == 0
    assert samples["citybot_database_up"] == 1
    latency = dict(buckets(samples, "citybot_send_seconds", 'channel="loop"'))
    assert latency[0.25] == 0 and latency[0.5] == 1  # the platform took 0.3 s
    assert 0.3 <= samples['citybot_send_seconds_sum{channel="loop"}'] < 5


def test_queue_depth_counts_due_unsent_messages_per_channel(
    engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """Due pending (or lease-expired sending) messages count; future and sent ones do not."""
    runtime = build_runtime(get_settings(), engine=engine, clock=clock, places=places, channels={})
    now = clock.now()
    plan = [
        ("telegram", now - timedelta(minutes=1)),
        ("telegram", now),
        ("telegram", now + timedelta(hours=1)),
        ("whatsapp", now - timedelta(seconds=5)),
    ]
    with session_scope(engine) as session:
        for n, (channel, due) in enumerate(plan):
            outbox.enqueue(
                session=session,
                idempotency_key=f"q{n}",
                urn=f"{channel}:{n}",
                channel=channel,
                body=Outgoing(text="x").to_body(),
                now=now - timedelta(hours=1),
                not_before=due,
            )
        (sent,) = outbox.claim_due(session=session, channel="whatsapp", now=now)
        outbox.mark_sent(session=session, message_id=sent.id or 0, now=now, provider_id="p")
        outbox.enqueue(
            session=session,
            idempotency_key="q-sent-later",
            urn="whatsapp:9",
            channel="whatsapp",
            body=Outgoing(text="y").to_body(),
            now=now,
        )
    samples = parse(render_metrics(runtime))
    assert samples['citybot_dispatcher_queue_depth{channel="telegram"}'] == 2
    assert samples['citybot_dispatcher_queue_depth{channel="whatsapp"}'] == 1
    assert samples['citybot_dispatcher_queue_depth{channel="console"}'] == 0
    clock.advance(timedelta(hours=2))
    samples = parse(render_metrics(runtime))
    assert samples['citybot_dispatcher_queue_depth{channel="telegram"}'] == 3


def test_sweep_lag_is_measured_against_the_schedule() -> None:
    """On time, late, and late across missed runs (coalesced): the lag is from the first miss."""
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    trigger = IntervalTrigger(seconds=60, start_date=start, timezone=UTC)
    wall = [start]
    seen: list[tuple[str, float, bool]] = []
    calls: list[int] = []

    def run() -> None:
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("sweep failed")

    timed = TimedSweep("expire_runs", run, trigger, wall=lambda: wall[0])
    timed.observer = lambda sweep, lag, _duration, ok: seen.append((sweep, lag, ok))
    for offset in (5, 260, 301):
        wall[0] = start + timedelta(seconds=offset)
        timed()
    wall[0] = start + timedelta(seconds=360)
    with pytest.raises(RuntimeError):
        timed()
    assert seen == [
        ("expire_runs", 5.0, True),
        ("expire_runs", 200.0, True),  # due at +60, ran at +260
        ("expire_runs", 1.0, True),
        ("expire_runs", 0.0, False),
    ]


async def test_the_scheduler_reports_its_sweeps_on_metrics(
    engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """A running scheduler's sweeps show up as lag and duration histograms per sweep."""
    registry = Registry()
    scheduler = build_scheduler(
        engine=engine, clock=clock, sweep_seconds=0.2, observer=sweep_recorder(registry)
    )
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        lag = registry.histogram("citybot_sweep_lag_seconds", "")
        while lag.count("expire_runs") < 2:
            assert time.monotonic() < deadline, "the sweeps did not run"
            await asyncio.sleep(0.05)
    finally:
        scheduler.shutdown(wait=False)
    samples = parse("\n".join(registry.render()) + "\n")
    for sweep in ("expire_runs", "redact_erased"):
        series = buckets(samples, "citybot_sweep_lag_seconds", f'sweep="{sweep}"')
        assert series[-1][1] >= 1
        assert dict(series)[1.0] == series[-1][1]  # none started a second late
        buckets(samples, "citybot_sweep_duration_seconds", f'sweep="{sweep}",result="ok"')


def test_the_app_wires_the_scheduler_into_metrics(
    engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """`create_app` observes the runtime's scheduler: its sweeps appear on /metrics."""
    runtime = build_runtime(
        get_settings(),
        engine=engine,
        clock=clock,
        places=places,
        channels={},
        with_scheduler=False,
    )
    runtime.scheduler = build_scheduler(engine=engine, clock=clock, sweep_seconds=0.2)
    with TestClient(create_app(runtime)) as client:
        deadline = time.monotonic() + 10
        text = ""
        while 'citybot_sweep_lag_seconds_count{sweep="expire_runs"}' not in text:
            assert time.monotonic() < deadline, text
            time.sleep(0.1)
            text = client.get("/metrics").text
    parse(text)


def test_rendering_helpers() -> None:
    """Counters get one TYPE line per family; label values are escaped; histograms add up."""
    lines = counter_lines({'a_total{x="1"}': 2, 'a_total{x="2"}': 3, "b_total": 1})
    assert lines == [
        "# TYPE citybot_a_total counter",
        'citybot_a_total{x="1"} 2',
        'citybot_a_total{x="2"} 3',
        "# TYPE citybot_b_total counter",
        "citybot_b_total 1",
    ]
    histogram = Histogram("h_seconds", "help", ("path",), buckets=(0.1, 1.0))
    for value in (0.05, 0.5, 5.0):
        histogram.observe(value, 'a"b\\c\nd')
    text = "\n".join(histogram.render()) + "\n"
    samples = parse(text)
    labels = 'path="a\\"b\\\\c\\nd"'
    assert buckets(samples, "h_seconds", labels) == [(0.1, 1), (1.0, 2), (float("inf"), 3)]
    assert samples[f"h_seconds_sum{{{labels}}}"] == 5.55
    with pytest.raises(ValueError):
        histogram.observe(1.0)
