"""Twilio's async HTTP client pointed at TWILIO_API_BASE_URL, always with a timeout; a pacer.

twilio-python has no base-URL option: every domain hard-codes `https://<product>.twilio.com`.
Its supported hook is a custom `HttpClient` (advanced-examples/custom-http-client.md), so
`BaseUrlHttpClient` rewrites those hosts to the configured base (a local server or the test
fake) and applies a total timeout to every request (`AsyncTwilioHttpClient` ignores its own
client-level timeout, twilio-python #925). It logs nothing: URLs hold the account SID.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import re
import time

import aiohttp
from twilio.http import AsyncHttpClient
from twilio.http.response import Response

TWILIO_API = "https://api.twilio.com"
_TWILIO_HOST = re.compile(r"^https://[A-Za-z0-9.-]+\.twilio\.com(?=/|$)")

# The Retry-After of the last throttled or failed answer in the current task (the sender reads
# it after twilio raises TwilioRestException, which does not carry response headers).
retry_after_hint: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "twilio_retry_after", default=None
)


def rewrite_url(url: str, base_url: str) -> str:
    """Point a `https://*.twilio.com/...` URL at `base_url` (unchanged for Twilio's own)."""
    base = base_url.rstrip("/")
    if base == TWILIO_API:
        return url
    return _TWILIO_HOST.sub(base, url, count=1)


def parse_retry_after(value: str | None, *, cap: float = 300.0) -> float | None:
    """Read a Retry-After header given in seconds; None when absent or not a number."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return min(max(seconds, 0.0), cap)


def basic_auth(username: str, password: str) -> str:
    """The value of an HTTP Basic Authorization header."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _pairs(values: dict[str, object] | None) -> list[tuple[str, str]]:
    """Flatten form values (lists repeat their key, as Twilio expects) into string pairs."""
    pairs: list[tuple[str, str]] = []
    for key, value in (values or {}).items():
        items = value if isinstance(value, list | tuple) else [value]
        pairs += [(key, str(item)) for item in items if item is not None]
    return pairs


class BaseUrlHttpClient(AsyncHttpClient):  # type: ignore[misc]
    """An aiohttp-based twilio HttpClient with a base-URL rewrite and a mandatory timeout."""

    def __init__(self, *, base_url: str = TWILIO_API, timeout: float = 10.0) -> None:
        """Send to `base_url` instead of Twilio's hosts; give up on a request after `timeout`."""
        super().__init__(logger=None, is_async=True, timeout=timeout)
        self.base_url = base_url
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        """The pooled session, created on first use inside the running event loop."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30)
            )
        return self._session

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - twilio's HttpClient signature
        allow_redirects: bool = False,
    ) -> Response:
        """Make one request; raise TimeoutError after the timeout, aiohttp.ClientError on I/O."""
        limit = aiohttp.ClientTimeout(total=timeout or self.timeout)
        retry_after_hint.set(None)
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = basic_auth(*auth)
        as_json = headers.get("Content-Type") == "application/json"
        async with self._client().request(
            method.upper(),
            rewrite_url(uri, self.base_url),
            params=_pairs(params) if params else None,
            data=None if as_json or not data else _pairs(data),
            json=data if as_json else None,
            headers=headers,
            timeout=limit,
            allow_redirects=allow_redirects,
        ) as answer:
            text = await answer.text()
            if answer.status == 429 or answer.status >= 500:
                retry_after_hint.set(parse_retry_after(answer.headers.get("Retry-After")))
            return Response(answer.status, text, dict(answer.headers))

    async def close(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None


class Pacer:
    """Spaces calls evenly at `rate` per second (GCRA: a token bucket `burst` deep).

    Callers take turns: each reserves the next free slot and sleeps until it; after a stall
    (woken more than one interval late) the schedule restarts from the wake-up, so a busy
    event loop never lets the callers queued behind it out in a burst. `pause` pushes every
    later slot back after the platform says "too many". The rate is per process.
    """

    def __init__(self, rate: float, *, burst: int = 1) -> None:
        """Allow `rate` calls per second, at most `burst` back to back."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.tolerance = self.interval * max(0, burst - 1)
        self._next = 0.0
        self._turn = asyncio.Lock()

    def reserve(self, now: float) -> float:
        """Take the next slot at or after `now`; return how long to wait for it."""
        slot = max(now - self.tolerance, self._next)
        self._next = slot + self.interval
        return max(0.0, slot - now)

    async def wait(self) -> None:
        """Wait for this caller's turn."""
        async with self._turn:
            now = time.monotonic()
            slot = now + self.reserve(now)
            if slot > now:
                await asyncio.sleep(slot - now)
            woke = time.monotonic()
            if woke - slot > self.interval:  # a stall, not jitter: restart the schedule here
                self._next = max(self._next, woke + self.interval - self.tolerance)

    def pause(self, seconds: float) -> None:
        """Send nothing for `seconds` from now."""
        self._next = max(self._next, time.monotonic() + seconds)
