"""WhatsApp end to end over real HTTP: signed inbound webhooks → the bot → twilio's client → fake.

Every message goes the way production does: the fake Twilio signs the inbound form for the
public URL and posts it to the bot on loopback (as a proxy would), the bot stores and routes
it, and the reply leaves through the outbox, the dispatcher, the WhatsApp sender and twilio's
own async client to the fake's Messages API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from handlers.config import ALL_LANGUAGES
from handlers.i18n import keywords, t
from handlers.places import Gazetteer
from storage import surveys
from storage.db import session_scope
from tests.fakes.twilio_api import FakeTwilioAPI, SentMessage, WhatsAppBot, inbound_form

TOKEN = "test-auth-token-e2e"
HX = "HX" + "0" * 30
QUICK_REPLY = {n: f"{HX}q{n}" for n in (1, 2, 3)}
LIST_PICKER = {n: f"{HX}{n:02d}" for n in range(2, 11)}


@pytest.fixture
def fake() -> Iterator[FakeTwilioAPI]:
    """A fake Twilio API on loopback."""
    with FakeTwilioAPI(auth_token=TOKEN) as api:
        yield api


@pytest.fixture
def make_bot(
    fake: FakeTwilioAPI, engine: Engine, clock: FixedClock, places: Gazetteer, tmp_path: Path
) -> Iterator[Callable[..., WhatsAppBot]]:
    """Start the bot against the fake, with optional templates and settings."""
    started: list[WhatsAppBot] = []

    def make(**kwargs: Any) -> WhatsAppBot:
        """Start one bot."""
        bot = WhatsAppBot(
            fake, engine=engine, clock=clock, places=places, folder=tmp_path, **kwargs
        ).__enter__()
        started.append(bot)
        return bot

    yield make
    for bot in started:
        bot.__exit__(None, None, None)


def text_of(message: SentMessage) -> str:
    """What the person reads: the body, or the body variable of an interactive message."""
    if message.body is not None:
        return message.body
    return (message.content_variables or {}).get("1", "")


def buttons(message: SentMessage) -> dict[str, str]:
    """The quick-reply buttons of a message: label → payload id."""
    if message.content_sid not in QUICK_REPLY.values():
        return {}
    variables = message.content_variables or {}
    count = (len(variables) - 1) // 2
    return {variables[str(2 + 2 * i)]: variables[str(3 + 2 * i)] for i in range(count)}


def test_onboarding_and_a_survey_over_signed_webhooks(
    make_bot: Callable[..., WhatsAppBot], engine: Engine
) -> None:
    """Registration and the PPE survey complete by typing numbers, labels and tapping buttons."""
    bot = make_bot(templates={"interactive": {"quick_reply": QUICK_REPLY}})
    phone = "+23276000001"
    [consent] = bot.say(phone, "Hello, good morning to the team")
    assert "Do you agree?" in text_of(consent)
    assert consent.body is None and consent.content_sid == QUICK_REPLY[2]
    assert buttons(consent).keys() == {"Yes", "No"}
    tap = buttons(consent)["Yes"]
    [name] = bot.say(phone, "Yes", ButtonText="Yes", ButtonPayload=tap, MessageType="button")
    assert "full name" in text_of(name)
    [role] = bot.say(phone, "Amina Kamara")
    assert role.content_sid is None and "\n1. Mayor" in (role.body or "")  # 9 options: text
    assert t("wa_reply_number", "en") in (role.body or "")
    [organisation] = bot.say(phone, "City official")  # typing the label
    assert "organisation" in text_of(organisation)
    bot.say(phone, "City Council")
    [summary] = bot.say(phone, "koidu")
    assert "Koidu, Sierra Leone" in text_of(summary)
    assert summary.content_sid == QUICK_REPLY[3]  # ✅ Submit, ✏️ Change an answer, ❌ Cancel
    submit = buttons(summary)["✅ Submit"]
    [menu] = bot.say(phone, "✅ Submit", ButtonText="✅ Submit", ButtonPayload=submit)
    assert "your office is registered" in text_of(menu)
    assert menu.content_sid is None  # five entries: numbered text
    assert bot.contact(phone).name == "Amina Kamara"

    bot.say(phone, "2")  # the emergency (PPE) needs survey, by number
    bot.say(phone, "4, 1")  # gloves and masks, by number
    bot.say(phone, "20k")
    bot.say(phone, "300")
    bot.say(phone, "1")
    bot.say(phone, "skip")
    [check] = bot.say(phone, "2")
    assert "Please check your answers" in text_of(check)
    [done] = bot.say(phone, "1")  # typing the number of a button
    assert "Your city's needs were saved" in text_of(done)
    with session_scope(engine) as session:
        counts = surveys.count_responses(session=session, contact_id=bot.contact(phone).id)
    assert counts == {"emergency_needs": 1}
    for message in bot.fake.sent_to(phone):
        assert message.from_ == "whatsapp:+14155238886"
        assert message.status_callback == "https://bot.example.org/whatsapp/status"


def test_a_duplicated_message_sid_is_processed_once(make_bot: Callable[..., WhatsAppBot]) -> None:
    """Twilio's retry of the same MessageSid is acknowledged again but answered once."""
    bot = make_bot()
    form = inbound_form("+23276000002", "Hello, good morning to the team")
    assert bot.fake.send_inbound(bot.inbound_url, form) == 200
    assert bot.fake.send_inbound(bot.inbound_url, form) == 200
    bot.settle("whatsapp:+23276000002")
    assert len(bot.fake.sent_to("+23276000002")) == 1
    metrics = bot.runtime.counters
    assert metrics['inbound_total{channel="whatsapp",result="stored"}'] == 1
    assert metrics['inbound_total{channel="whatsapp",result="duplicate"}'] == 1


