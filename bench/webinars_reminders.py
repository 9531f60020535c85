"""Webinar reminders at the programme's scale: 20,000 registrants across 10 webinars.

Registrants come from the cities and zones the seeds name (Manila, Delhi, Abuja, Jakarta,
Suva, Kathmandu …; one in ten without a city, so the organiser's zone), in the seven
languages. Each registration goes the real way (`handlers.webinars_core.register`: due times in
the registrant's zone, quiet hours). Then the scheduler is simulated: a sweep every
`--interval` seconds of simulated time (idle ticks are skipped, they find nothing), on a clock
that runs in real time within a tick, so a reminder's lateness (queued_at − due_at) includes
the time the sweep spends before reaching it. Prints registration and sweep throughput,
reminder lateness p50/p99/max and peak RSS.

    .venv/bin/python bench/webinars_reminders.py [--registrants 20000] [--webinars 10]
        [--interval 30] [--schedulers 1] [--horizon 60]
        [--database-url postgresql://… --schema bench_webinars]
"""

from __future__ import annotations

import argparse
import bisect
import os
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import col, func, select  # noqa: E402

from handlers import webinars_core as core  # noqa: E402
from handlers.webinars_sweep import deliver_due  # noqa: E402
from scheduler.webinars import BATCH  # noqa: E402
from storage import contacts, migrate  # noqa: E402
from storage.db import make_engine, session_scope  # noqa: E402
from storage.webinars_models import WebinarReminder  # noqa: E402

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ZONES = [  # the most represented countries and cities of the 2020 DRR workshop, and others
    ("Asia/Manila", "PH", 6),
    ("Asia/Kolkata", "IN", 5),
    ("Africa/Lagos", "NG", 4),
    ("America/New_York", "US", 3),
    ("Asia/Jakarta", "ID", 3),
    ("Pacific/Fiji", "FJ", 1),
    ("Asia/Kathmandu", "NP", 1),
    ("Asia/Shanghai", "CN", 2),
    ("America/Mexico_City", "MX", 1),
    ("Africa/Freetown", "SL", 1),
    ("Asia/Tashkent", "UZ", 1),
    ("America/Santiago", "CL", 1),
    (None, None, 3),
]
LANGUAGES = ["en", "en", "en", "fr", "es", "ar", "ru", "zh", "pt"]


class TickClock:
    """Simulated time: the tick's instant plus the real time spent since the tick began."""

    def __init__(self) -> None:
        """Start at T0."""
        self._tick = T0
        self._real = time.perf_counter()

    def at(self, instant: datetime) -> None:
        """Begin a tick at `instant`."""
        self._tick, self._real = instant, time.perf_counter()

    def now(self) -> datetime:
        """The simulated current time."""
        return self._tick + timedelta(seconds=time.perf_counter() - self._real)


