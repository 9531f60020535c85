"""Officials completing registration and the development-needs survey concurrently.

Each message goes the way `citybot serve` takes it: `Runtime.accept` stores it in the inbox
(group commit) before it would be acknowledged, the inbox worker routes it through the
engine, and its state change and replies (outbox rows) commit together on SQLite. Latency
is from the moment a message is offered to the commit of its replies.

Three runs, all printed:
- saturation: `--walkers` officials, `--concurrent` at a time, each sending its next line as
  soon as the previous one is answered (a closed loop): the most messages per second the
  engine sustains;
- offered load, `--repeats` times: messages arrive at `--rate` per second whatever happens (an
  open loop, spread over `--officials` officials who each wait for their answer): the
  achieved rate and the p50/p99 latency at that load, and the median p99 of the runs;
- engine alone: the same officials' lines stored, then routed straight through the worker's
  transactions with no event loop in between: what the engine and storage do by themselves.

    .venv/bin/python bench/engine_throughput.py [--rate 1000] [--officials 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.lanes import favour_waiting_threads  # noqa: E402
from bot.runtime import Runtime, build_runtime  # noqa: E402
from bot.settings import Settings  # noqa: E402
from handlers.messages import Inbound  # noqa: E402
from handlers.places import gazetteer  # noqa: E402
from storage import migrate, outbox, surveys  # noqa: E402
from storage.db import make_engine, session_scope  # noqa: E402
from storage.inbox import PendingEvent  # noqa: E402
from storage.wal import checkpointing  # noqa: E402

SCRIPT = [
    "Hello, good morning from the mayor's office",
    "yes",
    "Amina Kamara",
    "3",
    "City Council",
    "koidu",
    "1",
    "/needs",
    "1, 5, 7",
    "1, 2",
    "We are building a waste sorting plant and look for partners",
    "Durban, Manchester",
    "1, 5",
    "yes",
    "1",
]


@dataclass
class Run:
    """One run's officials, their progress and the measured latencies."""

    runtime: Runtime
    prefix: str
    officials: int
    position: dict[str, int] = field(default_factory=dict)
    offered_at: dict[str, float] = field(default_factory=dict)
    answered: dict[str, asyncio.Event] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def urns(self) -> list[str]:
        """The officials' addresses."""
        return [f"console:{self.prefix}{i}" for i in range(self.officials)]

    def processed(self, events: list[PendingEvent]) -> None:
        """The worker committed these events: record their latency and wake their senders."""
        now = time.perf_counter()
        for event in events:
            started = self.offered_at.pop(event.external_id, None)
            if started is not None:
                self.latencies.append(now - started)
                self.answered[event.urn].set()

    async def send(self, urn: str) -> None:
        """Offer an official's next line."""
        step = self.position[urn]
        self.position[urn] = step + 1
        key = f"{urn}:{step}"
        self.answered[urn] = asyncio.Event()
        self.offered_at[key] = time.perf_counter()
        inbound = Inbound(urn=urn, text=SCRIPT[step], received_at=datetime.now(UTC))
        await self.runtime.accept(inbound, key)


async def closed_loop(run: Run, concurrent: int) -> float:
    """`concurrent` officials at a time send each line once the last is answered; wall time."""
    slots = asyncio.Semaphore(concurrent)

    async def official(urn: str) -> None:
        """Walk the whole script in one of the slots."""
        async with slots:
            while run.position[urn] < len(SCRIPT):
                await run.send(urn)
                await run.answered[urn].wait()

    run.position = dict.fromkeys(run.urns(), 0)
    wall = time.perf_counter()
    await asyncio.gather(*(official(urn) for urn in run.urns()))
    return time.perf_counter() - wall


async def open_loop(run: Run, rate: float) -> float:
    """Offer messages at `rate` per second to whoever is not waiting; return the wall time."""
    run.position = dict.fromkeys(run.urns(), 0)
    idle: deque[str] = deque(run.urns())
    total = run.officials * len(SCRIPT)
    sent = 0
    waiting: set[asyncio.Task[None]] = set()
    rng = random.Random(7)
    rng.shuffle(idle)

    async def one(urn: str) -> None:
        """Send one line, wait for its answer, then become idle again."""
        await run.send(urn)
        await run.answered[urn].wait()
        if run.position[urn] < len(SCRIPT):
            idle.append(urn)

    wall = time.perf_counter()
    while sent < total:
        due = min(total, int((time.perf_counter() - wall) * rate) + 1)
        while sent < due and idle:
            task = asyncio.create_task(one(idle.popleft()))
            waiting.add(task)
            task.add_done_callback(waiting.discard)
            sent += 1
        await asyncio.sleep(0.002)
    await asyncio.gather(*waiting)
    return time.perf_counter() - wall


def build(folder: str) -> Runtime:
    """A runtime on a fresh SQLite database, without channels or scheduler, tuned as serve is."""
    favour_waiting_threads()
    url = f"sqlite:///{folder}/bench.db"
    engine = make_engine(url)
    migrate.upgrade(engine=engine)
    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    return build_runtime(  # the system clock: every message changes timestamps, as in life
        settings, engine=engine, places=gazetteer(), channels={}, with_scheduler=False
    )


