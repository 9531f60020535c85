"""The WhatsApp channel through Twilio: signed webhooks in, the Messages API out.

- `POST /whatsapp/inbound`: checks X-Twilio-Signature over the whole form against
  PUBLIC_BASE_URL + path (not the request's URL, which a proxy changes), stores the message in
  the inbox deduplicated by MessageSid, and answers an empty `<Response/>` at once; the reply
  goes out later through the outbox and the REST API.
- `POST /whatsapp/status`: signed delivery callbacks move the outbound message's status forward
  (queued < sent < delivered < read; failed and undelivered are terminal), keeping Twilio's error
  code; a late 63016 holds the message as `needs_template`, a late 21610 opts the contact out.

`From` is an opaque address: `whatsapp:+2327…` and business-scoped ids (`whatsapp:US.…`) alike
become the URN `whatsapp:<address>`. Logs carry ids only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from sqlmodel import Session
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from twilio.request_validator import RequestValidator, get_signature_algorithm

from bot.channels.whatsapp_render import load_content
from bot.channels.whatsapp_sender import NEEDS_TEMPLATE, OPTED_OUT, WhatsAppSender
from bot.dispatcher import Sender
from bot.settings import Settings
from handlers.messages import Inbound
from storage import contacts, outbox
from storage.db import session_scope
from storage.models import OutboxMessage

if TYPE_CHECKING:
    from bot.runtime import Runtime

logger = logging.getLogger(__name__)

INBOUND_PATH = "/whatsapp/inbound"
STATUS_PATH = "/whatsapp/status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
MAX_FORM_BYTES = 256 * 1024
STATUS_RETRY_DELAYS = (0.5, 2.0, 5.0)  # a callback may beat the recording of the message id
LATE_FAILURES = frozenset({str(NEEDS_TEMPLATE), str(OPTED_OUT)})
SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
# Every MessageStatus Twilio documents; anything else is acknowledged and ignored.
KNOWN_STATUSES = frozenset(
    {
        "accepted",
        "scheduled",
        "canceled",
        "queued",
        "sending",
        "sent",
        "failed",
        "delivered",
        "undelivered",
        "receiving",
        "received",
        "read",
        "partially_delivered",
    }
)


def _twiml() -> Response:
    """The empty TwiML answer: nothing to say now, the reply goes through the API."""
    return Response(EMPTY_TWIML, media_type="text/xml")


def _address(value: str) -> str:
    """The opaque WhatsApp address of a `From`/`To` value (a phone number or a scoped id)."""
    return value.strip().removeprefix("whatsapp:")


def _valid_sid(value: str | None) -> bool:
    """Whether a value looks like a Twilio SID: two capital letters and 32 hex digits."""
    return value is not None and SID.fullmatch(value) is not None


def _valid_address(value: str) -> bool:
    """Whether an address is something a person could have (printable, at most 64 long)."""
    return 0 < len(value) <= 64 and value.isprintable()


class WhatsAppChannel:
    """WhatsApp via Twilio: the two webhooks and the sender."""

    name = "whatsapp"

    def __init__(self, *, settings: Settings, runtime: Runtime | None = None) -> None:
        """Check the configuration and build the sender; the runtime may be attached later."""
        if not (
            settings.twilio_account_sid
            and settings.twilio_auth_token
            and settings.twilio_whatsapp_from
        ):
            raise ValueError(
                "WhatsApp needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_WHATSAPP_FROM"
            )
        if not settings.public_base_url:
            raise ValueError(
                "WhatsApp needs PUBLIC_BASE_URL: Twilio signs webhooks against the public URL"
            )
        self.settings = settings
        self.public_base_url = settings.public_base_url.rstrip("/")
        token = settings.twilio_auth_token.get_secret_value()
        self.validator = RequestValidator(token)
        sender_address = settings.twilio_whatsapp_from
        if not sender_address.startswith("whatsapp:"):
            sender_address = f"whatsapp:{sender_address}"
        self.whatsapp_sender = WhatsAppSender(
            account_sid=settings.twilio_account_sid,
            auth_token=token,
            from_address=sender_address,
            api_base_url=settings.twilio_api_base_url,
            status_callback=self.public_base_url + STATUS_PATH,
            content=load_content(settings.whatsapp_templates_file),
            rate_per_second=settings.whatsapp_rate_per_second,
            burst_seconds=settings.whatsapp_burst_seconds,
            timeout=settings.send_timeout_seconds,
        )
        self.sender: Sender = self.whatsapp_sender
        self.runtime: Runtime | None = None
        self._later: set[asyncio.Task[None]] = set()
        if runtime is not None:
            self.attach(runtime)

    def attach(self, runtime: Runtime) -> None:
        """Bind the runtime (database, clock, inbox) this channel feeds."""
        self.runtime = runtime
        self.whatsapp_sender.bind(engine=runtime.engine, clock=runtime.clock)

    def _runtime(self) -> Runtime:
        """The attached runtime."""
        if self.runtime is None:
            raise RuntimeError("WhatsAppChannel.attach(runtime) was not called")
        return self.runtime

    def routes(self) -> list[BaseRoute]:
        """POST /whatsapp/inbound and POST /whatsapp/status."""
        return [
            Route(INBOUND_PATH, self.inbound, methods=["POST"]),
            Route(STATUS_PATH, self.status, methods=["POST"]),
        ]

    async def start(self) -> None:
        """Nothing to register: the webhook URLs are set in the Twilio console."""
        logger.info(
            "whatsapp channel ready sender_rate=%s/s", self.settings.whatsapp_rate_per_second
        )

    async def start_sending(self) -> None:
        """Nothing to connect: sending needs only the REST client."""
        await self.start()

    async def stop(self) -> None:
        """Cancel pending callback retries and close the HTTP client."""
        for task in list(self._later):
            task.cancel()
        await asyncio.gather(*self._later, return_exceptions=True)
        await self.whatsapp_sender.close()

    # -- webhooks ------------------------------------------------------------------------------

    async def _signed_form(self, request: Request) -> ImmutableMultiDict[str, str] | None:
        """The request's form when its Twilio signature is valid for our public URL; else None."""
        signature = request.headers.get("X-Twilio-Signature")
        if not signature:
            return None
        raw = await request.body()
        if len(raw) > MAX_FORM_BYTES:
            return None
        form = ImmutableMultiDict(
            parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        )
        url = self.public_base_url + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        algorithm = get_signature_algorithm(
            request.headers.get("X-Twilio-Webhooks-Signature-Settings")
        )
        try:  # the URL as configured first; `validate` also tries it with and without the port
            expected = self.validator.compute_signature(url, form, algorithm)
        except ValueError:  # an algorithm twilio does not know
            return None
        if hmac.compare_digest(expected.encode(), signature.encode()):
            return form
        return form if self.validator.validate(url, form, signature, algorithm) else None

    async def inbound(self, request: Request) -> Response:
        """Store a signed inbound message once, then answer `<Response/>`."""
        form = await self._signed_form(request)
        if form is None:
            logger.warning("whatsapp inbound rejected: bad or missing signature")
            return PlainTextResponse("invalid signature", status_code=403)
        sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
        sender = form.get("From", "")
        if not _valid_sid(sid) or not _valid_address(_address(sender)):
            logger.warning("whatsapp inbound rejected: no valid MessageSid or From")
            return PlainTextResponse("a valid MessageSid and From are required", status_code=400)
        assert sid is not None
        runtime = self._runtime()
        choice = form.get("ButtonPayload") or form.get("ListId") or None
        text = form.get("Body") or form.get("ButtonText") or form.get("ListTitle") or ""
        stored = await runtime.accept(
            Inbound(
                urn=f"whatsapp:{_address(sender)}",
                text=text,
                received_at=runtime.clock.now(),
                choice_id=choice,
            ),
            external_id=sid,
        )
        logger.info("whatsapp inbound sid=%s stored=%s", sid, stored)
        return _twiml()

    async def status(self, request: Request) -> Response:
        """Apply a signed delivery status callback."""
        form = await self._signed_form(request)
        if form is None:
            logger.warning("whatsapp status rejected: bad or missing signature")
            return PlainTextResponse("invalid signature", status_code=403)
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        status = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
        if not _valid_sid(sid) or not status:
            return PlainTextResponse(
                "a valid MessageSid and a MessageStatus are required", status_code=400
            )
        if status not in KNOWN_STATUSES:  # acknowledged, so Twilio does not retry it; unlogged
            self._runtime().count('whatsapp_status_total{result="unknown_status"}')
            return _twiml()
        error = (form.get("ErrorCode") or "").strip() or None
        found = await asyncio.to_thread(self._apply_status, sid, status, error)
        if found is None:
            logger.info("whatsapp status for unknown sid=%s status=%s: retried later", sid, status)
            self._retry_later(sid, status, error)
        else:
            self._count_status(sid, status, found)
        return _twiml()

    def _count_status(self, sid: str, status: str, moved: bool | None) -> None:
        """Log and count what a callback did: applied, ignored (a regression) or unknown."""
        result = {True: "applied", False: "ignored", None: "unknown"}[moved]
        self._runtime().count(f'whatsapp_status_total{{result="{result}"}}')
        if moved is None:
            logger.warning("whatsapp status for unknown sid=%s status=%s dropped", sid, status)
        elif moved:
            logger.info("whatsapp status sid=%s status=%s", sid, status)
        else:
            logger.info("whatsapp status sid=%s status=%s ignored: not forward", sid, status)

    def _apply_status(self, sid: str, status: str, error: str | None) -> bool | None:
        """Record a status; True if it moved, False if ignored, None if the id is not known yet."""
        runtime = self._runtime()
        now = runtime.clock.now()
        with session_scope(runtime.engine) as session:
            if status in ("failed", "undelivered") and error in LATE_FAILURES:
                row = outbox.get_by_provider_id(session=session, provider_id=sid)
                if row is not None and row.id is not None and row.status not in outbox.TERMINAL:
                    self._late_failure(session, row, error or "", now)
                    return True
            return outbox.apply_status(
                session=session, provider_id=sid, status=status, now=now, error_code=error
            )

    @staticmethod
    def _late_failure(session: Session, row: OutboxMessage, error: str, now: datetime) -> None:
        """A late 63016 holds the message as needs_template; a late 21610 opts the contact out."""
        late_template = error == str(NEEDS_TEMPLATE)
        outbox.mark_failed(
            session=session,
            message_id=row.id or 0,
            now=now,
            code=error,
            reason="Twilio reported " + error,
            status="needs_template" if late_template else "failed",
        )
        if not late_template and row.contact_id is not None:
            contact = contacts.get_contact(session=session, contact_id=row.contact_id)
            if contact is not None:
                contacts.update_contact(session=session, contact=contact, opted_out=True)

    def _retry_later(self, sid: str, status: str, error: str | None) -> None:
        """Try an early callback again shortly (the send may not be recorded yet)."""

        async def again() -> None:
            """Apply the callback after each delay until the message is known."""
            moved: bool | None = None
            for delay in STATUS_RETRY_DELAYS:
                await asyncio.sleep(delay)
                moved = await asyncio.to_thread(self._apply_status, sid, status, error)
                if moved is not None:
                    break
            self._count_status(sid, status, moved)

        with contextlib.suppress(RuntimeError):
            task = asyncio.get_running_loop().create_task(again())
            self._later.add(task)
            task.add_done_callback(self._later.discard)
