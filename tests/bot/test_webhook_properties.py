"""Property tests of the three webhooks against bad input, over real HTTP on loopback.

One app (`create_app`, as `citybot serve` runs it, with both channels) is served by uvicorn on
127.0.0.1 against the fake Telegram and Twilio platforms. Hypothesis throws at it random JSON
and forms, odd unicode (escaped lone surrogates, RTL and zero-width marks, emoji, NUL), invalid
UTF-8, bodies over MAX_REQUEST_BYTES (declared, or chunked), missing fields, wrong content
types, and valid secrets or signatures with garbage content next to forged ones. For every
request: never a 5xx and never an unhandled exception in the app; nothing stored for a request
answered ≥ 400; and whatever the app accepts (2xx) is well formed.

With CITYBOT_RELIABILITY_OUT set, each test appends one JSON line summarising what it tried.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator

from bot.channels.telegram import TelegramChannel
from bot.channels.whatsapp import WhatsAppChannel
from bot.clock import FixedClock
from bot.runtime import build_runtime
from bot.server import create_app
from bot.settings import get_settings
from handlers.places import Gazetteer
from storage import migrate
from storage.db import make_engine, session_scope
from storage.models import InboxEvent
from tests.conftest import START
from tests.fakes.telegram_api import SECRET_HEADER, FakeTelegram
from tests.fakes.twilio_api import AppServer, FakeTwilioAPI

LIMIT = 64 * 1024  # MAX_REQUEST_BYTES for these tests: "huge" is just past it
PUBLIC = "https://bot.example.org"
SECRET = "Webhook_secret-0123456789"
TOKEN = "twilio-auth-token-properties"
TG_PATH, WA_INBOUND, WA_STATUS = "/telegram/webhook", "/whatsapp/inbound", "/whatsapp/status"
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ODD = [
    "\u202e",  # right-to-left override
    "\u200f",  # right-to-left mark
    "\u200b",  # zero-width space
    "\u200d",  # zero-width joiner
    "\ufeff",  # byte-order mark
    "\x00",
    "\ud800",  # lone surrogates: escaped in JSON, CESU bytes in forms
    "\udfff",
    "😀",
    "👩‍👩‍👧",
    "مرحبا",
    "שלום",
    "\u0301",
    "\n\r\t",
    "%",
    "&=+",
]
odd_text = st.lists(st.one_of(st.text(max_size=8), st.sampled_from(ODD)), max_size=8).map("".join)
json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    odd_text,
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(odd_text, inner, max_size=4)
    ),
    max_leaves=12,
)
CONTENT_TYPES = [
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "multipart/form-data; boundary=xyz",
    "application/json; charset=latin-1",
    "",
    None,
]


@dataclass
class Tally:
    """What one property test tried, for the assertion messages and the reliability report."""

    endpoint: str
    statuses: Counter[str] = field(default_factory=Counter)
    rows_written_by_rejected: int = 0
    server_errors: int = 0

    def report(self) -> None:
        """Append one JSON line to CITYBOT_RELIABILITY_OUT when it is set."""
        target = os.environ.get("CITYBOT_RELIABILITY_OUT")
        if not target:
            return
        line = {
            "suite": "bad_input",
            "endpoint": self.endpoint,
            "examples": sum(self.statuses.values()),
            "statuses": dict(sorted(self.statuses.items())),
            "rows_written_by_rejected": self.rows_written_by_rejected,
            "server_errors": self.server_errors,
        }
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


class ErrorLog(logging.Handler):
    """Counts ERROR records of the server (an unhandled exception is logged by uvicorn)."""

    def __init__(self) -> None:
        """Start at zero."""
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the logger name and message."""
        self.records.append(f"{record.name}: {record.getMessage()}")


@dataclass
class Bot:
    """The app on loopback, its database and an HTTP client."""

    engine: Engine
    server: AppServer
    client: httpx.Client
    errors: ErrorLog
    sids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def rows(self) -> int:
        """How many inbox events are stored."""
        with session_scope(self.engine) as session:
            return int(session.exec(select(func.count()).select_from(InboxEvent)).one())

    def last_row(self) -> InboxEvent:
        """The newest inbox event."""
        with session_scope(self.engine) as session:
            row = session.exec(select(InboxEvent).order_by(col(InboxEvent.id).desc())).first()
        assert row is not None
        return row

    def post(self, path: str, body: bytes, headers: dict[str, str], chunked: bool) -> str:
        """POST raw bytes (chunked when asked); the status, or `reset` if the server hung up."""
        url = self.server.base_url + path
        content: Any = _chunks(body) if chunked else body
        try:
            return str(self.client.post(url, content=content, headers=headers).status_code)
        except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError):
            return "reset"  # a refused oversized upload may be cut off mid-body