def report(name: str, run: Run, wall: float, cpu: float) -> float:
    """Print a run's figures; return its p99 (ms)."""
    latencies = sorted(run.latencies)
    count = len(latencies)
    p99 = latencies[int(count * 0.99)] * 1000
    print(f"{name}: {run.officials} officials, {count} messages in {wall:.2f} s")
    print(
        f"  throughput: {count / wall:,.0f} inbound messages/s"
        f" (CPU {cpu / count * 1000:.2f} ms a message, this process, all threads)"
    )
    print(
        f"  latency offered → replies committed: p50 {statistics.median(latencies) * 1000:.2f}"
        f" ms, p99 {p99:.2f} ms, max {latencies[-1] * 1000:.2f} ms"
    )
    return p99


def engine_alone(runtime: Runtime, officials: int, batch: int) -> None:
    """Route stored messages straight through the worker's transaction, no event loop.

    Each round stores every official's next line, then routes the inbox in transactions of
    `batch` events (`process_safely`, what the worker runs): the engine and storage alone,
    without the asyncio hops of the runtime. Latency here is a batch's time, for each of its
    messages.
    """
    from handlers.inbound import process_safely, receive
    from storage import inbox
    from storage.db import read_scope

    urns = [f"console:e{i}" for i in range(officials)]
    latencies: list[float] = []
    routed = 0
    wall = time.perf_counter()
    cpu = time.process_time()
    for step, text in enumerate(SCRIPT):
        now = datetime.now(UTC)
        with session_scope(runtime.engine) as session:
            for urn in urns:
                inbound = Inbound(urn=urn, text=text, received_at=now)
                receive(session=session, inbound=inbound, external_id=f"{urn}:{step}")
        while True:
            with read_scope(runtime.engine) as session:
                events = inbox.pending_batch(session=session, limit=batch)
            if not events:
                break
            began = time.perf_counter()
            with session_scope(runtime.engine) as session:
                process_safely(
                    session=session,
                    events=events,
                    config=runtime.config,
                    now=datetime.now(UTC),
                    places=runtime.places,
                )
            latencies += [time.perf_counter() - began] * len(events)
            routed += len(events)
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    latencies.sort()
    print(
        f"engine alone: {officials} officials, {routed} messages, transactions of {batch}: "
        f"{routed / wall:,.0f} messages/s (CPU {cpu / routed * 1000:.2f} ms a message, storing"
        f" included); batch time p50 {statistics.median(latencies) * 1000:.1f} ms,"
        f" p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms"
    )


async def main() -> None:
    """Run both loads and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrent", type=int, default=64, help="in flight, closed loop")
    parser.add_argument("--walkers", type=int, default=640, help="officials, closed loop")
    parser.add_argument("--officials", type=int, default=1000, help="officials, open loop")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--repeats", type=int, default=3, help="open-loop runs")
    args = parser.parse_args()
    runtime = build(tempfile.mkdtemp(prefix="citybot-bench-"))
    await runtime.start()  # the worker and the log checkpoints, as `serve` runs them
    await runtime.warmed()  # start-up loading done, its heap frozen (bot/heap.py)
    p99s: list[float] = []
    try:
        warm = Run(runtime, "w", 4)  # the first messages' own loading
        runtime.worker.on_processed = warm.processed
        await closed_loop(warm, 4)
        saturation = Run(runtime, "s", args.walkers)
        runtime.worker.on_processed = saturation.processed
        cpu = time.process_time()
        wall = await closed_loop(saturation, args.concurrent)
        name = f"saturation (closed loop, {args.concurrent} in flight)"
        report(name, saturation, wall, time.process_time() - cpu)
        print(f"offered load: {args.rate:,.0f} messages/s, {args.repeats} runs")
        for repeat in range(args.repeats):
            offered = Run(runtime, f"o{repeat}-", args.officials)
            runtime.worker.on_processed = offered.processed
            cpu = time.process_time()
            wall = await open_loop(offered, args.rate)
            name = f"offered load (open loop), run {repeat + 1}"
            p99s.append(report(name, offered, wall, time.process_time() - cpu))
    finally:
        await runtime.stop()
    with checkpointing(runtime.engine):  # as the runtime ran, without its worker
        engine_alone(runtime, args.officials, runtime.worker.batch_size)
    with session_scope(runtime.engine) as session:
        queued = sum(outbox.count_by_status(session=session).values())
        submitted = len(surveys.responses(session=session, survey_id="development_needs"))
    officials = 4 + args.walkers + (args.repeats + 1) * args.officials
    print(
        f"open loop at {args.rate:,.0f}/s, p99 over {len(p99s)} runs: median"
        f" {statistics.median(p99s):.2f} ms (range {min(p99s):.2f}–{max(p99s):.2f} ms)"
    )
    print(f"surveys submitted: {submitted} of {officials}; replies queued: {queued}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if submitted != officials:
        sys.exit("not every official finished: the benchmark is not valid")


if __name__ == "__main__":
    asyncio.run(main())
