"""The ASGI app: health, metrics, and the inbox → worker → outbox → dispatcher loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import func, select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.testclient import TestClient

from bot.clock import FixedClock
from bot.limits import RequestLimits
from bot.runtime import build_runtime
from bot.server import create_app
from bot.settings import get_settings
from handlers.messages import Inbound, Outgoing
from handlers.places import Gazetteer
from storage import outbox
from storage.db import session_scope
from storage.models import InboxEvent
from tests.fakes.telegram_api import SECRET_HEADER, FakeTelegram, Harness, Person, wire
from tests.fakes.twilio_api import FakeTwilioAPI, WhatsAppBot, inbound_form
from tests.support import RecordingSender

SECRET = "Webhook_secret-0123456789"
PUBLIC = "https://bot.example.org"


class LoopbackChannel:
    """A channel whose webhook takes JSON {id, from, text} and whose sender records."""

    name = "loop"

    def __init__(self) -> None:
        """Record everything sent."""
        self.sender = RecordingSender("loop")
        self.runtime: object = None

    def routes(self) -> list[BaseRoute]:
        """POST /loop stores a message and acknowledges it."""

        async def inbound(request: Request) -> Response:
            body = await request.json()
            runtime = self.runtime
            stored = await runtime.accept(  # type: ignore[attr-defined]
                Inbound(
                    urn=f"loop:{body['from']}",
                    text=body["text"],
                    received_at=datetime.now().astimezone(),
                ),
                external_id=str(body["id"]),
            )
            return JSONResponse({"stored": stored})

        return [Route("/loop", inbound, methods=["POST"])]

    async def start(self) -> None:
        """Nothing to connect."""

    async def start_sending(self) -> None:
        """Nothing to connect."""

    async def stop(self) -> None:
        """Nothing to disconnect."""


def test_health_metrics_and_a_message_round_trip(
    engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """A webhook message is stored once, processed, and its reply sent by the dispatcher."""
    channel = LoopbackChannel()
    runtime = build_runtime(
        get_settings(), engine=engine, clock=clock, places=places, channels={"loop": channel}
    )
    channel.runtime = runtime
    with TestClient(create_app(runtime)) as client:
        assert client.get("/healthz").json() == {"status": "ok", "channels": ["loop"]}
        first = client.post(
            "/loop", json={"id": 1, "from": "ana", "text": "Hello, good morning to you all"}
        )
        again = client.post(
            "/loop", json={"id": 1, "from": "ana", "text": "Hello, good morning to you all"}
        )
        assert first.json() == {"stored": True} and again.json() == {"stored": False}
        for _ in range(600):  # up to 30 s on a loaded machine; usually well under 1 s
            if channel.sender.sent:
                break
            asyncio.run(asyncio.sleep(0.05))
        assert len(channel.sender.sent) == 1
        urn, message = channel.sender.sent[0]
        assert urn == "loop:ana" and "Do you agree?" in message.text
        metrics = client.get("/metrics").text
    assert 'citybot_inbound_total{channel="loop",result="stored"} 1' in metrics
    assert 'citybot_inbound_total{channel="loop",result="duplicate"} 1' in metrics
    assert 'citybot_outbox_messages{channel="loop",status="sent"} 1' in metrics


# -- request-size limits ---------------------------------------------------------------------


def swallowing_app(max_bytes: int) -> Starlette:
    """An app whose route catches everything while reading, wrapped in the size limits."""

    async def careless(request: Request) -> Response:
        try:
            body = await request.body()
        except Exception:
            return JSONResponse({"read": "failed, but answered 200 anyway"})
        return JSONResponse({"read": len(body)})

    return Starlette(
        routes=[Route("/in", careless, methods=["POST"])],
        middleware=[Middleware(RequestLimits, max_bytes=max_bytes)],
    )


def test_a_body_over_the_limit_is_413_even_when_the_app_swallows_the_error() -> None:
    """Declared too long, or streamed past the limit: 413, whatever the route does."""
    with TestClient(swallowing_app(1024)) as client:
        assert client.post("/in", content=b"x" * 1024).json() == {"read": 1024}
        assert client.post("/in", content=b"x" * 1025).status_code == 413
        streamed = client.post("/in", content=iter([b"x" * 600, b"x" * 600]))
        assert streamed.status_code == 413 and streamed.text == "request body too large"
        small = client.post("/in", content=iter([b"x" * 500, b"x" * 500]))
        assert small.json() == {"read": 1000}
        bad = client.post("/in", content=b"{}", headers={"Content-Length": "2x"})
        assert bad.status_code == 400


# -- the database going away -----------------------------------------------------------------


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def database_down(engine: Engine, where: Path) -> Iterator[None]:
    """Every new connection fails as if the server were gone (SQLite: the file's folder is gone;
    PostgreSQL: a closed loopback port); pooled connections are dropped on entry and exit."""
    port = closed_port()

    def unreachable(
        _dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]
    ) -> None:
        if engine.dialect.name == "sqlite":
            cargs[:1] = [str(where / "no-such-folder" / "bot.db")]
        else:
            cparams.update(host="127.0.0.1", port=port, connect_timeout=2)

    event.listen(engine, "do_connect", unreachable)
    engine.dispose()
    try:
        yield
    finally:
        event.remove(engine, "do_connect", unreachable)
        engine.dispose()


async def wait_for_log(
    caplog: pytest.LogCaptureFixture, *needles: str, within: float = 10.0
) -> None:
    """Wait until a log record containing each needle has been made."""
    deadline = time.monotonic() + within
    while not all(any(n in r.getMessage() for r in caplog.records) for n in needles):
        if time.monotonic() > deadline:
            raise AssertionError(f"never logged: {needles}")
        await asyncio.sleep(0.05)


async def test_telegram_gets_503_while_the_database_is_down_and_the_loops_recover(
    any_engine: Engine,
    clock: FixedClock,
    places: Gazetteer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Down: webhooks and /healthz answer 503 with Retry-After, nothing is acknowledged, the
    worker and dispatcher loops fail and keep going. Back: the redelivered update is stored
    once and answered, and a reminder that fell due meanwhile goes out, without a restart."""
    caplog.set_level(logging.INFO)
    with FakeTelegram(rate_per_chat=50, clock=lambda: clock.now().timestamp()) as fake:
        runtime, channel = wire(fake, any_engine, clock, places, SECRET, PUBLIC, "webhook")
        async with Harness(fake, runtime, channel) as harness:
            person = Person(harness, 4100)
            await person.say("/start")
            with session_scope(any_engine) as session:
                reminder = outbox.enqueue(
                    session=session,
                    idempotency_key="test:later",
                    urn="telegram:4100",
                    channel="telegram",
                    body=Outgoing(text="The webinar starts now").to_body(),
                    now=clock.now(),
                    not_before=clock.now() + timedelta(minutes=5),
                )
            update = fake.message_update(4100, "yes")
            with database_down(any_engine, tmp_path):
                assert harness.client is not None
                answer = await harness.client.post(
                    harness.webhook, json=update, headers={SECRET_HEADER: SECRET}
                )
                assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
                assert "Traceback" not in answer.text
                health = await harness.get("/healthz")
                assert health.status_code == 503 and health.headers["Retry-After"]
                clock.advance(timedelta(minutes=10))  # the reminder falls due while down
                runtime.wake_dispatcher("telegram")
                await wait_for_log(caplog, "inbox sweep failed", "dispatcher failed")
                metrics = await harness.get("/metrics")
                assert metrics.status_code == 200 and "citybot_database_up 0" in metrics.text
                assert all(not task.done() for task in runtime._tasks)
            assert await harness.send(update) == 200  # Telegram delivers it again
            await harness.settle()
            assert "What is your full name?" in person.last.text
            texts = [m.text for m in fake.messages_to(4100)]
            assert texts.count("The webinar starts now") == 1
            metrics = (await harness.get("/metrics")).text
    with session_scope(any_engine) as session:
        row = outbox.get_message(session=session, message_id=reminder or 0)
        stored = session.exec(select(func.count()).select_from(InboxEvent)).one()
    assert row is not None and row.status == "sent"
    assert stored == 2  # /start and the redelivered "yes", once
    assert "citybot_http_database_unavailable_total 1" in metrics
    assert "citybot_database_up 1" in metrics


