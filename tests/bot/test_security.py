"""Security: what reaches the logs, replayed webhooks, and staff commands from outsiders.

The Telegram and WhatsApp flows run end to end against the fake platforms on loopback with
every logger at DEBUG (ours, httpx, httpcore, python-telegram-bot, twilio, uvicorn, aiohttp).
No record at any level may hold a secret (the bot token, the webhook secret, the Twilio auth
token and its Basic auth pair); no record at INFO or above may hold a name, a phone number or
a message body.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from bot.clock import FixedClock
from bot.logs import configure_logging, protect_secrets, redact
from handlers.i18n import t
from handlers.places import Gazetteer
from storage.db import session_scope
from storage.models import InboxEvent
from storage.staff_models import Broadcast
from tests.fakes.telegram_api import FakeTelegram, Harness, Person, wire
from tests.fakes.twilio_api import FakeTwilioAPI, WhatsAppBot, inbound_form, sign

BOT_TOKEN = "987654321:AAHc9rT3xQvW2mZ8kLpN4sB7yD1fG6hJ0eU"
WEBHOOK_SECRET = "Sec_ret-webhook-7f3a9c2e5b8d"
ACCOUNT_SID = "AC" + "7" * 32
TWILIO_TOKEN = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
PUBLIC = "https://bot.example.org"
SECRETS = (
    BOT_TOKEN,
    BOT_TOKEN.split(":", 1)[1],
    WEBHOOK_SECRET,
    TWILIO_TOKEN,
    f"{ACCOUNT_SID}:{TWILIO_TOKEN}",
    base64.b64encode(f"{ACCOUNT_SID}:{TWILIO_TOKEN}".encode()).decode(),
)
LOUD = ("", "bot", "handlers", "storage", "scheduler", "httpx", "httpcore", "telegram")
LOUD += ("twilio", "uvicorn", "uvicorn.error", "uvicorn.access", "aiohttp", "apscheduler")


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger at DEBUG for the test, restored afterwards."""
    before = {name: logging.getLogger(name).level for name in LOUD}
    caplog.set_level(logging.DEBUG)
    for name in LOUD:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield caplog
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could write for a record: the message and the traceback."""
    text = record.getMessage()
    if record.exc_text:
        text += "\n" + record.exc_text
    elif record.exc_info:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    return text


def leaks(records: list[logging.LogRecord], needles: tuple[str, ...], level: int) -> list[str]:
    """The records at `level` or above that contain one of the needles."""
    found = []
    for record in records:
        if record.levelno < level:
            continue
        text = record_text(record)
        found += [f"{record.name} {record.levelname}: {n!r}" for n in needles if n in text]
    return found


def assert_clean(records: list[logging.LogRecord], personal: tuple[str, ...]) -> None:
    """No secret at any level; nothing personal at INFO or above."""
    assert len(records) > 10  # the capture saw everything
    assert leaks(records, SECRETS, logging.DEBUG) == []
    assert leaks(records, personal, logging.INFO) == []


async def test_a_telegram_conversation_logs_no_secret_and_nothing_personal(
    everything_logged: pytest.LogCaptureFixture,
    engine: Engine,
    clock: FixedClock,
    places: Gazetteer,
) -> None:
    """Onboarding over the webhook with everything at DEBUG: the logs stay clean."""
    with FakeTelegram(token=BOT_TOKEN, rate_per_chat=50) as fake:
        runtime, channel = wire(fake, engine, clock, places, WEBHOOK_SECRET, PUBLIC, "webhook")
        async with Harness(fake, runtime, channel) as harness:
            person = Person(harness, 5150)
            await person.say("/start")
            await person.tap("Yes")
            await person.say("Amina Kamara")
            await person.tap("City official")
            await person.say("Koidu City Council")
            await person.say("koidu")
            assert "Koidu, Sierra Leone" in person.last.text
            assert (await harness.get("/metrics")).status_code == 200
    records = everything_logged.records
    assert any(r.name.startswith("httpx") for r in records)  # the URL logger did log
    assert_clean(records, ("Amina Kamara", "Koidu City Council"))


def test_a_whatsapp_conversation_logs_no_secret_and_nothing_personal(
    everything_logged: pytest.LogCaptureFixture,
    engine: Engine,
    clock: FixedClock,
    places: Gazetteer,
    tmp_path: Path,
) -> None:
    """Signed webhooks, replies through twilio's client, status callbacks: the logs stay clean."""
    with (
        FakeTwilioAPI(
            account_sid=ACCOUNT_SID, auth_token=TWILIO_TOKEN, auto_status=("sent", "delivered")
        ) as fake,
        WhatsAppBot(fake, engine=engine, clock=clock, places=places, folder=tmp_path) as bot,
    ):
        bot.say("+23276000003", "Hello, good morning to the team")
        bot.say("+23276000003", "Yes")
        bot.say("+23276000003", "Fatmata Sesay")
    assert_clean(
        everything_logged.records,
        ("23276000003", "Fatmata Sesay", "good morning to the team"),
    )