def main() -> None:
    """Build the programme, run the sweeps, print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--registrants", type=int, default=20_000)
    parser.add_argument("--webinars", type=int, default=10)
    parser.add_argument("--interval", type=float, default=30.0, help="sweep interval, seconds")
    parser.add_argument("--schedulers", type=int, default=1, help="concurrent sweeps per tick")
    parser.add_argument(
        "--horizon",
        type=float,
        default=None,
        help="hand reminders due within this many seconds over early (default: two intervals, "
        "as `serve` does; 0 to turn it off)",
    )
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--schema", default="", help="PostgreSQL: work in this schema (created, then dropped)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--phase",
        type=float,
        default=None,
        help="tick offset after whole minutes, seconds (default: interval − 1 ms, the worst "
        "case: due times fall just after a tick)",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='citybot-bench-')}/w.db"
    engine = make_engine(url)
    if args.schema:
        _use_schema(engine, args.schema)
    migrate.upgrade(engine=engine)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("TRUNCATE webinar_reminder, webinar_registration, webinar"))

    webinar_ids = []
    with session_scope(engine) as session:
        for n in range(args.webinars):
            spec = core.WebinarSpec(
                title={"en": f"Making cities resilient, part {n + 1}"},
                starts_at=T0 + timedelta(days=2 + n, hours=4),  # 13:00 UTC, 21:00 in Beijing
                timezone="Asia/Shanghai",
                duration_minutes=90,
                join_url=f"https://meet.example/drr-{n + 1}",
            )
            webinar = core.create_webinar(session=session, spec=spec, now=T0)
            webinar_ids.append(webinar.id or 0)

    weights = [w for _, _, w in ZONES]
    started, cpu_started = time.perf_counter(), time.process_time()
    done = 0
    while done < args.registrants:
        with session_scope(engine) as session:
            for i in range(done, min(done + 500, args.registrants)):
                zone, country, _ = rng.choices(ZONES, weights)[0]
                contact, _ = contacts.get_or_create_contact(
                    session=session, urn=f"console:b{i}", now=T0
                )
                contacts.update_contact(
                    session=session,
                    contact=contact,
                    timezone=zone,
                    country_code=country,
                    language=rng.choice(LANGUAGES),
                )
                webinar_id = webinar_ids[i % len(webinar_ids)]
                core.register(
                    session=session,
                    webinar_id=webinar_id,
                    contact=contact,
                    now=T0,
                    source="button",
                )
        done = min(done + 500, args.registrants)
    registering = time.perf_counter() - started
    registering_cpu = time.process_time() - cpu_started

    clock = TickClock()
    phase = timedelta(seconds=args.interval - 0.001 if args.phase is None else args.phase)
    horizon = 2 * args.interval if args.horizon is None else args.horizon
    step = timedelta(seconds=args.interval)
    tick = T0 + phase
    sweep_seconds: list[float] = []
    ticks: list[datetime] = []
    commits: dict[datetime, datetime] = {}
    sweep_cpu = 0.0
    busiest = (0, 0.0)
    total = 0
    while True:
        with session_scope(engine) as session:
            due = session.exec(
                select(func.min(WebinarReminder.due_at)).where(
                    WebinarReminder.status == "scheduled"
                )
            ).one()
        if due is None:
            break
        first = due - timedelta(seconds=horizon)  # the first tick that hands it over
        if first > tick:  # skip the idle ticks: they would find nothing
            tick += step * max(0, int((first - tick) / step))
            if tick < first:
                tick += step
        clock.at(tick)
        ticks.append(tick)
        began, cpu_began = time.perf_counter(), time.process_time()
        queued = _sweep(engine, clock, args.schedulers, horizon, commits)
        spent = time.perf_counter() - began
        sweep_cpu += time.process_time() - cpu_began
        sweep_seconds.append(spent)
        total += queued
        if queued > busiest[0]:
            busiest = (queued, spent)
        tick += step

    with session_scope(engine) as session:
        rows = list(
            session.exec(
                select(WebinarReminder.due_at, WebinarReminder.queued_at, WebinarReminder.kind)
                .where(WebinarReminder.status == "queued")
                .where(col(WebinarReminder.queued_at).is_not(None))
            )
        )
        statuses = dict(
            session.exec(
                select(WebinarReminder.status, func.count()).group_by(col(WebinarReminder.status))
            ).all()
        )
    reminders = [(d, q) for d, q, kind in rows if kind == "reminder" and q]
    # A reminder may go once its batch committed and its due time came (its not-before).
    late = sorted((max(commits[q], d) - d).total_seconds() for d, q in reminders)
    early = sum(1 for d, q in reminders if q < d)
    work = sorted(_since_tick(commits[q], ticks) for _, q in reminders)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sweeping = sum(sweep_seconds)
    print(
        f"database: {engine.dialect.name}; sweep interval {args.interval:.0f} s; "
        f"schedulers per tick: {args.schedulers}"
    )
    print(
        f"registrants: {args.registrants} across {args.webinars} webinars; "
        f"registered in {registering:.1f} s ({args.registrants / registering:,.0f}/s; "
        f"{registering_cpu:.1f} s CPU)"
    )
    print(f"scheduled messages: {sum(statuses.values())} {statuses}")
    print(
        f"sweeps: {len(sweep_seconds)} non-idle ticks, {total} messages queued in "
        f"{sweeping:.1f} s of sweeping ({total / sweeping:,.0f} messages/s; {sweep_cpu:.1f} s "
        f"CPU, {total / max(sweep_cpu, 1e-9):,.0f}/CPU-s); busiest tick "
        f"{busiest[0]} messages in {busiest[1]:.2f} s "
        f"({busiest[0] / max(busiest[1], 1e-9):,.0f}/s)"
    )
    print(
        f"look-ahead {horizon:.0f} s: {early} of {len(reminders)} reminders handed to the outbox "
        f"before their due time (not-before = due time); tick phase {phase.total_seconds():.3f} s"
    )
    print(
        f"reminder lateness (ready in the outbox − due time, {len(late)} reminders): "
        f"p50 {statistics.median(late):.1f} s, p99 {_p99(late):.1f} s, max {late[-1]:.1f} s "
        f"(target ≤ interval + 1 s = {args.interval + 1:.0f} s); of which the sweep's own "
        f"work (commit − tick): p50 {statistics.median(work):.2f} s, p99 {_p99(work):.2f} s,"
        f" max {work[-1]:.2f} s"
    )
    load = os.getloadavg()[0]
    print(f"peak RSS: {peak_mb:.0f} MB; load average {load:.1f} on {os.cpu_count()} CPUs")
    if args.schema:
        engine.dispose()
        with make_engine(url).begin() as connection:
            connection.execute(text(f"DROP SCHEMA {args.schema} CASCADE"))


def _use_schema(engine: Engine, schema: str) -> None:
    """Create a PostgreSQL schema and make every connection of `engine` use it."""
    if not schema.isidentifier():
        raise SystemExit(f"not a schema name: {schema!r}")
    with make_engine(engine.url.render_as_string(hide_password=False)).begin() as connection:
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))

    @event.listens_for(engine, "connect")
    def _search_path(dbapi_connection: Any, _record: Any) -> None:
        """Use the schema."""
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET search_path TO {schema}")
        cursor.close()
        dbapi_connection.commit()


def _sweep(
    engine: Engine,
    clock: TickClock,
    schedulers: int,
    horizon: float,
    commits: dict[datetime, datetime],
) -> int:
    """One tick: `schedulers` sweeps at once (threads), as several processes would."""
    results = [0] * schedulers

    def work(index: int) -> None:
        """Run one sweep as scheduler/webinars.py does, noting when each batch committed."""
        ahead = timedelta(seconds=horizon)
        while True:
            now = clock.now()
            with session_scope(engine) as session:
                result = deliver_due(session=session, now=now, limit=BATCH, horizon=ahead)
            commits[now] = clock.now()  # rows queued at `now` became visible here
            results[index] += result.queued
            if result.claimed < BATCH:
                return

    if schedulers == 1:
        work(0)
        return results[0]
    threads = [threading.Thread(target=work, args=(i,)) for i in range(schedulers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(results)


def _since_tick(queued: datetime, ticks: list[datetime]) -> float:
    """Seconds from the tick that queued a message to the moment it was queued."""
    index = bisect.bisect_right(ticks, queued) - 1
    return (queued - ticks[index]).total_seconds()


def _p99(values: list[float]) -> float:
    """The 99th percentile of sorted values."""
    return values[min(len(values) - 1, int(len(values) * 0.99))]


if __name__ == "__main__":
    main()