def test_whatsapp_gets_503_while_the_database_is_down(
    any_engine: Engine, clock: FixedClock, places: Gazetteer, tmp_path: Path
) -> None:
    """Inbound messages and status callbacks are not acknowledged while nothing is stored."""
    with (
        FakeTwilioAPI(auth_token="outage-token") as fake,
        WhatsAppBot(fake, engine=any_engine, clock=clock, places=places, folder=tmp_path) as bot,
    ):
        [first] = bot.say("+23276000009", "Hello, good morning to the team")
        form = inbound_form("+23276000009", "Yes")
        with database_down(any_engine, tmp_path):
            assert fake.send_inbound(bot.inbound_url, form) == 503
            assert fake.send_status(first.sid, "delivered") == 503
        assert fake.send_inbound(bot.inbound_url, form) == 200  # Twilio's retry
        assert fake.send_status(first.sid, "delivered") == 200
        bot.settle("whatsapp:+23276000009")
        assert len(fake.sent_to("+23276000009")) == 2
        with session_scope(any_engine) as session:
            rows = outbox.messages_for(session=session, urn="whatsapp:+23276000009")
            stored = session.exec(select(func.count()).select_from(InboxEvent)).one()
    assert [r.status for r in rows if r.provider_id == first.sid] == ["delivered"]
    assert stored == 2


async def test_a_refused_update_fails_alone_in_its_batch(
    any_engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """Updates stored together: one the database refuses fails, the others are stored."""
    with FakeTelegram() as fake:
        runtime, channel = wire(fake, any_engine, clock, places, SECRET, PUBLIC, "webhook")
        good = Inbound(urn="telegram:1", text="fine", received_at=clock.now())
        bad = Inbound(urn="telegram:\ud800", text="refused", received_at=clock.now())
        results = await asyncio.gather(
            runtime.accept(good, "1"),
            runtime.accept(bad, "2"),
            runtime.accept(good, "3"),
            return_exceptions=True,
        )
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], Exception)
    with session_scope(any_engine) as session:
        ids = set(session.exec(select(InboxEvent.external_id)).all())
    assert ids == {"1", "3"}