def test_the_configured_log_output_redacts_secrets_in_messages_and_tracebacks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What `citybot serve` writes: tokens in URLs, Basic auth and tracebacks are redacted."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("httpx").level)
    try:
        configure_logging("DEBUG")
        protect_secrets(WEBHOOK_SECRET, basic_auth=(ACCOUNT_SID, TWILIO_TOKEN))
        logging.getLogger("httpx").setLevel(logging.DEBUG)
        url = f"http://127.0.0.1:1/bot{BOT_TOKEN}/sendMessage"
        logging.getLogger("httpx").info("HTTP Request: POST %s", url)
        logging.getLogger("bot.test").warning("header %s", WEBHOOK_SECRET)
        pair = base64.b64encode(f"{ACCOUNT_SID}:{TWILIO_TOKEN}".encode()).decode()
        logging.getLogger("bot.test").warning("Authorization: Basic %s", pair)
        try:
            raise RuntimeError(f"failed calling {url}")
        except RuntimeError:
            logging.getLogger("bot.test").exception("send failed")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger("httpx").setLevel(saved[2])
    written = capsys.readouterr().err
    assert "send failed" in written and "Traceback" in written and "[redacted]" in written
    for secret in SECRETS:
        assert secret not in written
    assert "INFO httpx" not in written  # request dumps are DEBUG at most


def test_redaction_knows_secret_shapes_without_being_told() -> None:
    """Bot tokens and account SIDs are recognised by their shape."""
    assert redact(f"GET /bot{BOT_TOKEN}/getMe") == "GET /[redacted]/getMe"
    assert ACCOUNT_SID not in redact(f"Accounts/{ACCOUNT_SID}/Messages.json")
    assert redact("message=42 chat=7") == "message=42 chat=7"


# -- replays ---------------------------------------------------------------------------------


async def test_a_replayed_telegram_update_is_processed_once_even_with_other_content(
    engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """The same update_id again (with the secret) is a duplicate, whatever its content."""
    with FakeTelegram(rate_per_chat=50) as fake:
        runtime, channel = wire(fake, engine, clock, places, WEBHOOK_SECRET, PUBLIC, "webhook")
        update = fake.message_update(61, "/start")
        forged = fake.message_update(61, "/stop", update_id=update["update_id"])
        async with Harness(fake, runtime, channel) as harness:
            for replay in (update, update, forged):
                assert await harness.send(replay) == 200
            await harness.settle()
    assert len(fake.messages_to(61)) == 1 and "Do you agree?" in fake.messages_to(61)[0].text
    with session_scope(engine) as session:
        assert session.exec(select(func.count()).select_from(InboxEvent)).one() == 1


def test_a_replayed_whatsapp_message_is_processed_once_and_signatures_bind_the_path(
    engine: Engine, clock: FixedClock, places: Gazetteer, tmp_path: Path
) -> None:
    """The same signed MessageSid three times: one row, one reply. A valid signature replayed
    to the other webhook, with a query string, or over an edited form is refused."""
    with (
        FakeTwilioAPI(auth_token=TWILIO_TOKEN) as fake,
        WhatsAppBot(fake, engine=engine, clock=clock, places=places, folder=tmp_path) as bot,
    ):
        form = inbound_form("+23276000005", "Hello, good morning to the team")
        for _ in range(3):
            assert fake.send_inbound(bot.inbound_url, form) == 200
        bot.settle("whatsapp:+23276000005")
        assert len(fake.sent_to("+23276000005")) == 1
        signature = sign(TWILIO_TOKEN, bot.inbound_url, form)
        headers = {"X-Twilio-Signature": signature}
        base = bot.server.base_url
        with httpx.Client() as client:
            elsewhere = client.post(base + "/whatsapp/status", data=form, headers=headers)
            queried = client.post(base + "/whatsapp/inbound?x=1", data=form, headers=headers)
            edited = client.post(
                base + "/whatsapp/inbound", data={**form, "Body": "/stop"}, headers=headers
            )
            again = client.post(base + "/whatsapp/inbound", data=form, headers=headers)
        assert [r.status_code for r in (elsewhere, queried, edited)] == [403, 403, 403]
        assert again.status_code == 200  # the genuine request, replayed: a duplicate
        bot.settle("whatsapp:+23276000005")
        assert len(fake.sent_to("+23276000005")) == 1
    with session_scope(engine) as session:
        assert session.exec(select(func.count()).select_from(InboxEvent)).one() == 1


# -- staff commands --------------------------------------------------------------------------


def test_staff_commands_are_refused_to_a_whatsapp_outsider(
    engine: Engine, clock: FixedClock, places: Gazetteer, tmp_path: Path
) -> None:
    """Over signed webhooks, a contact without the role gets the help and nothing happens."""
    with (
        FakeTwilioAPI(auth_token=TWILIO_TOKEN) as fake,
        WhatsAppBot(
            fake,
            engine=engine,
            clock=clock,
            places=places,
            folder=tmp_path,
            staff_urns={"whatsapp:+23276999999": "admin"},
        ) as bot,
    ):
        bot.say("+23276000006", "Hello, good morning to the team")
        for command in ("/broadcast", "/report surveys", "/export contacts csv", "/promote 1"):
            [reply] = bot.say("+23276000006", command)
            assert t("help_text", "en") in (reply.body or ""), command
        assert bot.contact("+23276000006").staff_role is None
    with session_scope(engine) as session:
        assert session.exec(select(func.count()).select_from(Broadcast)).one() == 0


def test_redact_handles_every_registered_form() -> None:
    """A registered secret is redacted as given and URL-encoded."""
    protect_secrets("a/b+c=secret-value")
    text = redact("x a/b+c=secret-value y a%2Fb%2Bc%3Dsecret-value z")
    assert text == "x [redacted] y [redacted] z"
