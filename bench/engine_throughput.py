"""Officials completing registration and the development-needs survey concurrently.

Each message goes the real way: stored in the inbox, routed through the engine, its state
change and replies (outbox rows) committed in one SQLite transaction. Prints inbound
messages per second, p50/p99 latency per message and peak RSS.

    .venv/bin/python bench/engine_throughput.py [--officials 300] [--workers 4]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from handlers.config import BotConfig  # noqa: E402
from handlers.inbound import process_pending, receive  # noqa: E402
from handlers.messages import Inbound  # noqa: E402
from handlers.places import gazetteer  # noqa: E402
from storage import migrate, outbox  # noqa: E402
from storage.db import make_engine, session_scope  # noqa: E402

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


def main() -> None:
    """Run the officials and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--officials", type=int, default=300)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    places = gazetteer()
    config = BotConfig()
    folder = tempfile.mkdtemp(prefix="citybot-bench-")
    engine = make_engine(f"sqlite:///{folder}/bench.db")
    migrate.upgrade(engine=engine)
    start = datetime(2026, 11, 2, 9, tzinfo=UTC)
    latencies: list[float] = []
    lock = threading.Lock()
    officials = [f"console:official{i}" for i in range(args.officials)]
    shares = [officials[w :: args.workers] for w in range(args.workers)]

    def official_turns(urns: list[str]) -> None:
        """Interleave the worker's officials: each sends its next line in turn."""
        rng = random.Random(len(urns))
        positions = dict.fromkeys(urns, 0)
        counter = 0
        while positions:
            urn = rng.choice(list(positions))
            text = SCRIPT[positions[urn]]
            counter += 1
            now = start + timedelta(seconds=counter)
            t0 = time.perf_counter()
            with session_scope(engine) as session:
                receive(
                    session=session,
                    inbound=Inbound(urn=urn, text=text, received_at=now),
                    external_id=f"{urn}:{positions[urn]}",
                )
                process_pending(session=session, urn=urn, config=config, now=now, places=places)
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
            positions[urn] += 1
            if positions[urn] == len(SCRIPT):
                del positions[urn]

    threads = [threading.Thread(target=official_turns, args=(share,)) for share in shares]
    wall = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - wall
    with session_scope(engine) as session:
        replies = outbox.count_by_status(session=session)
        from storage import surveys

        submitted = len(surveys.responses(session=session, survey_id="development_needs"))
    latencies.sort()
    count = len(latencies)
    print(f"officials: {args.officials}, workers: {args.workers}, messages: {count}")
    print(
        f"surveys submitted: {submitted} of {args.officials}; "
        f"replies queued: {sum(replies.values())}"
    )
    print(f"throughput: {count / wall:,.0f} inbound messages/s over {wall:.2f} s")
    print(
        f"latency per message: p50 {statistics.median(latencies) * 1000:.2f} ms, "
        f"p99 {latencies[int(count * 0.99)] * 1000:.2f} ms, max {latencies[-1] * 1000:.2f} ms"
    )
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if submitted != args.officials:
        sys.exit("not every official finished: the benchmark is not valid")


if __name__ == "__main__":
    main()
