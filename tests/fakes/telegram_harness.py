"""The harness: our app served on loopback, wired to the fake Bot API, and people in it."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import httpx
import uvicorn

from tests.fakes.telegram_protocol import BotMessage
from tests.fakes.telegram_server import FakeTelegram


def wire(
    fake: FakeTelegram,
    engine: Any,
    clock: Any,
    places: Any,
    secret: str,
    public_base_url: str,
    mode: str,
    **overrides: Any,
) -> tuple[Any, Any]:
    """A runtime with its Telegram channel configured against the fake, wired as `serve` does.

    The per-chat limit is relaxed (50/s, on both sides) unless overridden, so that
    conversations in tests do not wait a second between turns.
    """
    from bot.channels.telegram import TelegramChannel
    from bot.runtime import build_runtime
    from bot.settings import get_settings

    values: dict[str, Any] = {
        "telegram_bot_token": fake.token,
        "telegram_webhook_secret": secret,
        "telegram_api_base_url": fake.base_url,
        "public_base_url": public_base_url,
        "telegram_mode": mode,
        "telegram_rate_per_chat": 50.0,
        **overrides,
    }
    settings = get_settings(**values)
    runtime = build_runtime(
        settings, engine=engine, clock=clock, places=places, channels={}, with_scheduler=False
    )
    channel = TelegramChannel(settings=settings, runtime=runtime)
    channel.poll_timeout = 1
    runtime.channels["telegram"] = channel
    runtime.dispatcher.senders["telegram"] = channel.sender
    return runtime, channel


class Harness:
    """`citybot serve`'s app (create_app under uvicorn on 127.0.0.1) talking to a fake.

    Use as `async with Harness(fake, runtime, channel) as h:`; the lifespan starts the
    runtime (the channel registers its commands and its webhook, or starts polling).
    """

    def __init__(self, fake: FakeTelegram, runtime: Any, channel: Any) -> None:
        """Bind the fake, the runtime and its Telegram channel."""
        self.fake = fake
        self.runtime = runtime
        self.channel = channel
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.client: httpx.AsyncClient | None = None

    @property
    def webhook(self) -> str:
        """Our webhook on loopback (Telegram would use PUBLIC_BASE_URL + the same path)."""
        return f"http://127.0.0.1:{self.port}/telegram/webhook"

    async def __aenter__(self) -> Harness:
        """Serve the app and wait until it is started."""
        from bot.server import create_app

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.runtime),
            log_level="warning",
            access_log=False,
            lifespan="on",
            loop="asyncio",
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        deadline = time.monotonic() + 10
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the app stopped during start-up")
            if time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            await asyncio.sleep(0.01)
        self.client = httpx.AsyncClient()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        """Stop the server (the lifespan stops the runtime)."""
        if self.client is not None:
            await self.client.aclose()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, timeout=15)

    async def get(self, path: str) -> httpx.Response:
        """GET one of our app's pages (/healthz, /metrics)."""
        assert self.client is not None
        return await self.client.get(f"http://127.0.0.1:{self.port}{path}")

    async def send(self, update: dict[str, Any]) -> int:
        """Hand an update to the bot the way its mode receives them; return the HTTP status."""
        if self.channel.mode == "webhook":
            return await self.fake.deliver(update, self.webhook, client=self.client)
        self.fake.queue_update(update)
        return 200

    def _busy(self) -> bool:
        """Whether anything is still to do: inbox events, due outbox rows, channel tasks."""
        from sqlmodel import col, func, select

        from storage.db import session_scope
        from storage.models import InboxEvent, OutboxMessage

        if self.channel.mode == "polling" and self.fake.pending_updates():
            return True
        if self.channel._tasks:
            return True
        with session_scope(self.runtime.engine) as session:
            unprocessed = session.exec(
                select(func.count()).where(col(InboxEvent.processed_at).is_(None))
            ).one()
            sending = session.exec(
                select(func.count()).where(OutboxMessage.status == "sending")
            ).one()
            due = session.exec(
                select(func.count())
                .where(OutboxMessage.status == "pending")
                .where(OutboxMessage.next_attempt_at <= self.runtime.clock.now())
            ).one()
        return bool(unprocessed or sending or due)

    async def settle(self, within: float = 10.0) -> None:
        """Wait until the bot has done everything it can do now."""
        deadline = time.monotonic() + within
        quiet = 0
        while quiet < 2:  # two checks in a row with nothing to do
            quiet = 0 if await asyncio.to_thread(self._busy) else quiet + 1
            if time.monotonic() > deadline:
                raise AssertionError("the bot did not settle")
            await asyncio.sleep(0.01)


class Person:
    """Someone chatting with the bot through the fake; each turn returns the bot's replies."""

    def __init__(self, harness: Harness, chat_id: int, *, language_code: str = "en") -> None:
        """Talk from this chat, with this app language."""
        self.harness = harness
        self.fake = harness.fake
        self.chat_id = chat_id
        self.language_code = language_code

    def _tick(self) -> None:
        """Move a fixed test clock by a second, as a person takes time to answer."""
        clock = self.harness.runtime.clock
        if hasattr(clock, "advance"):
            from datetime import timedelta

            clock.advance(timedelta(seconds=1))

    async def _turn(self, update: dict[str, Any]) -> list[BotMessage]:
        """Send an update and collect what the bot sent back."""
        before = len(self.fake.messages_to(self.chat_id))
        self._tick()
        status = await self.harness.send(update)
        assert status == 200, status
        await self.harness.settle()
        replies = self.fake.messages_to(self.chat_id)[before:]
        if not replies:
            raise AssertionError("the bot did not answer")
        return replies

    async def say(self, text: str) -> list[BotMessage]:
        """Type a message."""
        update = self.fake.message_update(self.chat_id, text, language_code=self.language_code)
        return await self._turn(update)

    async def tap(self, label: str) -> list[BotMessage]:
        """Tap the button with this label on the latest keyboard."""
        update = self.fake.callback_update(self.chat_id, label, language_code=self.language_code)
        return await self._turn(update)

    @property
    def last(self) -> BotMessage:
        """The bot's latest message to this person."""
        return self.fake.messages_to(self.chat_id)[-1]
