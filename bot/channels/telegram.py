"""The Telegram channel: webhook (production) or long polling (development) in, outbox out.

- In: `POST /telegram/webhook`, authenticated by the X-Telegram-Bot-Api-Secret-Token header
  (constant-time compare; wrong or missing → 403, nothing stored), or our own getUpdates loop
  when TELEGRAM_MODE=polling (the default without PUBLIC_BASE_URL). Either way each update is
  stored in the inbox, deduplicated by update_id, *before* it is acknowledged (the webhook
  answers 200, the poller advances its offset), updates arriving together in one transaction
  (bot/inbox_writer.py); the inbox worker does the rest, one chat in order and
  chats concurrently.
- Buttons: a tap is answered at once (answerCallbackQuery) and the keyboard of the message it
  came from removed (editMessageReplyMarkup), in the background, while the update is stored.
  When the answer was typed, the sender removes the keyboards of the earlier question before
  it sends the reply, so an old button cannot answer a new question (and if a stale client
  taps one anyway, the survey engine recognises it as belonging to an earlier question).
- Out: `TelegramSender` (bot/channels/telegram_sender.py), driven by the outbox dispatcher.
- Lifecycle: the PTB Application (no Updater, no JobQueue, no persistence, no handlers) is
  initialised and started from the ASGI lifespan through `start()`, which also registers the
  command menu in every supported language and the webhook (URL and secret) or the poller.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import random
import re
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from telegram import BotCommand, Update
from telegram.error import BadRequest, Conflict, InvalidToken, RetryAfter, TelegramError
from telegram.ext import Application

from bot.channels.telegram_adapter import Received, to_received
from bot.channels.telegram_checks import Malformed, clean, valid_update_id, well_formed
from bot.channels.telegram_sender import (
    ApiRequest,
    RemovedKeyboards,
    TelegramSender,
    remove_keyboard,
    retry_seconds,
)
from bot.dispatcher import Sender
from bot.logs import protect_secrets
from bot.settings import Settings
from handlers.i18n import t

if TYPE_CHECKING:
    from bot.runtime import Runtime

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
ALLOWED_UPDATES = ("message", "callback_query")
# The command menu, in this order; descriptions are the strings tg_cmd_<command>.
COMMANDS = (
    "start",
    "needs",
    "ppe",
    "webinars",
    "register",
    "mydata",
    "language",
    "help",
    "forget",
    "stop",
)
MAX_BODY = 1 << 20  # an update is a few kilobytes


def _quiet_http_logs(*secrets: str | None) -> None:
    """Keep httpx and PTB below INFO unless configured otherwise, and redact our secrets."""
    for name in ("httpx", "httpcore", "telegram"):
        log = logging.getLogger(name)
        if log.level == logging.NOTSET:
            log.setLevel(logging.WARNING)
    protect_secrets(*secrets)


def webhook_url(settings: Settings) -> str:
    """The public address Telegram posts updates to."""
    return (settings.public_base_url or "").rstrip("/") + WEBHOOK_PATH


class TelegramChannel:
    """The Telegram channel plugged into `citybot serve`."""

    name = "telegram"

    def __init__(self, *, settings: Settings, runtime: Runtime) -> None:
        """Build the PTB Application and the sender from the settings."""
        if settings.telegram_bot_token is None:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        token = settings.telegram_bot_token.get_secret_value()
        secret = settings.telegram_webhook_secret
        _quiet_http_logs(token, secret.get_secret_value() if secret is not None else None)
        self.settings = settings
        self.runtime = runtime
        self.mode = settings.telegram_mode_resolved
        self.secret = secret.get_secret_value() if secret is not None else None
        if self.mode == "webhook":
            if not settings.public_base_url:
                raise ValueError("TELEGRAM_MODE=webhook needs PUBLIC_BASE_URL")
            if self.secret is None or not SECRET_PATTERN.match(self.secret):
                raise ValueError(
                    "TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z a-z 0-9 _ -"
                )
        timeout = settings.send_timeout_seconds
        request = ApiRequest(
            connection_pool_size=64,
            read_timeout=timeout,
            write_timeout=timeout,
            connect_timeout=timeout,
            pool_timeout=timeout,
            media_write_timeout=max(timeout, 20.0),
        )
        updates_request = ApiRequest(
            connection_pool_size=2,
            read_timeout=timeout,
            write_timeout=timeout,
            connect_timeout=timeout,
            pool_timeout=timeout,
        )
        self.application: Application[Any, Any, Any, Any, Any, Any] = (
            Application.builder()
            .token(token)
            .base_url(settings.telegram_api_base_url)
            .request(request)
            .get_updates_request(updates_request)
            .updater(None)
            .job_queue(None)
            .build()
        )
        self.bot = self.application.bot
        self.removed = RemovedKeyboards()
        self.telegram_sender = TelegramSender(
            self.bot,
            rate_per_second=settings.telegram_rate_per_second,
            rate_per_chat=settings.telegram_rate_per_chat,
            engine=runtime.engine,
            removed=self.removed,
        )
        self.sender: Sender = self.telegram_sender
        self.poll_timeout = 10  # seconds a getUpdates call waits for updates
        self._poller: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- HTTP ------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """POST /telegram/webhook."""
        return [Route(WEBHOOK_PATH, self.webhook, methods=["POST"])]

    def authentic(self, given: str | None) -> bool:
        """Whether the secret header matches ours (constant time); never without a secret."""
        if self.secret is None or given is None:
            return False
        return hmac.compare_digest(given.encode("utf-8"), self.secret.encode("utf-8"))

    async def webhook(self, request: Request) -> Response:
        """Authenticate, store, then acknowledge one update (400 when it is not one)."""
        if not self.authentic(request.headers.get(SECRET_HEADER)):
            self.runtime.count('telegram_webhook_total{result="forbidden"}')
            logger.warning("telegram webhook refused: bad or missing secret")
            return Response(status_code=403)
        body = await request.body()
        if len(body) > MAX_BODY:
            return Response(status_code=413)
        try:
            received = self._read(self.parse(body))
        except Malformed:
            self.runtime.count('telegram_webhook_total{result="invalid"}')
            logger.warning("telegram webhook: unreadable update")
            return Response(status_code=400)
        await self._accept(received)
        return Response(status_code=200)

    def parse(self, body: bytes) -> Update:
        """The update in a webhook body; Malformed unless it is a JSON object with an update_id."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as error:
            raise Malformed("not JSON") from error
        if not isinstance(data, dict) or not valid_update_id(data.get("update_id")):
            raise Malformed("not an update")
        try:
            return Update.de_json(data, self.bot)
        except Exception as error:  # PTB raises whatever a wrong shape makes it raise
            raise Malformed("not an update") from error

    # -- updates, from the webhook or the poller -------------------------------------------

    def _read(self, update: Update) -> Received | None:
        """What an update means; None when ignored, Malformed when it is not well formed."""
        try:
            received = to_received(update, now=self.runtime.clock.now())
        except Exception as error:
            raise Malformed("unreadable update") from error
        if received is None:
            return None
        if not well_formed(received):
            raise Malformed("out-of-range fields")
        return clean(received)

    async def receive(self, update: Update) -> bool:
        """Answer a tap, then store the update; False when it is a redelivery or ignored."""
        try:
            received = self._read(update)
        except Malformed:
            logger.warning("telegram update=%s could not be read; ignored", update.update_id)
            received = None
        return await self._accept(received)

    async def _accept(self, received: Received | None) -> bool:
        """Answer a tap, then store what was received; False when a redelivery or ignored."""
        if received is None:
            self.runtime.count('telegram_updates_total{result="ignored"}')
            return False
        if received.callback_query_id is not None:
            self._spawn(self._tapped(received))
        stored = False
        if received.inbound is not None:
            stored = await self.runtime.accept(received.inbound, str(received.update_id))
        logger.debug(
            "telegram update=%s chat=%s stored=%s", received.update_id, received.chat_id, stored
        )
        return stored

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run best-effort work in the background, keeping a reference until it is done."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tapped(self, received: Received) -> None:
        """Answer a tap at once, then take the keyboard off the message it came from."""
        if received.callback_query_id is not None:
            try:
                await self.bot.answer_callback_query(received.callback_query_id)
            except BadRequest:
                logger.debug("callback query already answered or too old")
            except TelegramError as error:
                logger.info("answerCallbackQuery failed: %s", type(error).__name__)
        if received.callback_message_id is not None:
            await remove_keyboard(
                self.bot, received.chat_id, received.callback_message_id, self.removed
            )

    async def _poll_forever(self) -> None:
        """Long-poll getUpdates; store each update before confirming it with the next offset."""
        offset: int | None = None
        failures = 0
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset, timeout=self.poll_timeout, allowed_updates=ALLOWED_UPDATES
                )
                for update in updates:
                    await self.receive(update)
                    offset = update.update_id + 1
                failures = 0
            except asyncio.CancelledError:
                raise
            except InvalidToken:
                logger.error("telegram polling: the bot token was refused")
                await asyncio.sleep(30)
            except RetryAfter as error:
                await asyncio.sleep(retry_seconds(error))
            except Exception as error:
                failures += 1
                delay = min(30.0, 0.5 * 2**failures) * random.uniform(0.5, 1.0)  # noqa: S311
                level = logging.WARNING if isinstance(error, Conflict) else logging.INFO
                logger.log(
                    level,
                    "telegram polling failed (%s); retry in %.1fs",
                    type(error).__name__,
                    delay,
                )
                await asyncio.sleep(delay)

    # -- lifecycle -------------------------------------------------------------------------

    async def register_commands(self) -> None:
        """Register the command menu in every supported language, and a default one."""
        languages: tuple[str | None, ...] = (None, *self.settings.supported_languages)
        for lang in languages:
            texts = lang or self.settings.default_language
            commands = [BotCommand(c, t(f"tg_cmd_{c}", texts)) for c in COMMANDS]
            try:
                await self.bot.set_my_commands(commands, language_code=lang)
            except TelegramError as error:
                logger.warning(
                    "setMyCommands failed language=%s: %s", lang or "default", type(error).__name__
                )

    async def start(self) -> None:
        """Initialise PTB (getMe), register the commands, then the webhook or the poller."""
        await self.application.initialize()
        await self.application.start()
        await self.register_commands()
        if self.mode == "webhook":
            await self.bot.set_webhook(
                url=webhook_url(self.settings),
                secret_token=self.secret,
                allowed_updates=ALLOWED_UPDATES,
            )
        else:
            await self.bot.delete_webhook(drop_pending_updates=False)
            self._poller = asyncio.create_task(self._poll_forever())
        logger.info("telegram channel started mode=%s bot=%s", self.mode, self.bot.id)

    async def start_sending(self) -> None:
        """Initialise PTB (getMe) only: `serve` keeps the webhook or the poller and commands."""
        await self.application.initialize()
        logger.info("telegram channel sending only bot=%s", self.bot.id)

    async def stop(self) -> None:
        """Stop polling, let background work finish briefly, then stop PTB."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=2.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
        logger.info("telegram channel stopped")