def test_a_business_scoped_user_id_is_an_address_like_any_other(
    make_bot: Callable[..., WhatsAppBot],
) -> None:
    """`From: whatsapp:US.1349…` (no phone number) gets its replies sent to the same id."""
    bot = make_bot()
    bsuid = "US.13491208655302741918"
    [reply] = bot.say(bsuid, "Hello, good morning to the team")
    assert reply.to == f"whatsapp:{bsuid}"
    assert bot.contact(bsuid) is not None


STOP_WORDS = [
    (lang, word) for lang in ALL_LANGUAGES for word in dict.fromkeys(keywords()["stop"][lang])
]


def test_opt_out_words_of_every_language_opt_out_and_start_opts_back_in(
    make_bot: Callable[..., WhatsAppBot],
) -> None:
    """Each stop word of each language opts out; only the confirmation is sent; START undoes."""
    bot = make_bot()
    assert len(STOP_WORDS) >= 20
    phones = [f"+2327610{number:04d}" for number in range(len(STOP_WORDS))]
    bot.say(phones[0], "Hello, good morning to the team")  # one of them mid-conversation
    for phone, (lang, word) in zip(phones, STOP_WORDS, strict=True):
        replies = bot.say(phone, word.upper() if lang in ("en", "fr") else word)
        assert len(replies) == 1, (lang, word)
        assert bot.contact(phone).opted_out, (lang, word)
    sent = len(bot.fake.sent())
    reminders = [bot.enqueue(phone, "The webinar starts tomorrow") for phone in phones]
    for reminder in reminders:
        row = bot.wait_row(reminder, lambda r: r.status == "failed")
        assert row.error_code == "opted-out"
    assert len(bot.fake.sent()) == sent  # nothing but the confirmations
    [still] = bot.say(phones[0], "what now?")
    assert "unsubscribed" in text_of(still)
    [back] = bot.say(phones[0], "START")
    assert "Welcome back" in text_of(back)
    assert not bot.contact(phones[0]).opted_out
    reminder = bot.enqueue(phones[0], "The webinar starts tomorrow", kind="reminder")
    assert bot.wait_row(reminder, lambda r: r.status == "queued").provider_id


def test_logs_carry_ids_not_numbers_bodies_or_secrets(
    make_bot: Callable[..., WhatsAppBot], caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing personal or secret reaches the logs on the WhatsApp path."""
    caplog.set_level(logging.DEBUG)
    bot = make_bot()
    bot.say("+23276000003", "Hello, good morning to the team")
    bot.say("+23276000003", "Fatmata Sesay")
    logged = caplog.text
    assert "whatsapp inbound sid=" in logged
    for secret in ("23276000003", "Fatmata", "good morning", TOKEN):
        assert secret not in logged


def test_the_registry_enables_whatsapp_from_the_settings(
    engine: Engine, clock: FixedClock, places: Gazetteer, tmp_path: Path
) -> None:
    """TWILIO_* set: `serve` gets the channel with both webhooks; PUBLIC_BASE_URL is required."""
    from bot.channels.registry import channels_from_settings
    from bot.channels.whatsapp import WhatsAppChannel
    from bot.runtime import build_runtime
    from bot.settings import get_settings

    values: dict[str, Any] = {
        "telegram_bot_token": None,
        "twilio_account_sid": "AC" + "0" * 32,
        "twilio_auth_token": TOKEN,
        "twilio_whatsapp_from": "+14155238886",
        "public_base_url": "https://bot.example.org/",
        "whatsapp_templates_file": str(tmp_path / "none.yaml"),
    }
    settings = get_settings(**values)
    runtime = build_runtime(
        settings, engine=engine, clock=clock, places=places, channels={}, with_scheduler=False
    )
    channel = channels_from_settings(settings, runtime)["whatsapp"]
    assert isinstance(channel, WhatsAppChannel) and channel.runtime is runtime
    paths = {getattr(route, "path", None) for route in channel.routes()}
    assert paths == {"/whatsapp/inbound", "/whatsapp/status"}
    assert channel.whatsapp_sender.from_address == "whatsapp:+14155238886"
    assert channel.whatsapp_sender.status_callback == "https://bot.example.org/whatsapp/status"
    with pytest.raises(ValueError, match="PUBLIC_BASE_URL"):
        WhatsAppChannel(settings=get_settings(**{**values, "public_base_url": None}))
