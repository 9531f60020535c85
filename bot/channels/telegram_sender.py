"""The Telegram sender: renders outbox jobs, paces them, and classifies what goes wrong.

Every message waits for its chat's turn (`telegram_rate_per_chat`) and then for a place in
the overall window (`telegram_rate_per_second`). Failures become `SendError`s for the
dispatcher: 429 → `retry` after Telegram's retry_after (that chat only: the dispatcher holds
its later messages until then, and other chats go on), 403 (blocked, deactivated) →
`blocked`, network errors, timeouts and 5xx → `retry` with backoff, 400 → `fatal` with
Telegram's reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import warnings
from collections import OrderedDict
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from telegram import Bot, Message
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest, RequestData

from bot.channels.telegram_adapter import chat_of
from bot.channels.telegram_limits import ChatSpacing, WindowLimiter
from bot.channels.telegram_render import Piece, RenderError, render
from bot.dispatcher import Job, SendError, Sent
from handlers.messages import Outgoing
from storage import outbox
from storage.db import read_scope

logger = logging.getLogger(__name__)

# RetryAfter.retry_after as a timedelta, without PTB's deprecation warning (read defensively).
os.environ.setdefault("PTB_TIMEDELTA", "true")


class ServerError(NetworkError):
    """Telegram (or a proxy before it) answered 5xx; keeps the status code."""

    def __init__(self, status: int, description: str) -> None:
        """Record the HTTP status and Telegram's description."""
        super().__init__(description)
        self.status = status


