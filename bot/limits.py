"""Request-size limits for the ASGI app: bodies over MAX_REQUEST_BYTES are refused with 413.

A declared Content-Length over the limit is refused before anything is read; a body without
one (chunked) or longer than it said is counted while the app reads it, and refused as soon as
it passes the limit. A malformed Content-Length is a 400. Nothing the app decided after reading
too much reaches the client: a refused request never gets a 2xx, and never reaches storage
whole (the app's read raises `BodyTooLarge` before the rest arrives).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1 << 20


def unreachable(error: BaseException) -> bool:
    """Whether a storage error means the database cannot be reached (503) rather than bad data."""
    if isinstance(error, OperationalError | InterfaceError):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


class BodyTooLarge(Exception):
    """Raised inside the app's body read when the body passes the limit."""


def declared_length(scope: Scope) -> int | None:
    """The Content-Length header as an int; None without one; -1 when it is malformed."""
    values = [v for k, v in scope.get("headers", []) if k.lower() == b"content-length"]
    if not values:
        return None
    if len(set(values)) != 1:
        return -1
    raw = values[0].strip()
    if not raw.isdigit():  # bytes: ASCII digits only
        return -1
    return int(raw) if len(raw) <= 18 else 1 << 62


async def refuse(send: Send, status: int, text: str) -> None:
    """Send a short plain-text answer that closes the exchange."""
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _Guard:
    """Counts the body as the app reads it; swallows the app's answer once it was too large."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        """Wrap one request's channels."""
        self._receive, self._send, self.limit = receive, send, limit
        self.seen = 0
        self.exceeded = False
        self.started = False

    async def receive(self) -> Message:
        """Pass a message through, raising once the body so far is over the limit."""
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                self.exceeded = True
                raise BodyTooLarge
        return message

    async def send(self, message: Message) -> None:
        """Pass the app's answer through, unless the body turned out too large."""
        if self.exceeded and not self.started:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class RequestLimits:
    """ASGI middleware refusing request bodies over `max_bytes` (413) and bad lengths (400)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        on_reject: Callable[[str], None] | None = None,
    ) -> None:
        """Wrap `app`; `on_reject(reason)` is told of each refusal (for /metrics)."""
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject

    def _rejected(self, scope: Scope, reason: str) -> None:
        """Count and log one refusal (the path only)."""
        if self.on_reject is not None:
            self.on_reject(reason)
        logger.warning("request refused path=%s reason=%s", scope.get("path", ""), reason)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count the body while the app reads it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared < 0:
            self._rejected(scope, "bad_length")
            await refuse(send, 400, "malformed Content-Length")
            return
        if declared is not None and declared > self.max_bytes:
            self._rejected(scope, "too_large")
            await refuse(send, 413, "request body too large")
            return
        guard = _Guard(receive, send, self.max_bytes)
        with contextlib.suppress(BodyTooLarge):
            await self.app(scope, guard.receive, guard.send)
        if guard.exceeded:
            self._rejected(scope, "too_large")
            if not guard.started:
                await refuse(send, 413, "request body too large")
