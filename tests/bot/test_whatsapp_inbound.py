"""POST /whatsapp/inbound and /whatsapp/status over real HTTP: a table of real payload shapes.

The forms are what Twilio posts for WhatsApp (text, quick-reply tap, list pick, media,
location, a business-scoped user id, new fields) and the signatures are computed with twilio's
own RequestValidator, for the public URL (PUBLIC_BASE_URL + path) or — to show it is refused —
for the URL the bot sees behind the proxy. Here the worker is not running, so what was stored
stays in the inbox to be inspected.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.engine import Engine
from starlette.applications import Starlette

from bot.channels.whatsapp import WhatsAppChannel
from bot.clock import FixedClock
from bot.runtime import build_runtime
from bot.settings import get_settings
from handlers.places import Gazetteer
from storage import inbox, migrate
from storage.db import make_engine, session_scope
from storage.models import InboxEvent
from tests.fakes.twilio_api import AppServer, inbound_form, new_sid, sign

TOKEN = "test-auth-token-inbound"
PUBLIC = "https://bot.example.org"
PHONE = "+23276123456"
BSUID = "US.13491208655302741918"
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@dataclass
class Webhook:
    """The channel's routes served on loopback, with the runtime attached but idle."""

    server: AppServer
    engine: Engine
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=5))

    def post(
        self, path: str, form: dict[str, str], signature: str | None, headers: dict[str, str]
    ) -> httpx.Response:
        """Post a form, with the signature header when one is given."""
        sent = dict(headers)
        if signature is not None:
            sent["X-Twilio-Signature"] = signature
        return self.client.post(self.server.base_url + path, data=form, headers=sent)

    def events(self) -> list[InboxEvent]:
        """Everything stored in the inbox."""
        with session_scope(self.engine) as session:
            return inbox.pending_batch(session=session)


