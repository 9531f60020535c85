"""The fake Telegram's state: what it records, its scripting and inspection, its messages."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import uvicorn

from tests.fakes.telegram_protocol import DESCRIPTIONS, BotMessage, Call, Scripted, _window


class TelegramState:
    """What the fake Bot API records and is scripted with, and how its messages look."""

    def __init__(
        self,
        *,
        token: str = "123:TEST",
        rate_per_second: float = 30.0,
        rate_per_chat: float = 1.0,
        username: str = "CityPartnersBot",
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Configure the token it accepts, the limits it enforces and the clock of its dates."""
        self.token = token
        self.username = username
        self.clock = clock
        self.bot_id = int(token.split(":", 1)[0])
        self._lock = threading.RLock()
        self._global_limit, self._global_window = _window(rate_per_second)
        self._chat_limit, self._chat_window = _window(rate_per_chat)
        self._global_times: deque[float] = deque()
        self._chat_times: dict[int, deque[float]] = {}
        self.calls: list[Call] = []
        self.messages: list[BotMessage] = []
        self.rate_limited: list[tuple[int, float]] = []
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.webhook_allowed: list[str] | None = None
        self.commands: dict[str | None, list[dict[str, str]]] = {}
        self.queries: dict[str, bool] = {}  # callback query id → answered
        self._scripts: list[Scripted] = []
        self._pending: list[dict[str, Any]] = []
        self._update_ids = itertools.count(700_000)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._query_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._updates_ready: asyncio.Event | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- scripting and inspection ----------------------------------------------------------

    def set_limits(
        self, *, rate_per_second: float | None = None, rate_per_chat: float | None = None
    ) -> None:
        """Change the flood limits the fake enforces."""
        with self._lock:
            if rate_per_second is not None:
                self._global_limit, self._global_window = _window(rate_per_second)
            if rate_per_chat is not None:
                self._chat_limit, self._chat_window = _window(rate_per_chat)

    def fail(
        self,
        *,
        status: int,
        method: str | None = None,
        chat_id: int | None = None,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        body: bytes | None = None,
    ) -> None:
        """Answer the next `times` matching calls with this error (a raw `body` if given)."""
        text = description or DESCRIPTIONS.get(status, "Error").format(retry_after=retry_after)
        with self._lock:
            self._scripts.append(Scripted(method, chat_id, status, text, retry_after, times, body))

    def calls_of(self, method: str, chat_id: int | None = None) -> list[Call]:
        """The calls of a method, optionally to one chat."""
        with self._lock:
            return [
                c
                for c in self.calls
                if c.method == method and (chat_id is None or c.chat_id == chat_id)
            ]

    def messages_to(self, chat_id: int) -> list[BotMessage]:
        """What the bot sent to a chat, in order."""
        with self._lock:
            return [m for m in self.messages if m.chat_id == chat_id]

    def last_keyboard(self, chat_id: int) -> BotMessage:
        """The latest message to a chat that still shows an inline keyboard."""
        for message in reversed(self.messages_to(chat_id)):
            if message.reply_markup:
                return message
        raise AssertionError(f"no message with a keyboard in chat {chat_id}")

    # -- chats and messages as the Bot API shows them --------------------------------------

    def _chat(self, chat_id: int) -> dict[str, Any]:
        """The private chat with a user."""
        return {"id": chat_id, "type": "private", "first_name": f"User{chat_id}"}

    def _next_message_id(self, chat_id: int) -> int:
        """Message ids count per chat, as in Telegram's private chats."""
        with self._lock:
            counter = self._message_ids.setdefault(chat_id, itertools.count(1))
            return next(counter)

    def _message_json(self, message: BotMessage) -> dict[str, Any]:
        """A bot message as the Bot API returns it."""
        body: dict[str, Any] = {
            "message_id": message.message_id,
            "from": {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": "City partners",
                "username": self.username,
            },
            "chat": self._chat(message.chat_id),
            "date": message.date,
            **message.extra,
        }
        if message.method == "sendMessage":
            body["text"] = message.text
        elif message.text:
            body["caption"] = message.text
        if message.reply_markup:
            body["reply_markup"] = message.reply_markup
        return body
