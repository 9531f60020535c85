"""PostgreSQL "restarted" under load: webhooks get 5xx meanwhile, serve recovers by itself.

Runs when TEST_DATABASE_URL is set (CI sets it when PostgreSQL answers on 127.0.0.1:5432).
A fresh database `citybot_rel_<random>` is created, upgraded with `python -m bot db upgrade`
and dropped afterwards. `serve` reaches it through a loopback TCP proxy (pg_proxy.py). Under
inbound load on both channels the proxy plays a restart: every connection is reset, the
server's own sessions of that database are terminated, new connections are refused for a few
seconds, then accepted again. Requests answered during the outage must not be 2xx (the
platforms then retry them); nothing acknowledged may be lost; the same serve process must
recover without a restart and answer everyone.

A second check, in process: one send is at the platform (answering slowly) when the database
goes away; once it is back, the row must say `sent` rather than stay leased.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine, make_url

from bot.clock import SystemClock
from handlers.messages import Outgoing
from storage import migrate, outbox
from storage.db import make_engine, session_scope
from tests.fakes.telegram_api import FakeTelegram, wire
from tests.fakes.twilio_api import FakeTwilioAPI
from tests.reliability import accounting
from tests.reliability.faulty import FaultyTelegram, NoGazetteer
from tests.reliability.figures import record, sized, wait_leases
from tests.reliability.pg_proxy import PgProxy
from tests.reliability.process import ROOT, TWILIO_TOKEN, ServeProcess, serve_env
from tests.reliability.traffic import Platforms, drive, explain, finish, people, until

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="TEST_DATABASE_URL not set"
)

OUTAGE_SECONDS = float(os.environ.get("CITYBOT_RELIABILITY_OUTAGE_SECONDS", "4"))
TELEGRAM_SCRIPT = ("/start", "yes", "Name {n}", "3", "Office {n}")
WHATSAPP_SCRIPT = ("Hello", "yes", "Name {n}", "3", "Office {n}")
LEASE_WAIT = 150.0
SECRET = "Outage_secret-0123456789"
PUBLIC = "https://bot.example.org"


@dataclass
class Outage:
    """What happened around the outage."""

    started: float = 0.0
    ended: float = 0.0
    started_wall: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_wall: datetime = field(default_factory=lambda: datetime.now(UTC))
    resets: int = 0
    terminated: int = 0
    during: Counter[str] = field(default_factory=Counter)
    health: Counter[str] = field(default_factory=Counter)
    acked_before: int = 0
    acked_after: int = 0
    in_flight: list[int] = field(default_factory=list)


def url_string(url: URL) -> str:
    """A URL with its password, for a subprocess's environment."""
    return url.render_as_string(hide_password=False)


@pytest.fixture
def database() -> Iterator[URL]:
    """A fresh database on the test server, dropped afterwards (trust auth allows it)."""
    base = make_url(os.environ["TEST_DATABASE_URL"])
    name = f"citybot_rel_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url_string(base)).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def upgrade(url: URL, folder: Path) -> None:
    """`python -m bot db upgrade` against the new database (directly, not through the proxy)."""
    env = {**os.environ, "DATABASE_URL": url_string(url), "CITYBOT_BOOTSTRAPPED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade"],
        cwd=folder,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def terminate_sessions(url: URL) -> int:
    """End the server's sessions of the database, as a restart does; return how many."""
    admin = make_engine(url_string(url.set(database="postgres")))
    try:
        with admin.connect() as conn:
            ended = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": url.database},
            ).scalar_one()
            conn.commit()
        return int(ended or 0)
    finally:
        admin.dispose()