class Body(bytes):
    """Request bytes whose repr stays short in hypothesis' reports."""

    def __repr__(self) -> str:
        """The length and the first bytes."""
        head = bytes(self[:120])
        return f"Body({len(self)} bytes: {head!r}{'…' if len(self) > 120 else ''})"


def _chunks(body: bytes) -> Iterator[bytes]:
    """The body in 8 KiB pieces (httpx sends a generator with chunked transfer encoding)."""
    for start in range(0, len(body), 8192):
        yield body[start : start + 8192]


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, places: Gazetteer) -> Iterator[Bot]:
    """Both channels served by one app on loopback, against the fake platforms."""
    folder = tmp_path_factory.mktemp("properties")
    engine = make_engine(f"sqlite:///{folder}/bot.db")
    migrate.upgrade(engine=engine)
    templates = folder / "templates.yaml"
    templates.write_text("{}\n", encoding="utf-8")
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    with (
        FakeTelegram(rate_per_chat=1000, rate_per_second=1000) as telegram,
        FakeTwilioAPI(auth_token=TOKEN) as twilio,
    ):
        values: dict[str, Any] = {
            "telegram_bot_token": telegram.token,
            "telegram_webhook_secret": SECRET,
            "telegram_api_base_url": telegram.base_url,
            "telegram_mode": "webhook",
            "telegram_rate_per_chat": 1000.0,
            "telegram_rate_per_second": 1000.0,
            "public_base_url": PUBLIC,
            "twilio_account_sid": twilio.account_sid,
            "twilio_auth_token": TOKEN,
            "twilio_whatsapp_from": "whatsapp:+14155238886",
            "twilio_api_base_url": twilio.base_url,
            "whatsapp_templates_file": str(templates),
            "max_request_bytes": LIMIT,
            "send_timeout_seconds": 2.0,
            "staff_urns": {},
        }
        config = get_settings(**values)
        runtime = build_runtime(
            config,
            engine=engine,
            clock=FixedClock(START),
            places=places,
            channels={},
            with_scheduler=False,
        )
        runtime.channels["telegram"] = TelegramChannel(settings=config, runtime=runtime)
        runtime.channels["whatsapp"] = WhatsAppChannel(settings=config, runtime=runtime)
        for name, channel in runtime.channels.items():
            runtime.dispatcher.senders[name] = channel.sender
        with AppServer(create_app(runtime)) as server, httpx.Client(timeout=30) as client:
            yield Bot(engine, server, client, errors)
    logging.getLogger().removeHandler(errors)
    engine.dispose()


def check(bot: Bot, tally: Tally, status: str, rows_before: int) -> int:
    """The invariants every answer keeps; return how many rows the request wrote."""
    written = bot.rows() - rows_before
    tally.statuses[status] += 1
    if status != "reset" and int(status) >= 500:
        tally.server_errors += 1
    if status == "reset" or int(status) >= 400:
        tally.rows_written_by_rejected += written
    assert status == "reset" or int(status) < 500, f"{tally.endpoint} answered {status}"
    assert not bot.errors.records, bot.errors.records
    assert status.startswith("2") or written == 0, f"{written} rows stored for a {status}"
    assert written in (0, 1)
    return written


# -- Telegram ------------------------------------------------------------------------------


def message_update(update_id: Any, chat_id: Any, text: Any, **extra: Any) -> dict[str, Any]:
    """A Telegram text-message update with these values (right or wrong)."""
    user = {"id": chat_id, "is_bot": False, "first_name": "Ana", "language_code": "en"}
    message = {
        "message_id": 1,
        "from": user,
        "chat": {"id": chat_id, "type": "private", "first_name": "Ana"},
        "date": 1_790_000_000,
        "text": text,
        **extra,
    }
    return {"update_id": update_id, "message": message}


def _drop_path(data: dict[str, Any], path: list[str]) -> dict[str, Any]:
    """A copy of `data` without the key at `path` (missing fields)."""
    copy = json.loads(json.dumps(data))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node.pop(path[-1], None)
    return copy


MESSAGE_PATHS = [
    ["update_id"],
    ["message"],
    ["message", "chat"],
    ["message", "chat", "id"],
    ["message", "chat", "type"],
    ["message", "date"],
    ["message", "text"],
    ["message", "from"],
    ["message", "message_id"],
]


