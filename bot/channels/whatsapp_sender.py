"""The WhatsApp sender: the 24-hour window, rendering, pacing, and Twilio errors classified.

The dispatcher sends to many contacts at once; this sender paces the calls to the configured
messages per second of the sender number as Twilio counts them, on arrival (`Pacer`: starts
spaced, answers and overdue calls counted, so a stall cannot bunch them up), sends through
twilio's own async client (with a timeout, over `TWILIO_API_BASE_URL`) and turns Twilio's
answers into `Sent` or `SendError`:

- 21610 (the contact unsubscribed from the number) → `opted_out`;
- 63016 (outside the window without a template) → `needs_template`;
- 429, 20429, 63018 and 5xx → `retry` (after Retry-After when given; the pacer pauses too);
- unknown or unreachable WhatsApp address (21211, 63003, 63024) → `blocked`;
- a timeout → `fatal`: Twilio may have accepted the message, and a retry could send it twice;
- anything else → `fatal` with Twilio's code and message.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy.engine import Engine
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.rest import Client

from bot.channels.whatsapp_http import BaseUrlHttpClient, Pacer, retry_after_hint
from bot.channels.whatsapp_render import (
    ContentConfig,
    TemplateError,
    WhatsAppRequest,
    session_requests,
    template_request,
)
from bot.clock import Clock
from bot.dispatcher import Job, SendError, Sent
from handlers.messages import Outgoing
from storage import contacts
from storage.db import read_scope

logger = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
# Kinds that answer a message the contact just sent (the router's replies and opt-out notices).
REPLY_KINDS = frozenset({"reply", "opt_out"})
OPTED_OUT, NEEDS_TEMPLATE = 21610, 63016
THROTTLED = frozenset({20429, 63018})
UNREACHABLE = frozenset({21211, 63003, 63024})
THROTTLE_PAUSE = 0.25  # seconds without sending after a 429 that names no Retry-After
# How many seconds' worth of messages the platform accepts arriving at once (GCRA tolerance):
# 50 ms, as the fake Twilio enforces. Calls in flight are capped at that many, so full speed
# needs answers within about half of it; over a slow link a larger value keeps the rate.
BURST_SECONDS = 0.05
KNOWN_STATUSES = frozenset({"queued", "sent", "delivered", "read"})
_NUMBERS = re.compile(r"\+?\d[\d ()-]{6,}\d")


@dataclass(frozen=True, slots=True)
class Recipient:
    """What the sender needs to know about a contact before writing to them."""

    opted_out: bool
    last_inbound_at: datetime | None


def window_open(last_inbound_at: datetime | None, now: datetime) -> bool:
    """Whether the 24-hour customer-service window is open (it opens with each inbound)."""
    return last_inbound_at is not None and now - last_inbound_at < WINDOW


def redact(text: str, address: str) -> str:
    """Drop the recipient's address and any phone number from a provider's error message."""
    if address:
        text = text.replace(address, "<recipient>")
    return _NUMBERS.sub("<number>", text)[:300]


def classify(
    status: int, code: int | None, message: str, address: str, retry_after: float | None
) -> SendError:
    """Turn Twilio's error (HTTP status, Twilio code, message) into what the dispatcher does."""
    label = str(code or status)
    reason = redact(message or f"HTTP {status}", address)
    if code == OPTED_OUT:
        return SendError("opted_out", label, reason)
    if code == NEEDS_TEMPLATE:
        return SendError("needs_template", label, reason)
    if status == 429 or code in THROTTLED or status >= 500:
        return SendError("retry", label, reason, retry_after=retry_after)
    if code in UNREACHABLE:
        return SendError("blocked", label, reason)
    return SendError("fatal", label, reason)


def error_fields(exc: TwilioRestException | TwilioServiceException) -> tuple[int, int | None, str]:
    """The HTTP status, Twilio code and message of either of twilio's API exceptions."""
    code = int(exc.code) if exc.code else None
    if isinstance(exc, TwilioServiceException):
        return int(exc.status or 0), code, str(exc.detail or exc.title or "")
    return int(exc.status or 0), code, str(exc.msg or "")


