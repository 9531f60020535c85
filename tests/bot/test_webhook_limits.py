"""Webhook limits by example (size, Content-Length, values a database refuses); the report line."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from bot.clock import FixedClock
from handlers.places import Gazetteer
from storage.db import session_scope
from storage.models import InboxEvent
from tests.bot.webhook_cases import (
    LIMIT,
    SECRET,
    TG_PATH,
    TOKEN,
    Bot,
    ErrorLog,
    Tally,
    message_update,
)
from tests.bot.webhook_cases import bot as bot  # the module fixture
from tests.conftest import START
from tests.fakes.telegram_api import SECRET_HEADER
from tests.fakes.twilio_api import FakeTwilioAPI


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