@st.composite
def telegram_payloads(draw: st.DrawFn) -> Any:
    """A JSON document for the webhook: valid updates with odd text, broken ones, or noise."""
    update_id = draw(
        st.one_of(
            st.integers(min_value=1, max_value=2**31),
            st.integers(min_value=-(2**80), max_value=2**80),
            json_value,
        )
    )
    chat_id = draw(st.one_of(st.integers(min_value=1, max_value=2**52), st.integers(), json_value))
    text = draw(st.one_of(odd_text, json_value))
    kind = draw(st.sampled_from(["valid", "valid", "wrong_types", "missing", "noise", "tap"]))
    if kind == "valid":
        return message_update(draw(st.integers(1, 2**31)), draw(st.integers(1, 2**52)), text)
    if kind == "wrong_types":
        return message_update(update_id, chat_id, text, date=draw(json_value))
    if kind == "missing":
        good = message_update(draw(st.integers(1, 2**31)), draw(st.integers(1, 2**52)), "hi")
        return _drop_path(good, draw(st.sampled_from(MESSAGE_PATHS)))
    if kind == "tap":
        user = {"id": chat_id, "is_bot": False, "first_name": "Ana"}
        query = {"id": draw(odd_text), "from": user, "chat_instance": "1", "data": draw(odd_text)}
        return {"update_id": update_id, "callback_query": query}
    return draw(st.one_of(json_value, st.dictionaries(odd_text, json_value, max_size=5)))


def telegram_bodies() -> st.SearchStrategy[Body]:
    """Webhook bodies with a short repr."""
    return _telegram_bodies().map(Body)


@st.composite
def _telegram_bodies(draw: st.DrawFn) -> bytes:
    """The bytes of a webhook body: JSON (escaped or raw surrogates), binary noise, or huge."""
    how = draw(st.sampled_from(["ascii", "ascii", "utf8", "bytes", "huge"]))
    if how == "bytes":
        return draw(st.binary(max_size=300))
    if how == "huge":
        size = draw(st.integers(min_value=LIMIT + 1, max_value=4 * LIMIT))
        update = message_update(draw(st.integers(1, 2**31)), 7, "x" * size)
        return json.dumps(update).encode()
    payload = draw(telegram_payloads())
    if how == "ascii":  # lone surrogates escaped as \ud800
        return json.dumps(payload).encode()
    return json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")


secrets = st.one_of(
    st.just(SECRET),
    st.just(SECRET),
    st.just(SECRET),
    st.none(),
    st.just(SECRET + "x"),
    st.just(SECRET[:-1]),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40),
)


def _update_id(body: bytes) -> int | None:
    """The update_id of a body when it is a JSON object with an in-range integer one."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    value = data.get("update_id")
    return value if type(value) is int and 0 <= value < 2**63 else None


TG_URN = re.compile(r"^telegram:-?\d{1,16}$")


@pytest.fixture(scope="module")
def telegram_tally() -> Iterator[Tally]:
    """The Telegram webhook's tally, reported once its test is done."""
    tally = Tally(TG_PATH)
    yield tally
    tally.report()


@PROPERTY
@given(
    body=telegram_bodies(),
    secret=secrets,
    content_type=st.sampled_from(CONTENT_TYPES),
    chunked=st.booleans(),
)
def test_telegram_webhook_survives_bad_input(
    bot: Bot,
    telegram_tally: Tally,
    body: bytes,
    secret: str | None,
    content_type: str | None,
    chunked: bool,
) -> None:
    """Never a 5xx; nothing stored when refused; accepted only with the secret and an update."""
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    before = bot.rows()
    status = bot.post(TG_PATH, body, headers, chunked)
    written = check(bot, telegram_tally, status, before)
    if len(body) > LIMIT and secret == SECRET:
        assert status in ("413", "reset")
    if status.startswith("2"):
        assert secret == SECRET and len(body) <= LIMIT
        update_id = _update_id(body)
        assert update_id is not None, body[:200]
        if written:
            row = bot.last_row()
            assert row.external_id == str(update_id)
            assert TG_URN.match(row.urn), row.urn
            text = row.payload.get("text")
            assert isinstance(text, str)
            text.encode("utf-8")  # storable: no lone surrogates left
    if secret != SECRET and len(body) <= LIMIT:
        assert status == "403"


# -- WhatsApp ------------------------------------------------------------------------------

FIELDS = [
    "MessageSid",
    "SmsMessageSid",
    "SmsSid",
    "From",
    "To",
    "Body",
    "ButtonPayload",
    "ButtonText",
    "ListId",
    "MessageStatus",
    "SmsStatus",
    "ErrorCode",
    "AccountSid",
    "NumMedia",
]
_sids = itertools.count(1)
STATUSES = ["queued", "sent", "delivered", "read", "failed", "undelivered", "QUEUED", "bogus", ""]


