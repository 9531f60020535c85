"""Status callbacks found by the provider's message id; unknown ids and regressions told apart.

Storage: `get_by_provider_id`, and `apply_status` answering True (moved), False (a regression
or after a final status) or None (no such message). The webhook: signed callbacks from the fake
Twilio API on loopback, counted on /metrics by result and found whatever their `To` says.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from bot.channels import whatsapp
from bot.clock import FixedClock
from handlers.places import Gazetteer
from storage import outbox
from storage.db import session_scope
from tests.fakes.twilio_api import FakeTwilioAPI, WhatsAppBot, new_sid, wait_until

PHONE = "+23276500077"


def sent(engine: Engine, clock: FixedClock, key: str, provider_id: str) -> int:
    """A message handed to the platform under `provider_id`; return its id."""
    with session_scope(engine) as session:
        message_id = outbox.enqueue(
            session=session,
            idempotency_key=key,
            urn=f"whatsapp:{PHONE}",
            channel="whatsapp",
            body={"text": key},
            now=clock.now(),
        )
        assert message_id is not None
        outbox.claim_due(session=session, channel="whatsapp", now=clock.now())
        outbox.mark_sent(
            session=session,
            message_id=message_id,
            now=clock.now(),
            provider_id=provider_id,
            status="queued",
        )
    return message_id


def apply(engine: Engine, clock: FixedClock, provider_id: str, status: str) -> bool | None:
    """Apply one callback in its own transaction."""
    with session_scope(engine) as session:
        return outbox.apply_status(
            session=session, provider_id=provider_id, status=status, now=clock.now()
        )


def test_get_by_provider_id_finds_the_message_or_none(engine: Engine, clock: FixedClock) -> None:
    """The platform's id leads to our row; an id never handed out leads nowhere."""
    first = sent(engine, clock, "k1", "SM-one")
    second = sent(engine, clock, "k2", "SM-two")
    with session_scope(engine) as session:
        one = outbox.get_by_provider_id(session=session, provider_id="SM-one")
        two = outbox.get_by_provider_id(session=session, provider_id="SM-two")
        assert (one and one.id, two and two.id) == (first, second)
        assert outbox.get_by_provider_id(session=session, provider_id="SM-none") is None


def test_apply_status_tells_an_unknown_id_from_a_regression(
    engine: Engine, clock: FixedClock
) -> None:
    """True when it moves, False for a step back or after a final status, None when unknown."""
    sent(engine, clock, "k1", "SM-one")
    assert apply(engine, clock, "SM-one", "delivered") is True
    assert apply(engine, clock, "SM-one", "sent") is False
    assert apply(engine, clock, "SM-one", "undelivered") is True
    assert apply(engine, clock, "SM-one", "read") is False
    assert apply(engine, clock, "SM-unknown", "delivered") is None


@pytest.fixture
def bot(
    engine: Engine, clock: FixedClock, places: Gazetteer, tmp_path: Path
) -> Iterator[WhatsAppBot]:
    """The bot against a fake Twilio API, with a contact who just wrote."""
    with (
        FakeTwilioAPI(auth_token="status-token") as fake,
        WhatsAppBot(fake, engine=engine, clock=clock, folder=tmp_path, places=places) as bot,
    ):
        bot.say(PHONE, "Hello, good morning to the team")
        yield bot


def metric(bot: WhatsAppBot, result: str) -> int:
    """The whatsapp_status_total counter for one result, read from /metrics."""
    text = httpx.get(bot.server.base_url + "/metrics").text
    name = f'citybot_whatsapp_status_total{{result="{result}"}} '
    return next((int(line.split()[-1]) for line in text.splitlines() if line.startswith(name)), 0)


def queued(bot: WhatsAppBot, text: str) -> Any:
    """Send a reminder and return its row once Twilio accepted it."""
    message_id = bot.enqueue(PHONE, text)
    return bot.wait_row(message_id, lambda r: r.status == "queued")


def test_callbacks_are_counted_applied_ignored_or_unknown(
    bot: WhatsAppBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forward move, a regression and a never-sent id each land in their own count."""
    monkeypatch.setattr(whatsapp, "STATUS_RETRY_DELAYS", (0.05, 0.05))
    row = queued(bot, "Reminder")
    assert bot.fake.send_status(row.provider_id, "delivered") == 200
    assert bot.fake.send_status(row.provider_id, "sent") == 200  # late: a regression
    assert bot.row(row.id).status == "delivered"
    form = {"MessageSid": new_sid(), "MessageStatus": "delivered", "To": f"whatsapp:{PHONE}"}
    assert bot.fake.send_callback(bot.public_base_url + "/whatsapp/status", form) == 200
    wait_until(lambda: metric(bot, "unknown") == 1, timeout=10)
    assert (metric(bot, "applied"), metric(bot, "ignored")) == (1, 1)


def test_a_callback_is_found_by_its_message_id_whatever_its_to_says(bot: WhatsAppBot) -> None:
    """A late 63016 without the recipient's address still holds the right message."""
    first, second = queued(bot, "One"), queued(bot, "Two")
    params = bot.fake.status_params(second.provider_id, "failed", "63016")
    del params["To"], params["ChannelToAddress"]
    assert bot.fake.send_callback(bot.public_base_url + "/whatsapp/status", params) == 200
    assert (bot.row(second.id).status, bot.row(second.id).error_code) == (
        "needs_template",
        "63016",
    )
    assert bot.row(first.id).status == "queued"


def test_an_early_callback_is_applied_when_the_send_is_recorded(
    bot: WhatsAppBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unknown at first (Twilio was faster than our write), applied on a retry: not 'unknown'."""
    monkeypatch.setattr(whatsapp, "STATUS_RETRY_DELAYS", (0.2, 0.5, 1.0))
    bot.fake.status_before_answer = "sent"
    row = bot.wait_row(bot.enqueue(PHONE, "Reminder"), lambda r: r.status == "sent")
    bot.clock.advance(timedelta(seconds=1))
    wait_until(lambda: metric(bot, "applied") == 1, timeout=10)
    assert metric(bot, "unknown") == 0 and row.provider_id


def test_malformed_ids_addresses_and_statuses_are_refused_or_ignored(bot: WhatsAppBot) -> None:
    """Signed but not Twilio's shape: a 400, nothing stored; an unknown status changes nothing."""
    callback = bot.public_base_url + "/whatsapp/status"
    inbound = bot.public_base_url + "/whatsapp/inbound"
    row = queued(bot, "Reminder")
    bad_sid = {"MessageSid": "SM-not-a-sid\n", "MessageStatus": "delivered"}
    assert bot.fake.send_callback(callback, bad_sid) == 400
    odd_status = bot.fake.status_params(row.provider_id, "delivered\nforged log line", None)
    assert bot.fake.send_callback(callback, odd_status) == 200
    assert bot.row(row.id).status == "queued"
    assert metric(bot, "unknown_status") == 1
    for sender in ("whatsapp:+2327600\x000001", "whatsapp:+" + "7" * 80):
        form = {"MessageSid": new_sid(), "From": sender, "Body": "hello", "To": "whatsapp:+1"}
        assert bot.fake.send_callback(inbound, form) == 400
    form = {"MessageSid": "SM" + "z" * 32, "From": f"whatsapp:{PHONE}", "Body": "hello"}
    assert bot.fake.send_callback(inbound, form) == 400
    with session_scope(bot.engine) as session:
        from storage import inbox

        assert inbox.pending_batch(session=session) == []
