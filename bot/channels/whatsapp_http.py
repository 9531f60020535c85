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
import contextlib
import contextvars
import math
import re
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
from twilio.http import AsyncHttpClient
from twilio.http.response import Response

from bot.waiting import wait_set

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
    """Paces calls to `rate` a second as the platform counts them: when they arrive.

    Twilio counts a request when it arrives, somewhere between our start and its answer; a
    stall on the way (or at Twilio) holds the requests sent meanwhile, which then arrive
    together. Spacing the starts alone (as this pacer used to) let such a bunch exceed the
    platform's tolerance. So each call counts at the latest moment it can have arrived, in a
    GCRA `burst` deep (the platform's tolerance), as Telegram's limiter counts completions:

    - an answered call (or a failed one: it may have arrived too) counts at its answer;
    - a call still in flight may arrive at any moment: it counts as arriving now, so no more
      than `burst` calls can ever land together, however the network delays them;
    - starts are also spaced 1/rate apart, `start_burst` back to back after an idle moment.

    Calls in flight bound the throughput to about `burst` per round trip: at 80/s with a
    burst of 4 (50 ms), full speed needs answers within about 25 ms. `pause` sends nothing
    for a while after the platform says "too many". The rate is per process.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1,
        start_burst: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Allow `rate` calls per second and at most `burst` arriving at once."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.burst = max(1, burst)
        self.start_tolerance = self.interval * (max(1, min(start_burst, self.burst)) - 1)
        self.clock = clock
        self.in_flight = 0
        self._started = 0.0  # GCRA theoretical arrival time of the starts
        self._answered = 0.0  # the same, counting each call at its answer
        self._paused_until = 0.0
        self._turn = asyncio.Lock()
        self._changed = asyncio.Event()

    def delay(self, now: float) -> float:
        """Seconds until a call may start (inf: until a call in flight is answered)."""
        if self.in_flight + 1 > self.burst:
            return math.inf
        tolerance = (self.burst - 1 - self.in_flight) * self.interval
        return max(
            0.0,
            self._paused_until - now,
            self._started - self.start_tolerance - now,
            self._answered - tolerance - now,
        )

    def begin(self, now: float) -> None:
        """Record a start."""
        self._started = max(self._started, now) + self.interval
        self.in_flight += 1

    def end(self, now: float) -> None:
        """Record an answer."""
        self.in_flight -= 1
        self._answered = max(self._answered, now) + self.interval
        self._changed.set()

    async def _acquire(self) -> None:
        """Wait for this caller's turn (first come, first served) and start."""
        async with self._turn:
            while True:
                now = self.clock()
                wait = self.delay(now)
                if wait <= 0:
                    self.begin(now)
                    return
                self._changed.clear()
                await wait_set(self._changed, None if math.isinf(wait) else wait)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a place for one call, from its start to its answer."""
        await self._acquire()
        try:
            yield
        finally:
            self.end(self.clock())

    def pause(self, seconds: float) -> None:
        """Send nothing for `seconds` from now."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)