def signature(path: str, body: bytes, token: str = TOKEN) -> str:
    """The X-Twilio-Signature for a body as the app parses it, posted to PUBLIC + path."""
    form = ImmutableMultiDict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return str(RequestValidator(token).compute_signature(PUBLIC + path, form))


def parsed(body: bytes) -> dict[str, str]:
    """The form as the app reads it (the last value of a repeated field wins, as in Starlette)."""
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


@st.composite
def forms(draw: st.DrawFn, *, status: bool) -> list[tuple[str, str]]:
    """A form: a plausible Twilio one with odd values and missing fields, or random fields."""
    sid = draw(st.one_of(st.just(f"SM{next(_sids):032x}"), odd_text))
    plausible = {
        "MessageSid": sid,
        "SmsSid": sid,
        "From": draw(
            st.one_of(
                st.just("whatsapp:+23276000001"),
                st.just("whatsapp:US.13491208655302741918"),
                odd_text.map(lambda t: "whatsapp:" + t),
                odd_text,
            )
        ),
        "To": "whatsapp:+14155238886",
        "Body": draw(odd_text),
        "AccountSid": "AC" + "0" * 32,
    }
    if status:
        plausible["MessageStatus"] = draw(st.one_of(st.sampled_from(STATUSES), odd_text))
        plausible["ErrorCode"] = draw(st.one_of(st.just(""), st.just("63016"), odd_text))
    if draw(st.booleans()):
        plausible["ButtonPayload"] = draw(odd_text)
    dropped = draw(st.sets(st.sampled_from(sorted(plausible)), max_size=3))
    pairs = [(k, v) for k, v in plausible.items() if k not in dropped]
    extra = draw(
        st.lists(st.tuples(st.one_of(st.sampled_from(FIELDS), odd_text), odd_text), max_size=4)
    )
    return pairs + extra


@st.composite
def whatsapp_requests(draw: st.DrawFn, path: str) -> tuple[bytes, dict[str, str], str]:
    """A body, its headers and how it is signed: validly, forged, for another path or none."""
    how = draw(st.sampled_from(["form", "form", "form", "json", "bytes", "huge"]))
    if how == "form":
        pairs = draw(forms(status=path == WA_STATUS))
        body = urlencode(pairs, encoding="utf-8", errors="surrogatepass").encode()
    elif how == "json":
        body = json.dumps(draw(json_value)).encode()
    elif how == "bytes":
        body = draw(st.binary(max_size=300))
    else:
        size = draw(st.integers(min_value=LIMIT + 1, max_value=4 * LIMIT))
        body = urlencode({"MessageSid": "SM" + "0" * 32, "Body": "x" * size}).encode()
    signed = draw(st.sampled_from(["valid", "valid", "valid", "forged", "other_path", "none"]))
    other = WA_STATUS if path == WA_INBOUND else WA_INBOUND
    headers = {
        "valid": {"X-Twilio-Signature": signature(path, body)},
        "forged": {"X-Twilio-Signature": signature(path, body, token="not-the-token")},
        "other_path": {"X-Twilio-Signature": signature(other, body)},
        "none": {},
    }[signed]
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type is not None:
        headers["Content-Type"] = content_type
    return Body(body), headers, signed


def whatsapp_property(bot: Bot, tally: Tally, path: str, request: Any, chunked: bool) -> None:
    """The WhatsApp webhook invariants for one request."""
    body, headers, signed = request
    before = bot.rows()
    status = bot.post(path, body, headers, chunked)
    written = check(bot, tally, status, before)
    if len(body) > LIMIT:  # unsigned is refused before the body is read
        unread = {"403"} if chunked and signed == "none" else set()
        assert status in {"413", "reset"} | unread
    elif signed != "valid":
        assert status == "403"
    if not status.startswith("2"):
        return
    form = parsed(body)
    assert signed == "valid" and len(body) <= LIMIT
    sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
    assert sid
    if path == WA_STATUS:
        assert written == 0
        assert (form.get("MessageStatus") or form.get("SmsStatus") or "").strip()
        return
    assert form.get("From", "").strip().removeprefix("whatsapp:")
    if written:
        row = bot.last_row()
        assert row.external_id == sid and row.urn.startswith("whatsapp:")


@pytest.fixture(scope="module")
def inbound_tally() -> Iterator[Tally]:
    """The inbound webhook's tally, reported once its test is done."""
    tally = Tally(WA_INBOUND)
    yield tally
    tally.report()


