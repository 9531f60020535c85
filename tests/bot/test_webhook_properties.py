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
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator

from tests.bot.webhook_cases import (
    CONTENT_TYPES,
    LIMIT,
    PROPERTY,
    PUBLIC,
    SECRET,
    TG_PATH,
    TOKEN,
    WA_INBOUND,
    WA_STATUS,
    Body,
    Bot,
    Tally,
    check,
    json_value,
    message_update,
    odd_text,
)
from tests.bot.webhook_cases import bot as bot  # the module fixture
from tests.fakes.telegram_api import SECRET_HEADER

# -- Telegram ------------------------------------------------------------------------------


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
