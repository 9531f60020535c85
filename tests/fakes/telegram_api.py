"""A fake Telegram Bot API: a real HTTP server on 127.0.0.1 (Starlette on uvicorn, own thread).

python-telegram-bot talks to it over HTTP through `base_url` (see `FakeTelegram.base_url`),
exactly as it talks to api.telegram.org: form-encoded or multipart POSTs to
`/bot<token>/<method>`, Telegram-shaped JSON answers (`ok`, `result`, `error_code`,
`description`, `parameters.retry_after`).

Methods: getMe, getUpdates (long polling), setWebhook, deleteWebhook, getWebhookInfo,
sendMessage, sendDocument, sendPhoto, answerCallbackQuery, editMessageReplyMarkup,
setMyCommands, getMyCommands.

It records every call, enforces Telegram's flood limits on the send methods (at most
`rate_per_second` messages in any sliding second overall and `rate_per_chat` per chat; a
message over a limit is answered 429 with `retry_after` and counted in `rate_limited`),
answers scripted errors per method and/or chat (`fail`), and plays the people: it builds their
updates (`message_update`, `callback_update`) and delivers them by getUpdates (`queue_update`)
or by POSTing them to a webhook on loopback with the registered secret (`deliver`).
It never contacts any address but loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import itertools
import json
import math
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SEND_METHODS = frozenset({"sendMessage", "sendDocument", "sendPhoto"})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    403: "Forbidden: bot was blocked by the user",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
INT_PARAMS = frozenset({"chat_id", "message_id", "offset", "limit", "max_connections"})
JSON_PARAMS = frozenset({"reply_markup", "commands", "scope", "allowed_updates", "timeout"})
BOOL_PARAMS = frozenset({"drop_pending_updates", "show_alert"})


@dataclass
class Call:
    """One request the fake received, with the HTTP status it answered."""

    method: str
    params: dict[str, Any]
    chat_id: int | None
    at: float
    status: int = 200


@dataclass
class Scripted:
    """An error to answer instead of doing the work, `times` times."""

    method: str | None
    chat_id: int | None
    status: int
    description: str
    retry_after: int | None
    times: int
    body: bytes | None


@dataclass
class BotMessage:
    """A message the bot sent, as the fake stores it."""

    message_id: int
    chat_id: int
    method: str
    text: str
    reply_markup: dict[str, Any] | None
    at: float
    date: int
    extra: dict[str, Any] = field(default_factory=dict)

    def labels(self) -> list[str]:
        """The labels of the inline keyboard, row by row."""
        if not self.reply_markup:
            return []
        return [b["text"] for row in self.reply_markup["inline_keyboard"] for b in row]

    def button_data(self, label: str) -> str | None:
        """The callback data of the button with this label, if the keyboard has it."""
        if not self.reply_markup:
            return None
        for row in self.reply_markup["inline_keyboard"]:
            for button in row:
                if button["text"] == label:
                    return str(button["callback_data"])
        return None


def _window(rate: float) -> tuple[int, float]:
    """Express a rate as at most `limit` events in `window` seconds."""
    limit = max(1, math.floor(rate))
    return limit, limit / rate


def _parse_params(method: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Decode Bot API parameters: PTB sends strings raw and everything else JSON-encoded."""
    params: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, dict):  # an uploaded file
            params[name] = value
        elif name in INT_PARAMS:
            params[name] = int(value)
        elif name in JSON_PARAMS or name in BOOL_PARAMS:
            params[name] = json.loads(value)
        else:
            params[name] = value
    return params