async def watch_health(base_url: str, outage: Outage, stop: asyncio.Event) -> None:
    """Poll /healthz during the outage and count its answers."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        while not stop.is_set():
            try:
                answer = await client.get(base_url + "/healthz")
                outage.health[str(answer.status_code)] += 1
            except httpx.HTTPError as error:
                outage.health[type(error).__name__] += 1
            await asyncio.sleep(0.1)


async def play_outage(
    proxy: PgProxy, url: URL, engine: Engine, platforms: Platforms, base_url: str, outage: Outage
) -> None:
    """Reset and refuse database connections for a few seconds, then accept them again."""
    outage.acked_before = len(platforms.ledger.acked)
    outage.started, outage.started_wall = time.monotonic(), datetime.now(UTC)
    outage.resets = await asyncio.to_thread(proxy.down)
    outage.terminated = await asyncio.to_thread(terminate_sessions, url)
    stop = asyncio.Event()
    health = asyncio.create_task(watch_health(base_url, outage, stop))
    await asyncio.sleep(OUTAGE_SECONDS)
    stop.set()
    await health
    outage.ended, outage.ended_wall = time.monotonic(), datetime.now(UTC)
    outage.in_flight = await asyncio.to_thread(accounting.in_flight, engine)
    await asyncio.to_thread(proxy.up)


async def scenario(url: URL, folder: Path) -> dict[str, Any]:
    """Load serve, break its database, let it recover; return what the checks need."""
    outage = Outage()
    engine = make_engine(url_string(url))
    crowd = people(
        sized(20),
        sized(14),
        offset=10_000,
        telegram_script=TELEGRAM_SCRIPT,
        whatsapp_script=WHATSAPP_SCRIPT,
    )
    total = sum(len(p.script) for p in crowd)
    with (
        PgProxy() as proxy,
        FakeTelegram(rate_per_second=2000, rate_per_chat=200) as tg,
        FakeTwilioAPI(auth_token=TWILIO_TOKEN) as tw,
    ):
        through = url.set(host="127.0.0.1", port=proxy.port)
        env = serve_env(
            database_url=url_string(through),
            telegram_base=tg.base_url,
            telegram_token=tg.token,
            twilio_base=tw.base_url,
            folder=folder,
        )
        serve = ServeProcess(env, folder)
        try:
            await asyncio.to_thread(serve.start)
            pid = serve.process.pid if serve.process else 0
            platforms = Platforms(serve.base_url)
            try:
                typing = asyncio.create_task(drive(platforms, crowd, concurrency=8))
                detail = explain(platforms, serve)
                await until(
                    lambda: len(platforms.ledger.acked) >= total * 0.3,
                    "the load under way",
                    120,
                    detail,
                )
                await play_outage(proxy, url, engine, platforms, serve.base_url, outage)
                await finish(typing, "the load", max(180.0, total * 0.5), detail)
            finally:
                await platforms.close()
            ledger = platforms.ledger
            outage.acked_after = sum(1 for t in ledger.acked.values() if t > outage.ended)
            timeout = LEASE_WAIT + 60 if wait_leases() else 90
            held = await asyncio.to_thread(
                accounting.wait_quiet, engine, timeout=timeout, until_released=wait_leases()
            )
            alive = serve.alive() and serve.process is not None and serve.process.pid == pid
            async with httpx.AsyncClient(timeout=5) as client:
                healthy = (await client.get(serve.base_url + "/healthz")).status_code
            inbound = accounting.inbound(engine, ledger.acked)
            rows = [
                r for r in accounting.outbox_rows(engine) if r.idempotency_key.startswith("in:")
            ]
            received = {**accounting.telegram_received(tg), **accounting.whatsapp_received(tw)}
            replies = accounting.outbound(rows, received)
            stuck = [r for r in rows if r.id in accounting.held_rows(rows, datetime.now(UTC))]
            reached = sum(
                1
                for r in stuck
                if r.status == "sending"
                and set(accounting.texts(r)) <= set(received.get(r.urn, []))
            )
        finally:
            serve.stop()
            engine.dispose()
    return {
        "outage": outage,
        "ledger": ledger,
        "total": total,
        "rate": round(total / (ledger.finished - ledger.started), 1),
        "held": held,
        "alive": alive,
        "starts": serve.starts,
        "healthy": healthy,
        "inbound": inbound,
        "replies": replies,
        "stuck": stuck,
        "reached": reached,
        "log": serve.log(),
    }


def test_a_database_restart_under_load_is_survived_without_a_restart(
    database: URL, tmp_path: Path
) -> None:
    """5xx during the outage, nothing acknowledged lost, the same process answers everyone."""
    upgrade(database, tmp_path)
    found = asyncio.run(scenario(database, tmp_path))
    outage: Outage = found["outage"]
    ledger = found["ledger"]
    during = ledger.between(outage.started + 0.5, outage.ended)
    statuses = Counter(str(a.status) if a.status else a.error for a in during)
    inbound, replies = found["inbound"], found["replies"]
    figures = record(
        "postgres_outage",
        outage_seconds=OUTAGE_SECONDS,
        connections_reset=outage.resets,
        sessions_terminated=outage.terminated,
        messages=found["total"],
        inbound_per_second=found["rate"],
        acked=inbound.acked,
        answers_during_outage=dict(statuses),
        saw_503=statuses.get("503", 0) > 0,
        health_during_outage=dict(outage.health),
        acked_after_outage=outage.acked_after,
        inbound_lost=len(inbound.lost) + len(inbound.unprocessed),
        unanswered=inbound.unanswered,
        replies_expected=replies.expected,
        outbound_lost=replies.lost,
        duplicated=replies.duplicated,
        held_by_lease=found["held"],
        in_flight_at_outage=len(outage.in_flight),
        held_already_delivered=found["reached"],
        same_process=found["alive"] and found["starts"] == 1,
        lease_waited=wait_leases(),
    )
    print(f"\npostgres outage: {figures}")
    assert found["alive"] and found["starts"] == 1, found["log"]
    assert found["healthy"] == 200
    assert during, "no request was answered during the outage"
    assert not any(200 <= a.status < 300 for a in during), statuses
    assert any(a.status >= 500 for a in during), statuses
    assert outage.acked_after > 0  # new messages after the outage were accepted …
    assert inbound.acked == found["total"]
    assert inbound.lost == [] and inbound.unprocessed == []  # … and everything processed
    assert inbound.unanswered == 0
    assert replies.lost == 0, found["log"]
    assert replies.failed == 0
    # A send recorded nowhere because the database went away keeps its lease (2 minutes);
    # only messages claimed before the outage ended may be held so.
    held = {r.id for r in found["stuck"] if r.status == "sending"}
    assert held <= set(outage.in_flight)
    assert replies.duplicated <= len(outage.in_flight)


async def record_during_outage(url: URL) -> tuple[str, int, float]:
    """Send one message slowly, take the database away mid-send, bring it back; return the
    row's status and attempts a few seconds later, and its lease left in seconds."""
    direct = make_engine(url_string(url))
    migrate.upgrade(engine=direct)
    direct.dispose()
    clock = SystemClock()
    with PgProxy() as proxy, FaultyTelegram(rate_per_second=100, rate_per_chat=100) as fake:
        engine = make_engine(url_string(url.set(host="127.0.0.1", port=proxy.port)))
        runtime, channel = wire(
            fake, engine, clock, NoGazetteer(), SECRET, PUBLIC, "webhook", send_timeout_seconds=5.0
        )
        await channel.start()
        try:
            with session_scope(engine) as session:
                message_id = outbox.enqueue(
                    session=session,
                    idempotency_key="outage:1",
                    urn="telegram:424242",
                    channel="telegram",
                    body=Outgoing(text="Sent while the database restarts").to_body(),
                    now=clock.now(),
                    kind="reminder",
                )
            fake.slow(424242, 1.5)
            sending = asyncio.create_task(runtime.dispatcher.drain("telegram"))
            await asyncio.sleep(0.5)  # the send is at the platform now
            await asyncio.to_thread(proxy.down)
            await asyncio.sleep(2.0)  # the platform answers meanwhile; recording fails
            await asyncio.to_thread(proxy.up)
            with contextlib.suppress(Exception):
                await sending
            await asyncio.sleep(5.0)  # time enough to record the outcome once it can
            with session_scope(engine) as session:
                row = outbox.get_message(session=session, message_id=message_id or 0)
                assert row is not None
                lease = (row.next_attempt_at - clock.now()).total_seconds()
                return row.status, len(fake.messages_to(424242)), lease
        finally:
            await channel.stop()
            engine.dispose()


def test_a_send_finishing_during_an_outage_is_recorded_once_the_database_is_back(
    database: URL,
) -> None:
    """The platform took the message; once the database is back the row says so."""
    status, copies, lease = asyncio.run(record_during_outage(database))
    record("postgres_record_outage", status=status, copies=copies, lease_left_seconds=lease)
    assert copies == 1
    assert status == "sent", f"still {status} with {lease:.0f} s of lease left"
