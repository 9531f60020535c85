"""The fake Twilio API: the Messages and Content APIs and its webhooks, on loopback."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import threading
import time
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from tests.fakes.loopback import LOOPBACK, _LoopThread
from tests.fakes.twilio_protocol import ERRORS, Scripted, SentMessage, new_sid, sign


class FakeTwilioAPI:
    """Twilio's Messages and Content APIs and its webhooks, on loopback."""

    def __init__(
        self,
        *,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "test-auth-token",
        rate_per_second: float | None = None,
        burst: int | None = None,
        deliver_to: str | None = None,
        auto_status: tuple[str, ...] = (),
    ) -> None:
        """Accept this account; limit to `rate_per_second` (burst: default 5 % of a second)."""
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.validator = RequestValidator(auth_token)
        self.rate = rate_per_second
        self.burst = burst or (max(1, int(rate_per_second * 0.05)) if rate_per_second else 1)
        self.deliver_to = deliver_to
        self.auto_status = auto_status
        self.status_before_answer: str | None = None  # a callback that beats the 201 answer
        self.stall_every = 0  # see `stall`
        self.stall_seconds = 0.0
        self.messages: list[SentMessage] = []
        self.contents: list[dict[str, Any]] = []
        self.throttled = 0
        self.requests = 0
        self.callbacks: list[tuple[str, str, int]] = []  # (sid, status, HTTP status)
        self._scripts: dict[str, list[Scripted]] = {}
        self._lock = threading.Lock()
        self._tat = 0.0
        self._loop: _LoopThread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Where the fake listens (use as TWILIO_API_BASE_URL)."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> FakeTwilioAPI:
        """Listen on a random loopback port."""
        self._loop = _LoopThread("fake-twilio")
        self._loop.run(self._start())
        return self

    async def _start(self) -> None:
        """Start the aiohttp site."""
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", self._create_message)
        app.router.add_post("/v1/Content", self._create_content)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]
        self._session = aiohttp.ClientSession()

    def stop(self) -> None:
        """Stop listening."""
        if self._loop is None:
            return
        self._loop.run(self._stop())
        self._loop.close()
        self._loop = None

    async def _stop(self) -> None:
        """Close the site and the callback client."""
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> FakeTwilioAPI:
        """Start."""
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        """Stop."""
        self.stop()

    # -- scripting and inspection ----------------------------------------------------------------

    def fail(
        self,
        to: str,
        code: int,
        *,
        times: int = 1,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next `times` messages to `to` with Twilio error `code` (-1: always)."""
        http, message = ERRORS.get(code, (status or 400, f"Error {code}"))
        self._script(to, Scripted(code, status or http, message, times, retry_after))

    def delay(self, to: str, seconds: float, *, times: int = 1) -> None:
        """Answer the next `times` messages to `to` only after `seconds`."""
        self._script(to, Scripted(None, 201, "", times, delay=seconds))

    def stall(self, seconds: float, *, every: int) -> None:
        """Hold the whole API for `seconds` before every `every`-th request is counted.

        A congested link or a busy Twilio: the requests sent meanwhile wait on the way, then
        arrive (and are counted against the rate) together; their answers come late, then
        fast. `every=0` stops it.
        """
        self.stall_seconds, self.stall_every = seconds, every

    def _script(self, to: str, scripted: Scripted) -> None:
        """Queue a scripted answer for a recipient."""
        with self._lock:
            self._scripts.setdefault(to.removeprefix("whatsapp:"), []).append(scripted)

    def _next_script(self, to: str) -> Scripted | None:
        """Take the scripted answer for a recipient, if any."""
        with self._lock:
            queue = self._scripts.get(to.removeprefix("whatsapp:"), [])
            if not queue:
                return None
            scripted = queue[0]
            if scripted.times > 0:
                scripted.times -= 1
                if scripted.times == 0:
                    queue.pop(0)
            return scripted

    def sent(self) -> list[SentMessage]:
        """Every message accepted so far."""
        with self._lock:
            return list(self.messages)

    def sent_to(self, address: str) -> list[SentMessage]:
        """The messages accepted for one recipient."""
        bare = address.removeprefix("whatsapp:")
        return [m for m in self.sent() if m.address == bare]

    def message(self, sid: str) -> SentMessage:
        """One accepted message by SID."""
        return next(m for m in self.sent() if m.sid == sid)

    # -- the Messages API ----------------------------------------------------------------------

    def _error(
        self, code: int, status: int, message: str, retry_after: float | None = None
    ) -> web.Response:
        """A Twilio-shaped error answer."""
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
        return web.json_response(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status=status,
            headers=headers,
        )

    def _authorized(self, request: web.Request) -> bool:
        """Whether Basic auth carries this account's SID and token."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return secrets.compare_digest(header[6:], expected)

    def _admit(self) -> bool:
        """GCRA rate check: False when this request exceeds the configured rate."""
        if self.rate is None:
            return True
        interval = 1.0 / self.rate
        now = time.monotonic()
        with self._lock:
            if self._tat - now > interval * (self.burst - 1):
                self.throttled += 1
                return False
            self._tat = max(self._tat, now) + interval
            return True

    async def _create_message(self, request: web.Request) -> web.Response:
        """POST Messages.json: validate, apply scripts and the rate, record, answer 201."""
        with self._lock:
            self.requests += 1
            stalled = self.stall_every > 0 and self.requests % self.stall_every == 0
        if stalled:  # blocks this server's loop: every request behind it waits, as on the wire
            time.sleep(self.stall_seconds)  # noqa: ASYNC251
        if not self._authorized(request):
            return self._error(20003, 401, ERRORS[20003][1])
        if request.match_info["account"] != self.account_sid:
            return self._error(20404, 404, ERRORS[20404][1])
        if not self._admit():
            return self._error(20429, 429, ERRORS[20429][1])
        form = await request.post()
        params = {k: str(v) for k, v in form.items()}
        to = params.get("To", "")
        scripted = self._next_script(to) if to else None
        if scripted is not None and scripted.delay:
            await asyncio.sleep(scripted.delay)
        if scripted is not None and scripted.code is not None:
            return self._error(
                scripted.code, scripted.status, scripted.message, scripted.retry_after
            )
        problem = self._invalid(params)
        if problem is not None:
            return self._error(problem, *ERRORS[problem])
        variables = params.get("ContentVariables")
        message = SentMessage(
            sid=new_sid(),
            to=to,
            from_=params.get("From", ""),
            body=params.get("Body"),
            content_sid=params.get("ContentSid"),
            content_variables=json.loads(variables) if variables else None,
            media_urls=[str(v) for v in form.getall("MediaUrl", [])],
            status_callback=params.get("StatusCallback"),
            at=time.monotonic(),
            params=params,
        )
        with self._lock:
            self.messages.append(message)
        if self.status_before_answer and self.deliver_to and message.status_callback:
            await self._status(message.sid, self.status_before_answer, None)
        if self.auto_status and self.deliver_to and message.status_callback:
            asyncio.get_running_loop().create_task(self._auto(message.sid))
        return web.json_response(self._resource(message), status=201)

    @staticmethod
    def _invalid(params: dict[str, str]) -> int | None:
        """The Twilio error code a malformed create request gets, if any."""
        if not params.get("To"):
            return 21604
        if not params.get("Body") and not params.get("ContentSid") and "MediaUrl" not in params:
            return 21602
        if len(params.get("Body", "")) > 1600:
            return 21617
        if params.get("ContentVariables"):
            try:
                if not isinstance(json.loads(params["ContentVariables"]), dict):
                    return 21656
            except ValueError:
                return 21656
        return None

    def _resource(self, message: SentMessage) -> dict[str, Any]:
        """The Message resource JSON Twilio answers."""
        now = formatdate(usegmt=True)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{message.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": message.body or "",
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": message.from_,
            "messaging_service_sid": None,
            "num_media": str(len(message.media_urls)),
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": message.sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": message.to,
            "uri": f"{uri}.json",
        }

    async def _create_content(self, request: web.Request) -> web.Response:
        """POST /v1/Content: record a Content template and answer it with a new HX SID."""
        if not self._authorized(request):
            return self._error(20003, 401, ERRORS[20003][1])
        payload = await request.json()
        resource = {
            "sid": new_sid("HX"),
            "account_sid": self.account_sid,
            "friendly_name": payload.get("friendly_name"),
            "language": payload.get("language"),
            "variables": payload.get("variables") or {},
            "types": payload.get("types") or {},
            "url": "https://content.twilio.com/v1/Content",
            "date_created": "2026-11-02T09:00:00Z",
            "date_updated": "2026-11-02T09:00:00Z",
            "links": {},
        }
        with self._lock:
            self.contents.append(resource)
        return web.json_response(resource, status=201)

    # -- Twilio's webhooks -----------------------------------------------------------------------

    async def _post_signed(self, url: str, params: dict[str, str]) -> int:
        """Post a form signed for `url` to the bot's loopback address; return the HTTP status."""
        if self.deliver_to is None or self._session is None:
            raise RuntimeError("deliver_to (the bot's loopback URL) is not set")
        parts = urlsplit(url)
        target = (
            self.deliver_to.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        )
        if urlsplit(target).hostname != LOOPBACK:
            raise ValueError("the fake only delivers to loopback")
        headers = {"X-Twilio-Signature": sign(self.auth_token, url, params)}
        async with self._session.post(target, data=params, headers=headers) as answer:
            await answer.read()
            return answer.status

    def status_params(
        self, sid: str, status: str, error_code: str | None = None
    ) -> dict[str, str]:
        """The form of a status callback for an accepted message."""
        message = self.message(sid)
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "ChannelPrefix": "whatsapp",
            "ChannelInstallSid": new_sid("XE"),
            "ChannelToAddress": message.address,
            "From": message.from_,
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "StructuredMessage": "false",
            "To": message.to,
        }
        if error_code:
            params["ErrorCode"] = error_code
        return params

    async def _status(self, sid: str, status: str, error_code: str | None) -> int:
        """Send one status callback."""
        message = self.message(sid)
        if not message.status_callback:
            raise ValueError("the message has no StatusCallback")
        code = await self._post_signed(
            message.status_callback, self.status_params(sid, status, error_code)
        )
        with self._lock:
            self.callbacks.append((sid, status, code))
        return code

    async def _auto(self, sid: str) -> None:
        """Play the configured statuses for a new message, a little later."""
        for status in self.auto_status:
            await asyncio.sleep(0.05)
            with contextlib.suppress(aiohttp.ClientError):
                await self._status(sid, status, None)

    def send_callback(self, url: str, params: dict[str, str]) -> int:
        """Post any signed form to a public URL of the bot (delivered to its loopback address)."""
        assert self._loop is not None
        return self._loop.run(self._post_signed(url, params))

    def send_status(self, sid: str, status: str, *, error_code: str | None = None) -> int:
        """Send a signed status callback for a message; return the bot's HTTP status."""
        assert self._loop is not None
        return self._loop.run(self._status(sid, status, error_code))

    def send_inbound(self, public_url: str, form: dict[str, str]) -> int:
        """Deliver a signed inbound message, as Twilio would, to the bot's loopback address."""
        assert self._loop is not None
        return self._loop.run(self._post_signed(public_url, form))
