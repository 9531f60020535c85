"""The ASGI app: health, metrics, and the inbox → worker → outbox → dispatcher loop."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.testclient import TestClient

from bot.clock import FixedClock
from bot.runtime import build_runtime
from bot.server import create_app
from bot.settings import get_settings
from handlers.messages import Inbound
from handlers.places import Gazetteer
from tests.support import RecordingSender


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