@pytest.fixture(scope="module")
def status_tally() -> Iterator[Tally]:
    """The status webhook's tally, reported once its test is done."""
    tally = Tally(WA_STATUS)
    yield tally
    tally.report()


@PROPERTY
@given(request=whatsapp_requests(WA_INBOUND), chunked=st.booleans())
def test_whatsapp_inbound_survives_bad_input(
    bot: Bot, inbound_tally: Tally, request: Any, chunked: bool
) -> None:
    """Never a 5xx; nothing stored when refused; accepted only signed, with a sid and a sender."""
    whatsapp_property(bot, inbound_tally, WA_INBOUND, request, chunked)


@PROPERTY
@given(request=whatsapp_requests(WA_STATUS), chunked=st.booleans())
def test_whatsapp_status_survives_bad_input(
    bot: Bot, status_tally: Tally, request: Any, chunked: bool
) -> None:
    """Never a 5xx; nothing stored ever; accepted only signed, with a sid and a status."""
    whatsapp_property(bot, status_tally, WA_STATUS, request, chunked)


def test_the_limit_is_the_setting(bot: Bot) -> None:
    """Exactly MAX_REQUEST_BYTES passes the size check; one byte more is a 413, both ways."""
    headers = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}
    update = json.dumps(message_update(123456, 42, "")).encode()
    padded = update[:-1] + b" " * (LIMIT - len(update)) + b"}"
    assert len(padded) == LIMIT
    assert bot.post(TG_PATH, padded, headers, chunked=False) == "200"
    assert bot.post(TG_PATH, padded, headers, chunked=True) == "200"
    over = padded[:-1] + b" }"
    before = bot.rows()
    assert bot.post(TG_PATH, over, headers, chunked=False) in ("413", "reset")
    assert bot.post(TG_PATH, over, headers, chunked=True) in ("413", "reset")
    assert bot.rows() == before
    metrics = bot.client.get(bot.server.base_url + "/metrics").text
    assert 'citybot_http_rejected_total{reason="too_large"}' in metrics


def test_a_malformed_content_length_is_a_client_error(bot: Bot) -> None:
    """A Content-Length that is not a number never reaches the app as a 5xx."""
    with httpx.Client() as raw:
        request = raw.build_request(
            "POST",
            bot.server.base_url + TG_PATH,
            content=b"{}",
            headers={SECRET_HEADER: SECRET, "Content-Length": "12abc"},
        )
        try:
            status = raw.send(request).status_code
        except httpx.HTTPError:
            status = 400  # refused at the protocol level and the connection closed
    assert 400 <= status < 500


def test_the_reliability_line_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The line another report reads has the agreed keys."""
    out = tmp_path / "out.jsonl"
    monkeypatch.setenv("CITYBOT_RELIABILITY_OUT", str(out))
    tally = Tally("/x")
    tally.statuses.update({"403": 2, "200": 1})
    tally.report()
    line = json.loads(out.read_text(encoding="utf-8"))
    assert line == {
        "suite": "bad_input",
        "endpoint": "/x",
        "examples": 3,
        "statuses": {"200": 1, "403": 2},
        "rows_written_by_rejected": 0,
        "server_errors": 0,
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"From": "whatsapp:+2327600\x000001"},
        {"From": "whatsapp:+" + "7" * 300},
        {"MessageSid": "SM" + "a" * 150, "SmsSid": "SM" + "a" * 150, "SmsMessageSid": ""},
        {"Body": "nul \x00 in the body"},
    ],
    ids=["nul-sender", "long-sender", "long-sid", "nul-body"],
)
def test_signed_values_a_database_refuses_are_never_a_server_error(
    fields: dict[str, str],
    any_engine: Engine,
    places: Gazetteer,
    tmp_path: Path,
) -> None:
    """Twilio-signed but out-of-range values: stored (SQLite is lenient) or a 400, never 5xx."""
    from tests.fakes.twilio_api import WhatsAppBot, inbound_form

    with (
        FakeTwilioAPI(auth_token=TOKEN) as fake,
        WhatsAppBot(
            fake, engine=any_engine, clock=FixedClock(START), places=places, folder=tmp_path
        ) as app,
    ):
        form = {**inbound_form("+23276000001", "hello"), **fields}
        before = Bot(any_engine, app.server, httpx.Client(), ErrorLog()).rows()
        status = fake.send_inbound(app.inbound_url, form)
        with session_scope(any_engine) as session:
            after = int(session.exec(select(func.count()).select_from(InboxEvent)).one())
    assert status in (200, 400), status
    assert status == 200 or after == before
