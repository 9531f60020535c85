"""The fake Telegram Bot API server: its lifecycle, the people it plays, request handling."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.telegram_methods import TelegramMethods
from tests.fakes.telegram_protocol import (
    LOOPBACK,
    SECRET_HEADER,
    SEND_METHODS,
    Call,
    Scripted,
    _parse_multipart,
    _parse_params,
)


class FakeTelegram(TelegramMethods):
    """The fake Bot API server and the people who talk to the bot through it."""

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

    # -- the people ------------------------------------------------------------------------

    def _user(self, chat_id: int, language_code: str | None) -> dict[str, Any]:
        """A Telegram user whose private chat has the same id."""
        user: dict[str, Any] = {"id": chat_id, "is_bot": False, "first_name": f"User{chat_id}"}
        if language_code:
            user["language_code"] = language_code
        return user

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