def _parse_multipart(body: bytes, content_type: str) -> dict[str, Any]:
    """Read a multipart/form-data body; files become {filename, size, content}."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename:
            fields[name] = {"filename": filename, "size": len(payload), "content": payload}
        else:
            fields[name] = payload.decode("utf-8")
    return fields


class FakeTelegram:
    """The fake Bot API server and the people who talk to the bot through it."""

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

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeTelegram:
        """Serve on a random loopback port in a background thread; return when it listens."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app(),
            log_level="warning",
            access_log=False,
            lifespan="on",
            loop="asyncio",
            timeout_graceful_shutdown=0.2,  # do not wait out long polls on stop
        )
        self._server = uvicorn.Server(config)
        server = self._server

        def run() -> None:
            asyncio.run(server.serve(sockets=[sock]))

        self._thread = threading.Thread(target=run, name="fake-telegram", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake Bot API did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop the server thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeTelegram:
        """Start on entry."""
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        """Stop on exit."""
        self.stop()

    @property
    def base_url(self) -> str:
        """The value for TELEGRAM_API_BASE_URL (PTB appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    def app(self) -> Starlette:
        """The ASGI app: every Bot API method under /bot<token>/<method>."""

        @contextlib.asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            self._loop = asyncio.get_running_loop()
            self._updates_ready = asyncio.Event()
            yield

        return Starlette(
            routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])],
            lifespan=lifespan,
        )

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

    # -- the people ------------------------------------------------------------------------

    def _user(self, chat_id: int, language_code: str | None) -> dict[str, Any]:
        """A Telegram user whose private chat has the same id."""
        user: dict[str, Any] = {"id": chat_id, "is_bot": False, "first_name": f"User{chat_id}"}
        if language_code:
            user["language_code"] = language_code
        return user

    def _chat(self, chat_id: int) -> dict[str, Any]:
        """The private chat with a user."""
        return {"id": chat_id, "type": "private", "first_name": f"User{chat_id}"}

    def message_update(
        self,
        chat_id: int,
        text: str,
        *,
        language_code: str | None = "en",
        update_id: int | None = None,
    ) -> dict[str, Any]:
        """The update for a person typing `text` (a /command gets its entity)."""
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "from": self._user(chat_id, language_code),
            "chat": self._chat(chat_id),
            "date": int(self.clock()),
            "text": text,
        }
        if text.startswith("/"):
            length = len(text.split(" ", 1)[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return {"update_id": update_id or next(self._update_ids), "message": message}

    def callback_update(
        self,
        chat_id: int,
        label: str | None = None,
        *,
        data: str | None = None,
        message_id: int | None = None,
        language_code: str | None = "en",
    ) -> dict[str, Any]:
        """The update for a person tapping a button of a bot message (the latest keyboard).

        With `data` the tap is forced (a stale client still showing a removed keyboard).
        """
        with self._lock:
            if message_id is None:
                message = self.last_keyboard(chat_id)
            else:
                (message,) = [m for m in self.messages_to(chat_id) if m.message_id == message_id]
            if data is None:
                if label is None:
                    raise AssertionError("tap a label or force data")
                data = message.button_data(label)
                if data is None:
                    raise AssertionError(f"no button {label!r} in {message.labels()}")
            query_id = f"q{next(self._query_ids)}"
            self.queries[query_id] = False
            shown = self._message_json(message)
        return {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": query_id,
                "from": self._user(chat_id, language_code),
                "message": shown,
                "chat_instance": f"ci{chat_id}",
                "data": data,
            },
        }

    def queue_update(self, update: dict[str, Any]) -> None:
        """Make an update available to getUpdates (thread-safe)."""
        with self._lock:
            self._pending.append(update)
        if self._loop is not None and self._updates_ready is not None:
            self._loop.call_soon_threadsafe(self._updates_ready.set)

    def pending_updates(self) -> int:
        """How many updates getUpdates has not had confirmed yet."""
        with self._lock:
            return len(self._pending)

    async def deliver(
        self,
        update: dict[str, Any],
        target: str,
        *,
        secret: str | None | bool = True,
        client: httpx.AsyncClient | None = None,
    ) -> int:
        """POST an update to a webhook on loopback, as Telegram does; return the status.

        `secret=True` sends the secret registered by setWebhook, a string sends that one,
        None sends no header.
        """
        host = urlsplit(target).hostname or ""
        if host not in LOOPBACK:
            raise ValueError(f"the fake only delivers to loopback, not {host!r}")
        headers = {"Content-Type": "application/json"}
        token = self.webhook_secret if secret is True else secret
        if isinstance(token, str):
            headers[SECRET_HEADER] = token
        body = json.dumps(update).encode()
        if client is not None:
            return (await client.post(target, content=body, headers=headers)).status_code
        async with httpx.AsyncClient() as own:
            return (await own.post(target, content=body, headers=headers)).status_code

    # -- the server ------------------------------------------------------------------------

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

    async def _read(self, request: Request) -> dict[str, Any]:
        """Read the parameters of a call, whatever the encoding."""
        content_type = request.headers.get("content-type", "")
        body = await request.body()
        if content_type.startswith("multipart/form-data"):
            raw: dict[str, Any] = _parse_multipart(body, content_type)
        elif content_type.startswith("application/json"):
            raw = {
                k: v if isinstance(v, str) else json.dumps(v) for k, v in json.loads(body).items()
            }
        else:
            raw = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        raw.update(request.query_params)
        return raw

    async def _endpoint(self, request: Request) -> Response:
        """Answer one Bot API call."""
        method = request.path_params["method"]
        if request.path_params["token"] != self.token:
            return self._error(401, "Unauthorized")
        params = _parse_params(method, await self._read(request))
        chat_id = params.get("chat_id")
        call = Call(method, params, chat_id, time.monotonic())
        with self._lock:
            self.calls.append(call)
            scripted = self._scripted(method, chat_id)
            limited = None if scripted else self._throttle(method, chat_id, call.at)
        if scripted is not None:
            call.status = scripted.status
            if scripted.body is not None:
                return Response(scripted.body, status_code=scripted.status)
            return self._error(scripted.status, scripted.description, scripted.retry_after)
        if limited is not None:
            call.status = 429
            return self._error(429, f"Too Many Requests: retry after {limited}", limited)
        if method == "getUpdates":
            if self.webhook_url:
                call.status = 409
                return self._error(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active;"
                    " use deleteWebhook to delete the webhook first",
                )
            return self._ok(await self._get_updates(params))
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            call.status = 404
            return self._error(404, "Not Found: method not found")
        with self._lock:
            status, result = handler(params)
        call.status = status
        if status != 200:
            return self._error(status, str(result))
        return self._ok(result)

    def _ok(self, result: Any) -> Response:
        """A successful answer."""
        return JSONResponse({"ok": True, "result": result})

    def _error(self, status: int, description: str, retry_after: int | None = None) -> Response:
        """An error answer, with retry_after for floods."""
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return JSONResponse(body, status_code=status)

    def _scripted(self, method: str, chat_id: int | None) -> Scripted | None:
        """Take the first scripted error matching this call."""
        for script in self._scripts:
            if script.times <= 0:
                continue
            if script.method not in (None, method) or script.chat_id not in (None, chat_id):
                continue
            script.times -= 1
            return script
        return None

    def _throttle(self, method: str, chat_id: int | None, now: float) -> int | None:
        """Apply the flood limits to a send; return retry_after when one is exceeded."""
        if method not in SEND_METHODS or chat_id is None:
            return None
        overall = self._global_times
        while overall and overall[0] <= now - self._global_window:
            overall.popleft()
        chat = self._chat_times.setdefault(chat_id, deque())
        while chat and chat[0] <= now - self._chat_window:
            chat.popleft()
        wait = 0.0
        if len(overall) >= self._global_limit:
            wait = overall[0] + self._global_window - now
        if len(chat) >= self._chat_limit:
            wait = max(wait, chat[0] + self._chat_window - now)
        if wait > 0:
            self.rate_limited.append((chat_id, now))
            return max(1, math.ceil(wait))
        overall.append(now)
        chat.append(now)
        return None

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Long polling: confirm updates below `offset`, wait up to `timeout` for new ones."""
        assert self._loop is not None and self._updates_ready is not None
        offset = params.get("offset")
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        deadline = self._loop.time() + timeout
        if offset is not None:  # confirmed when the request arrives, as Telegram does
            with self._lock:
                self._pending = [u for u in self._pending if u["update_id"] >= offset]
        while True:
            self._updates_ready.clear()
            with self._lock:
                ready = list(self._pending[:limit])
            remaining = deadline - self._loop.time()
            if ready or remaining <= 0:
                return ready
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._updates_ready.wait(), timeout=remaining)

    def _send(self, method: str, params: dict[str, Any], text: str) -> tuple[int, Any]:
        """Store a sent message and return it."""
        chat_id = int(params["chat_id"])
        markup = params.get("reply_markup")
        if markup is not None:
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    data = button.get("callback_data", "")
                    if not 1 <= len(data.encode("utf-8")) <= 64:
                        return 400, "Bad Request: BUTTON_DATA_INVALID"
        if not text and method == "sendMessage":
            return 400, "Bad Request: message text is empty"
        if len(text) > (4096 if method == "sendMessage" else 1024):
            return 400, "Bad Request: message is too long"
        extra: dict[str, Any] = {}
        if method == "sendDocument":
            upload = params.get("document") or {}
            extra["document"] = {
                "file_id": f"doc{len(self.messages)}",
                "file_unique_id": f"udoc{len(self.messages)}",
                "file_name": upload.get("filename", "file"),
                "file_size": upload.get("size", 0),
            }
        if method == "sendPhoto":
            upload = params.get("photo") or {}
            extra["photo"] = [
                {
                    "file_id": f"ph{len(self.messages)}",
                    "file_unique_id": f"uph{len(self.messages)}",
                    "width": 640,
                    "height": 480,
                    "file_size": upload.get("size", 0),
                }
            ]
        message = BotMessage(
            message_id=self._next_message_id(chat_id),
            chat_id=chat_id,
            method=method,
            text=text,
            reply_markup=markup,
            at=time.monotonic(),
            date=int(self.clock()),
            extra=extra,
        )
        self.messages.append(message)
        return 200, self._message_json(message)

    def _m_getMe(self, _params: dict[str, Any]) -> tuple[int, Any]:
        """The bot itself."""
        return 200, {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "City partners",
            "username": self.username,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _m_setWebhook(self, params: dict[str, Any]) -> tuple[int, Any]:
        """Register the webhook URL and secret."""
        secret = params.get("secret_token")
        if secret is not None and not (
            1 <= len(secret) <= 256 and all(c.isalnum() or c in "_-" for c in secret)
        ):
            return 400, "Bad Request: secret token contains unallowed characters"
        self.webhook_url = str(params.get("url", ""))
        self.webhook_secret = secret
        self.webhook_allowed = params.get("allowed_updates")
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return 200, True

    def _m_deleteWebhook(self, params: dict[str, Any]) -> tuple[int, Any]:
        """Forget the webhook."""
        self.webhook_url, self.webhook_secret = "", None
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return 200, True

    def _m_getWebhookInfo(self, _params: dict[str, Any]) -> tuple[int, Any]:
        """What is registered."""
        return 200, {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }

    def _m_sendMessage(self, params: dict[str, Any]) -> tuple[int, Any]:
        """A text message."""
        return self._send("sendMessage", params, str(params.get("text", "")))

    def _m_sendDocument(self, params: dict[str, Any]) -> tuple[int, Any]:
        """A document."""
        return self._send("sendDocument", params, str(params.get("caption", "")))

    def _m_sendPhoto(self, params: dict[str, Any]) -> tuple[int, Any]:
        """A photo."""
        return self._send("sendPhoto", params, str(params.get("caption", "")))

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> tuple[int, Any]:
        """Stop the button's spinner; a query is answered once."""
        query_id = str(params.get("callback_query_id"))
        if self.queries.get(query_id, True):
            return (
                400,
                "Bad Request: query is too old and response timeout expired"
                " or query ID is invalid",
            )
        self.queries[query_id] = True
        return 200, True

    def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> tuple[int, Any]:
        """Replace (or, without reply_markup, remove) a message's inline keyboard."""
        chat_id, message_id = params.get("chat_id"), params.get("message_id")
        found = [m for m in self.messages if m.chat_id == chat_id and m.message_id == message_id]
        if not found:
            return 400, "Bad Request: message to edit not found"
        message = found[0]
        markup = params.get("reply_markup") or None
        if markup is not None and not markup.get("inline_keyboard"):
            markup = None
        if markup == message.reply_markup:
            return 400, (
                "Bad Request: message is not modified: specified new message content and reply"
                " markup are exactly the same as a current content and reply markup of the message"
            )
        message.reply_markup = markup
        return 200, self._message_json(message)

    def _m_setMyCommands(self, params: dict[str, Any]) -> tuple[int, Any]:
        """Register the command menu for a language (None: everyone else)."""
        commands = params.get("commands") or []
        for command in commands:
            name, description = command.get("command", ""), command.get("description", "")
            valid = 1 <= len(name) <= 32 and all(
                c.islower() or c.isdigit() or c == "_" for c in name
            )
            if not valid or not 1 <= len(description) <= 256:
                return 400, "Bad Request: BOT_COMMAND_INVALID"
        self.commands[params.get("language_code") or None] = commands
        return 200, True

    def _m_getMyCommands(self, params: dict[str, Any]) -> tuple[int, Any]:
        """The command menu of a language."""
        return 200, self.commands.get(params.get("language_code") or None, [])


# -- the harness: our app served on loopback, wired to the fake ----------------------------


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
