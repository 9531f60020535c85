"""`citybot serve --no-worker` stores and leaves routing to a `citybot worker` process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from bot.runtime import build_runtime
from bot.settings import Settings
from handlers.messages import Inbound
from handlers.places import Gazetteer
from storage import inbox, migrate, outbox
from storage.db import make_engine, session_scope
from tests.fakes.telegram_api import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]


def _settings(url: str) -> Settings:
    """Settings for a database and nothing else (no .env)."""
    return Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]


def _pending(engine: Engine) -> int:
    """How many inbox events wait to be routed."""
    with session_scope(engine) as session:
        return len(inbox.pending_batch(session=session))


def _start_worker(env: dict[str, str], *options: str) -> subprocess.Popen[bytes]:
    """Start `python -m bot worker` polling every 50 ms, its errors kept for the assertions."""
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "bot", "worker", *options, "--poll", "0.05"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _sent(engine: Engine, urn: str) -> int:
    """How many of a person's replies are recorded as sent."""
    with session_scope(engine) as session:
        return sum(m.status == "sent" for m in outbox.messages_for(session=session, urn=urn))


def _replies(engine: Engine) -> int:
    """How many replies are queued."""
    with session_scope(engine) as session:
        return sum(outbox.count_by_status(session=session).values())


def test_a_runtime_without_worker_stores_but_does_not_route(
    tmp_path: Path, clock: FixedClock, places: Gazetteer
) -> None:
    """Accepted messages wait in the inbox when the worker runs elsewhere."""
    url = f"sqlite:///{tmp_path}/split.db"
    engine = make_engine(url)
    migrate.upgrade(engine=engine)
    runtime = build_runtime(
        _settings(url),
        engine=engine,
        clock=clock,
        places=places,
        channels={},
        with_scheduler=False,
        with_worker=False,
    )

    async def scenario() -> bool:
        """Start, accept one message, give a worker time to run if there were one, stop."""
        await runtime.start()
        try:
            inbound = Inbound(
                urn="console:ana", text="Hello there, good morning", received_at=clock.now()
            )
            stored = await runtime.accept(inbound, "m1")
            await asyncio.sleep(0.3)
            return stored
        finally:
            await runtime.stop()

    assert asyncio.run(scenario()) is True
    assert (_pending(engine), _replies(engine)) == (1, 0)
    assert runtime.idle_dispatch_seconds < 1.0  # nobody here wakes the dispatcher


def test_the_worker_command_routes_what_another_process_stored(tmp_path: Path) -> None:
    """`python -m bot worker` answers messages stored before and while it runs."""
    url = f"sqlite:///{tmp_path}/split.db"
    engine = make_engine(url)
    migrate.upgrade(engine=engine)
    now = datetime.now(UTC)

    def store(n: int) -> None:
        """Store a greeting from official n, as a webhook process would."""
        inbound = Inbound(urn=f"console:o{n}", text="Hello, good morning to you", received_at=now)
        with session_scope(engine) as session:
            inbox.store_event(
                session=session,
                channel="console",
                external_id=f"e{n}",
                urn=inbound.urn,
                payload=inbound.to_payload(),
                received_at=now,
            )

    store(1)
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    worker = _start_worker(env)
    try:
        deadline = time.monotonic() + 90
        while _pending(engine) and time.monotonic() < deadline:
            time.sleep(0.1)
        store(2)  # arrives while the worker idles: found by polling, nobody wakes it
        while _pending(engine) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
    finally:
        worker.kill()
        worker.wait(timeout=10)
    assert _pending(engine) == 0
    with session_scope(engine) as session:
        urns = {m.urn for m in outbox.messages_for(session=session, urn="console:o1")}
        urns |= {m.urn for m in outbox.messages_for(session=session, urn="console:o2")}
    assert urns == {"console:o1", "console:o2"}


def test_the_sending_worker_routes_and_sends_without_taking_the_webhook(tmp_path: Path) -> None:
    """`worker --send` answers on Telegram itself and leaves webhook and commands to serve."""
    url = f"sqlite:///{tmp_path}/split.db"
    engine = make_engine(url)
    migrate.upgrade(engine=engine)
    now = datetime.now(UTC)
    inbound = Inbound(urn="telegram:5001", text="Hello, good morning to you", received_at=now)
    with session_scope(engine) as session:
        inbox.store_event(
            session=session,
            channel="telegram",
            external_id="u1",
            urn=inbound.urn,
            payload=inbound.to_payload(),
            received_at=now,
        )
    with FakeTelegram() as fake:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "LOG_LEVEL": "WARNING",
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_BASE_URL": fake.base_url,
            "TELEGRAM_MODE": "webhook",
            "TELEGRAM_WEBHOOK_SECRET": "Webhook_secret-0123456789",
            "PUBLIC_BASE_URL": "https://bot.example.org",
        }
        worker = _start_worker(env, "--send")
        try:
            deadline = time.monotonic() + 90
            while not _sent(engine, "telegram:5001") and time.monotonic() < deadline:
                assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
                time.sleep(0.1)
        finally:
            worker.kill()
            worker.wait(timeout=10)
        methods = {call.method for call in fake.calls}
    assert [m.chat_id for m in fake.messages][:1] == [5001]
    assert "getMe" in methods
    assert not methods & {"setWebhook", "deleteWebhook", "setMyCommands", "getUpdates"}
    assert _sent(engine, "telegram:5001")


def test_serve_refuses_no_send_without_no_worker() -> None:
    """Only a worker process can take sending over: `--no-send` alone would send nothing."""
    from bot.cli import run

    assert run(["serve", "--no-send"]) == 2