class WhatsAppSender:
    """Sends outbox jobs of the `whatsapp` channel through Twilio's Messages API."""

    channel = "whatsapp"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_address: str,
        api_base_url: str,
        status_callback: str | None,
        content: ContentConfig,
        rate_per_second: float,
        timeout: float,
        burst_seconds: float = BURST_SECONDS,
    ) -> None:
        """Build twilio's client over our HTTP client; nothing connects before the first send."""
        self.from_address = from_address
        self.status_callback = status_callback
        self.content = content
        self.timeout = timeout
        self.http = BaseUrlHttpClient(base_url=api_base_url, timeout=timeout)
        self.client = Client(
            username=account_sid,
            password=auth_token,
            account_sid=account_sid,
            http_client=self.http,
        )
        self.pacer = Pacer(rate_per_second, burst=int(rate_per_second * burst_seconds))
        self.engine: Engine | None = None
        self.clock: Clock | None = None

    def bind(self, *, engine: Engine, clock: Clock) -> None:
        """Give the sender the database (to read the window) and the clock."""
        self.engine, self.clock = engine, clock

    def _recipient(self, contact_id: int | None) -> Recipient | None:
        """Read the contact's opt-out flag and last inbound time."""
        if contact_id is None or self.engine is None:
            return None
        with read_scope(self.engine) as session:  # a read: never waits for the writer
            contact = contacts.get_contact(session=session, contact_id=contact_id)
            if contact is None:
                return None
            return Recipient(opted_out=contact.opted_out, last_inbound_at=contact.last_inbound_at)

    def plan(self, job: Job, recipient: Recipient | None, now: datetime) -> list[WhatsAppRequest]:
        """Decide what to send for a job, or raise SendError without calling Twilio."""
        if recipient is not None and recipient.opted_out and job.kind != "opt_out":
            raise SendError("opted_out", "opted-out", "the contact opted out")
        if recipient is None:
            in_window = job.kind in REPLY_KINDS  # an answer to a message just received
        else:
            in_window = window_open(recipient.last_inbound_at, now)
        if in_window:
            message = Outgoing.from_body(job.body, kind=job.kind)
            return session_requests(message, job.language, self.content)
        template = self.content.template(job.kind, job.language)
        if template is None:
            raise SendError(
                "needs_template",
                "63016-local",
                f"outside the 24-hour window and no approved template for "
                f"{job.kind}/{job.language}",
            )
        try:
            return [template_request(template, job.body)]
        except TemplateError as exc:
            raise SendError("fatal", "template-variable", str(exc)) from exc

    async def send(self, job: Job) -> Sent:
        """Send one outbox message (several Twilio messages when it is long or has media)."""
        recipient = await asyncio.to_thread(self._recipient, job.contact_id)
        now = self.clock.now() if self.clock is not None else datetime.now().astimezone()
        requests = self.plan(job, recipient, now)
        address = job.urn.partition(":")[2]
        sent = Sent(provider_id=None, status="queued")
        for request in requests:
            sent = await self._create(job, address, request.params())
        return sent

    async def _create(self, job: Job, address: str, params: dict[str, Any]) -> Sent:
        """Make one paced Messages.create call and classify what went wrong."""
        if self.status_callback:
            params["status_callback"] = self.status_callback
        try:
            async with self.pacer.slot(), asyncio.timeout(self.timeout + 1.0):
                message = await self.client.messages.create_async(
                    to=f"whatsapp:{address}", from_=self.from_address, **params
                )
        except (TwilioRestException, TwilioServiceException) as exc:
            http_status, code, text = error_fields(exc)
            error = classify(http_status, code, text, address, retry_after_hint.get())
            if http_status == 429 or code in THROTTLED:
                # Every send slows down, not just this one; the message itself is retried later.
                self.pacer.pause(error.retry_after or THROTTLE_PAUSE)
            raise error from None
        except TimeoutError:
            raise SendError(
                "fatal", "timeout", f"no answer from Twilio within {self.timeout:g}s; not retried"
            ) from None
        except aiohttp.ClientError as exc:
            raise SendError("retry", "connection", type(exc).__name__) from None
        status = str(getattr(message.status, "value", message.status) or "queued")
        logger.debug("whatsapp sent message=%s sid=%s status=%s", job.id, message.sid, status)
        return Sent(
            provider_id=message.sid, status=status if status in KNOWN_STATUSES else "queued"
        )

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self.http.close()