class ApiRequest(HTTPXRequest):
    """PTB's httpx transport, raising `ServerError` (with the status) on any 5xx answer."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        write_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        connect_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        pool_timeout: Any = HTTPXRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Do the request; 5xx becomes ServerError instead of an anonymous NetworkError."""
        code, payload = await super().do_request(
            url,
            method,
            request_data=request_data,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
        if 500 <= code <= 599:
            description = f"HTTP {code}"
            try:
                parsed = json.loads(payload.decode("utf-8", "replace"))
                if isinstance(parsed, dict) and parsed.get("description"):
                    description = str(parsed["description"])
            except ValueError:
                pass
            raise ServerError(code, description)
        return code, payload


def retry_seconds(error: RetryAfter) -> float:
    """Telegram's retry_after in seconds, whether PTB gives an int or a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value: Any = error.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def classify(error: TelegramError) -> SendError:
    """Turn a PTB error into what the dispatcher should do about it."""
    reason = error.message
    if isinstance(error, RetryAfter):
        return SendError("retry", "429", reason, retry_after=retry_seconds(error))
    if isinstance(error, Forbidden):
        return SendError("blocked", "403", reason)
    if isinstance(error, ChatMigrated):
        return SendError("fatal", "400", f"chat migrated to {error.new_chat_id}")
    if isinstance(error, BadRequest):
        return SendError("fatal", "400", reason)
    if isinstance(error, InvalidToken):
        return SendError("retry", "401", "invalid bot token")
    if isinstance(error, Conflict):
        return SendError("retry", "409", reason)
    if isinstance(error, ServerError):
        return SendError("retry", str(error.status), reason)
    if isinstance(error, TimedOut):
        return SendError("retry", "timeout", reason)
    if isinstance(error, NetworkError):
        return SendError("retry", "network", reason)
    return SendError("retry", "telegram", reason)


class RemovedKeyboards:
    """The messages whose keyboard this process removed already (bounded, oldest forgotten)."""

    def __init__(self, size: int = 10_000) -> None:
        """Remember up to `size` messages."""
        self.size = size
        self._seen: OrderedDict[tuple[int, int], None] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        """Whether (chat, message) was cleaned already."""
        return key in self._seen

    def add(self, chat_id: int, message_id: int) -> None:
        """Remember a cleaned message."""
        self._seen[(chat_id, message_id)] = None
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)


async def remove_keyboard(
    bot: Bot, chat_id: int, message_id: int, removed: RemovedKeyboards
) -> None:
    """Take the inline keyboard off a message (best effort: errors are logged, not raised)."""
    if (chat_id, message_id) in removed:
        return
    try:
        await bot.edit_message_reply_markup(
            chat_id=chat_id, message_id=message_id, reply_markup=None
        )
    except BadRequest:
        pass  # already without a keyboard, or deleted
    except TelegramError as error:
        logger.info("keyboard not removed chat=%s: %s", chat_id, type(error).__name__)
        return
    removed.add(chat_id, message_id)


class TelegramSender:
    """Sends outbox jobs through the Bot API, paced, and reports the outcome."""

    channel = "telegram"

    def __init__(
        self,
        bot: Bot,
        *,
        rate_per_second: float,
        rate_per_chat: float,
        engine: Engine | None = None,
        removed: RemovedKeyboards | None = None,
    ) -> None:
        """Bind the bot and the limits; with the database, answered keyboards are removed."""
        self.bot = bot
        self.overall = WindowLimiter(rate_per_second)
        self.chats = ChatSpacing(rate_per_chat)
        self.engine = engine
        self.removed = removed or RemovedKeyboards()

    def _answered_keyboards(self, job: Job, chat_id: int) -> list[int]:
        """Keyboards shown before the message this job answers (when it is a reply's first).

        Replies to an inbound event have the outbox key `in:<event>:<index>`
        (handlers/inbound.py); the first one removes the keyboards of the last few earlier
        messages, so an old button cannot answer a new question, whether the person tapped
        or typed, and whichever process sent them.
        """
        assert self.engine is not None
        key = job.idempotency_key
        if not (key.startswith("in:") and key.endswith(":0")):
            return []
        shown: list[int] = []
        with read_scope(self.engine) as session:  # a read: never waits for the writer
            rows = outbox.recent_sent(session=session, urn=job.urn, before_id=job.id, limit=10)
            for row in rows:
                if row.id is None or row.id >= job.id or not row.provider_id:
                    continue
                if not row.body.get("choices"):
                    continue
                chat, _, message_id = row.provider_id.partition(":")
                if chat == str(chat_id) and message_id.isdecimal():
                    shown.append(int(message_id))
        return shown[-3:]

    async def _post(self, chat_id: int, piece: Piece) -> Message:
        """Send one Bot API message in the chat's turn and a place in the overall window."""
        path = Path(piece.path)
        async with self.chats.turn(chat_id), self.overall.slot():
            if piece.kind == "text":
                return await self.bot.send_message(
                    chat_id=chat_id, text=piece.text, reply_markup=piece.keyboard
                )
            caption = piece.text or None
            if piece.kind == "image":
                return await self.bot.send_photo(
                    chat_id=chat_id, photo=path, caption=caption, filename=piece.filename
                )
            return await self.bot.send_document(
                chat_id=chat_id, document=path, caption=caption, filename=piece.filename
            )

    async def send(self, job: Job) -> Sent:
        """Send one outbox job (a text with its keyboard, and its files); raise SendError."""
        try:
            chat_id = chat_of(job.urn)
            pieces = render(Outgoing.from_body(job.body, kind=job.kind))
        except (ValueError, RenderError) as error:
            raise SendError("fatal", "render", str(error)) from None
        for piece in pieces:  # check every file before sending anything
            if piece.kind != "text" and not await asyncio.to_thread(Path(piece.path).is_file):
                raise SendError("fatal", "file", f"attachment {piece.filename!r} missing")
        if self.engine is not None:
            answered = await asyncio.to_thread(self._answered_keyboards, job, chat_id)
            for message_id in answered:
                await remove_keyboard(self.bot, chat_id, message_id, self.removed)
        main: Message | None = None
        for piece in pieces:
            try:
                sent = await self._post(chat_id, piece)
            except TelegramError as error:
                failure = classify(error)
                logger.info(
                    "telegram send failed message=%s chat=%s code=%s",
                    job.id,
                    chat_id,
                    failure.code,
                )
                raise failure from None
            if main is None or piece.kind == "text":
                main = sent
        if main is None:
            raise SendError("fatal", "render", "nothing to send")
        return Sent(provider_id=f"{chat_id}:{main.message_id}")
