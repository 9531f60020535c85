"""The webhook tests' app on loopback (a module fixture), their strategies and invariants."""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

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
from tests.fakes.telegram_api import FakeTelegram
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