@pytest.fixture(scope="module")
def webhook(places: Gazetteer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    """Serve only the WhatsApp routes (no lifespan: nothing processes what is stored)."""
    folder = tmp_path_factory.mktemp("whatsapp-inbound")
    engine = make_engine(f"sqlite:///{folder}/bot.db")
    migrate.upgrade(engine=engine)
    settings = get_settings(
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token=TOKEN,
        twilio_whatsapp_from="whatsapp:+14155238886",
        twilio_api_base_url="http://127.0.0.1:9",
        public_base_url=PUBLIC,
        whatsapp_templates_file=str(folder / "none.yaml"),
    )
    channel = WhatsAppChannel(settings=settings)
    runtime = build_runtime(
        settings,
        engine=engine,
        clock=FixedClock(START),
        places=places,
        channels={},
        with_scheduler=False,
    )
    channel.attach(runtime)
    with AppServer(Starlette(routes=channel.routes())) as server:
        hook = Webhook(server=server, engine=engine)
        yield hook
        hook.client.close()
    engine.dispose()


@dataclass(frozen=True)
class Case:
    """One inbound webhook request and what must come of it."""

    label: str
    form: dict[str, str]
    status: int = 200
    text: str | None = None  # the stored text; None: nothing stored
    choice: str | None = None
    urn: str = f"whatsapp:{PHONE}"
    sign_url: str | None = PUBLIC + "/whatsapp/inbound"  # None: no signature header
    token: str = TOKEN
    path: str = "/whatsapp/inbound"
    tamper: dict[str, str] = field(default_factory=dict)  # changed after signing
    headers: dict[str, str] = field(default_factory=dict)


def _without(form: dict[str, str], *keys: str) -> dict[str, str]:
    """A form without some fields."""
    return {k: v for k, v in form.items() if k not in keys}


CASES = [
    Case("text", inbound_form(PHONE, "Hello, good morning"), text="Hello, good morning"),
    Case(
        "quick-reply tap",
        inbound_form(
            PHONE,
            "Yes",
            MessageType="button",
            ButtonText="Yes",
            ButtonPayload="s1:#yes",
        ),
        text="Yes",
        choice="s1:#yes",
    ),
    Case(
        "quick-reply tap without Body",
        _without(
            inbound_form(PHONE, ButtonText="No", ButtonPayload="s1:#no", MessageType="button"),
            "Body",
        ),
        text="No",
        choice="s1:#no",
    ),
    Case(
        "list pick",
        inbound_form(
            PHONE,
            "Development needs",
            MessageType="interactive",
            ListId="m:needs",
            ListTitle="Development needs",
        ),
        text="Development needs",
        choice="m:needs",
    ),
    Case(
        "image without caption",
        inbound_form(
            PHONE,
            "",
            MessageType="image",
            NumMedia="1",
            MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1",
            MediaContentType0="image/jpeg",
        ),
        text="",
    ),
    Case(
        "location",
        inbound_form(PHONE, "", MessageType="location", Latitude="8.6439", Longitude="-10.9713"),
        text="",
    ),
    Case(
        "business-scoped user id instead of a phone number",
        inbound_form(BSUID, "Bonjour à toutes et à tous"),
        text="Bonjour à toutes et à tous",
        urn=f"whatsapp:{BSUID}",
    ),
    Case(
        "fields Twilio added later",
        inbound_form(
            PHONE,
            "hi",
            ChannelMetadata='{"type":"whatsapp","data":{"context":{"ProfileName":"A"}}}',
            ExternalUserIdentifier=BSUID,
            SomeFieldFrom2027="x",
        ),
        text="hi",
    ),
    Case("no Body at all", _without(inbound_form(PHONE, "x"), "Body"), text=""),
    Case(
        "signed for the public URL with its default port",
        inbound_form(PHONE, "port"),
        sign_url="https://bot.example.org:443/whatsapp/inbound",
        text="port",
    ),
    Case(
        "a query string is part of what is signed",
        inbound_form(PHONE, "query"),
        path="/whatsapp/inbound?source=twilio",
        sign_url=PUBLIC + "/whatsapp/inbound?source=twilio",
        text="query",
    ),
    Case(
        "SharedKey settings header with the auth token",
        inbound_form(PHONE, "shared"),
        headers={"X-Twilio-Webhooks-Signature-Settings": "algorithm=HMAC_SHA1"},
        text="shared",
    ),
    Case("missing signature", inbound_form(PHONE, "forged"), status=403, sign_url=None),
    Case("signed with another token", inbound_form(PHONE, "forged"), status=403, token="x"),
    Case(
        "a signature that is not base64",
        inbound_form(PHONE, "forged"),
        status=403,
        headers={"X-Twilio-Signature": "%C3%A9t%C3%A9"},
        sign_url=None,
    ),
    Case(
        "signed for the proxy-internal URL",
        inbound_form(PHONE, "internal"),
        status=403,
        sign_url="http://127.0.0.1:8000/whatsapp/inbound",
    ),
    Case(
        "body changed after signing",
        inbound_form(PHONE, "original"),
        status=403,
        tamper={"Body": "changed"},
    ),
    Case(
        "a field added after signing",
        inbound_form(PHONE, "original"),
        status=403,
        tamper={"ButtonPayload": "m:forget"},
    ),
    Case(
        "signed but without MessageSid",
        _without(inbound_form(PHONE, "x"), "MessageSid", "SmsMessageSid", "SmsSid"),
        status=400,
    ),
    Case("signed but without From", _without(inbound_form(PHONE, "x"), "From"), status=400),
]


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_inbound_payloads(webhook: Webhook, case: Case) -> None:
    """Each payload is stored as its neutral message, or refused with nothing stored."""
    signature = sign(case.token, case.sign_url, case.form) if case.sign_url else None
    form = {**case.form, **case.tamper}
    before = len(webhook.events())
    answer = webhook.post(case.path, form, signature, case.headers)
    assert answer.status_code == case.status, answer.text
    events = webhook.events()
    if case.text is None:
        assert len(events) == before
        return
    assert answer.headers["content-type"].startswith("text/xml")
    assert answer.text.endswith("<Response/>")
    [event] = [e for e in events if e.external_id == case.form["MessageSid"]]
    assert len(events) == before + 1
    assert event.urn == case.urn
    assert event.payload["text"] == case.text
    assert event.payload["choice_id"] == case.choice
    assert event.received_at.tzinfo is not None


def test_the_same_message_sid_is_stored_once(webhook: Webhook) -> None:
    """Twilio's redelivery of a message is acknowledged but not stored again."""
    form = inbound_form(PHONE, "twice")
    signature = sign(TOKEN, PUBLIC + "/whatsapp/inbound", form)
    before = len(webhook.events())
    for _ in range(3):
        answer = webhook.post("/whatsapp/inbound", form, signature, {})
        assert answer.status_code == 200 and answer.text.endswith("<Response/>")
    assert len(webhook.events()) == before + 1


def test_only_post_is_served(webhook: Webhook) -> None:
    """A GET on the webhook is not an inbound message."""
    before = len(webhook.events())
    answer = webhook.client.get(webhook.server.base_url + "/whatsapp/inbound")
    assert answer.status_code == 405
    assert len(webhook.events()) == before


@pytest.mark.parametrize(
    ("label", "sign_url", "token"),
    [
        ("missing", None, TOKEN),
        ("another token", PUBLIC + "/whatsapp/status", "x"),
        ("proxy-internal URL", "http://127.0.0.1:8000/whatsapp/status", TOKEN),
    ],
)
def test_status_callbacks_need_a_valid_signature(
    webhook: Webhook, label: str, sign_url: str | None, token: str
) -> None:
    """A forged or unsigned status callback is refused."""
    form = {"MessageSid": new_sid(), "MessageStatus": "delivered", "To": f"whatsapp:{PHONE}"}
    signature = sign(token, sign_url, form) if sign_url else None
    answer = webhook.post("/whatsapp/status", form, signature, {})
    assert answer.status_code == 403, label
