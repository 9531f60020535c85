"""WhatsApp outbound over real HTTP: the 24-hour window, templates, errors, statuses, rate.

twilio's own async client sends through `TWILIO_API_BASE_URL` to the fake Twilio API on
loopback, which answers as Twilio does (201 with a Message resource, or Twilio-shaped errors)
and plays signed status callbacks back to the bot. Proactive messages are queued straight into
the outbox, as the scheduler's jobs do; the fixed clock is moved to leave the window or to make
a retry due.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from handlers.places import Gazetteer
from storage.models import OutboxMessage
from tests.fakes.twilio_api import FakeTwilioAPI, WhatsAppBot, new_sid

TOKEN = "test-auth-token-outbound"
HX_REMINDER_EN = "HX" + "1" * 32
HX_REMINDER_ES = "HX" + "2" * 32
HX_BROADCAST_EN = "HX" + "3" * 32
HX_LIST = {n: "HX" + f"{n:02d}" * 16 for n in range(2, 11)}
TEMPLATES: dict[str, Any] = {
    "reminder": {
        "en": {"content_sid": HX_REMINDER_EN, "variables": ["title", "starts"]},
        "es": {"content_sid": HX_REMINDER_ES, "variables": ["title", "starts"]},
    },
    "broadcast": {"en": {"content_sid": HX_BROADCAST_EN, "variables": ["text"]}},
    "interactive": {"list_picker": HX_LIST},
}
WEBINAR = {"title": "Waste management\nin coastal cities", "starts": "4 Nov 2026, 14:00 GMT"}
PHONE = "+23276500001"


@pytest.fixture
def fake() -> Iterator[FakeTwilioAPI]:
    """A fake Twilio API on loopback."""
    with FakeTwilioAPI(auth_token=TOKEN) as api:
        yield api


@pytest.fixture
def make_bot(
    fake: FakeTwilioAPI, engine: Engine, clock: FixedClock, places: Gazetteer, tmp_path: Path
) -> Iterator[Callable[..., WhatsAppBot]]:
    """Start the bot against the fake with the test templates (or others)."""
    started: list[WhatsAppBot] = []

    def make(**kwargs: Any) -> WhatsAppBot:
        """Start one bot."""
        kwargs.setdefault("templates", TEMPLATES)
        bot = WhatsAppBot(
            fake, engine=engine, clock=clock, places=places, folder=tmp_path, **kwargs
        ).__enter__()
        started.append(bot)
        return bot

    yield make
    for bot in started:
        bot.__exit__(None, None, None)


def settled(row: OutboxMessage) -> bool:
    """The dispatcher is done with the message for now (sent, failed, or waiting to retry)."""
    return row.status not in ("pending", "sending") or (
        row.status == "pending" and row.error_code is not None
    )


def tried_more_than(attempts: int) -> Callable[[OutboxMessage], bool]:
    """A predicate: the message was tried more than `attempts` times."""
    return lambda row: row.attempts > attempts


def retry_now(bot: WhatsAppBot, clock: FixedClock) -> None:
    """Move past any backoff and wake the dispatcher."""
    clock.advance(timedelta(minutes=10))
    bot.wake()


# -- the 24-hour window ---------------------------------------------------------------------------


def test_in_the_window_a_reminder_goes_as_text(make_bot: Callable[..., WhatsAppBot]) -> None:
    """A contact who wrote less than 24 hours ago gets the proactive message as it is."""
    bot = make_bot()
    bot.say(PHONE, "Hello, good morning to the team")
    bot.clock.advance(timedelta(hours=23))
    message_id = bot.enqueue(PHONE, "Your webinar starts tomorrow at 14:00.", meta=WEBINAR)
    row = bot.wait_row(message_id, settled)
    assert row.status == "queued" and row.provider_id
    sent = bot.fake.message(row.provider_id)
    assert sent.body == "Your webinar starts tomorrow at 14:00." and sent.content_sid is None


def test_outside_the_window_the_approved_template_is_used(
    make_bot: Callable[..., WhatsAppBot],
) -> None:
    """25 hours after the last message: ContentSid + ContentVariables, no Body."""
    bot = make_bot()
    bot.say(PHONE, "Hello, good morning to the team")
    bot.clock.advance(timedelta(hours=25))
    message_id = bot.enqueue(PHONE, "Your webinar starts tomorrow.", meta=WEBINAR)
    row = bot.wait_row(message_id, settled)
    assert row.status == "queued"
    sent = bot.fake.message(row.provider_id)
    assert sent.body is None and "Body" not in sent.params and sent.media_urls == []
    assert sent.content_sid == HX_REMINDER_EN
    assert sent.content_variables == {
        "1": "Waste management in coastal cities",  # one line: WhatsApp refuses newlines
        "2": "4 Nov 2026, 14:00 GMT",
    }


def test_the_template_of_the_contacts_language_is_chosen(
    make_bot: Callable[..., WhatsAppBot],
) -> None:
    """A Spanish-speaking contact gets the Spanish template."""
    bot = make_bot()
    bot.say(PHONE, "Hola, buenos días, quisiera responder la encuesta")
    bot.clock.advance(timedelta(days=3))
    message_id = bot.enqueue(PHONE, "Su seminario empieza mañana.", language="es", meta=WEBINAR)
    row = bot.wait_row(message_id, settled)
    assert bot.fake.message(row.provider_id).content_sid == HX_REMINDER_ES


@pytest.mark.parametrize(
    ("kind", "language", "wrote"),
    [
        ("reminder", "fr", True),  # a template for the kind, not in French
        ("delivery_update", "en", True),  # no template for the kind at all
        ("broadcast", "ar", False),  # a contact who never wrote: the window was never open
    ],
)
def test_without_a_template_the_message_is_held_as_needs_template(
    make_bot: Callable[..., WhatsAppBot], kind: str, language: str, wrote: bool
) -> None:
    """No (kind, language) template: held with status needs_template; Twilio is not called."""
    bot = make_bot()
    if wrote:
        bot.say(PHONE, "Hello, good morning to the team")
    bot.clock.advance(timedelta(hours=30))
    before = len(bot.fake.sent())
    requests = bot.fake.requests
    message_id = bot.enqueue(PHONE, "News from the programme", kind=kind, language=language)
    row = bot.wait_row(message_id, settled)
    assert row.status == "needs_template"
    assert row.error_code == "63016-local" and f"{kind}/{language}" in (row.error_reason or "")
    assert len(bot.fake.sent()) == before and bot.fake.requests == requests
    metrics = httpx.get(bot.server.base_url + "/metrics").text  # visible to staff
    assert 'citybot_outbox_messages{channel="whatsapp",status="needs_template"} 1' in metrics


def test_twilio_63016_holds_the_message_as_needs_template(
    make_bot: Callable[..., WhatsAppBot],
) -> None:
    """If Twilio says 63016 (our view of the window was wrong), the message is held too."""
    bot = make_bot()
    bot.say(PHONE, "Hello, good morning to the team")
    bot.fake.fail(PHONE, 63016)
    message_id = bot.enqueue(PHONE, "A free-form message")
    row = bot.wait_row(message_id, settled)
    assert (row.status, row.error_code) == ("needs_template", "63016")


def test_a_late_63016_in_a_status_callback_holds_the_message(
    make_bot: Callable[..., WhatsAppBot],
) -> None:
    """Twilio usually reports 63016 after accepting the message: failed + ErrorCode=63016."""
    bot = make_bot()
    bot.say(PHONE, "Hello, good morning to the team")
    message_id = bot.enqueue(PHONE, "A free-form message")
    row = bot.wait_row(message_id, settled)
    assert bot.fake.send_status(row.provider_id, "failed", error_code="63016") == 200
    row = bot.row(message_id)
    assert (row.status, row.error_code) == ("needs_template", "63016")


# -- Twilio's errors ------------------------------------------------------------------------------


def test_21610_opts_the_contact_out(make_bot: Callable[..., WhatsAppBot]) -> None:
    """'Attempt to send to unsubscribed recipient': failed, and the contact is opted out."""
    bot = make_bot()
    bot.say(PHONE, "Hello, good morning to the team")
    bot.fake.fail(PHONE, 21610)
    row = bot.wait_row(bot.enqueue(PHONE, "Reminder"), settled)
    assert (row.status, row.error_code) == ("failed", "21610")
    assert "unsubscribed" in (row.error_reason or "")
    assert bot.contact(PHONE).opted_out
    later = bot.wait_row(bot.enqueue(PHONE, "Another reminder"), settled)
    assert (later.status, later.error_code) == ("failed", "opted-out")


def test_a_late_21610_in_a_status_callback_opts_the_contact_out(
    make_bot: Callable[..., WhatsAppBot],
) -> None:
    """The unsubscribe can also arrive as a failed status callback."""
    bot = make_bot()
    bot.say(PHONE, "Hello, good morning to the team")
    row = bot.wait_row(bot.enqueue(PHONE, "Reminder"), settled)
    assert bot.fake.send_status(row.provider_id, "failed", error_code="21610") == 200
    assert bot.contact(PHONE).opted_out


@pytest.mark.parametrize(
    ("code", "status"), [(20429, None), (429, 429), (63018, None), (20500, None), (503, 503)]
)
def test_throttling_and_server_errors_are_retried(
    make_bot: Callable[..., WhatsAppBot], code: int, status: int | None
) -> None:
    """429/20429/63018 and 5xx: back to pending with a backoff, then sent when due."""
    bot = make_bot()
    bot.say(PHONE, "Hello, good morning to the team")
    bot.fake.fail(PHONE, code, status=status, retry_after=0.05)
    message_id = bot.enqueue(PHONE, "Reminder")
    row = bot.wait_row(message_id, settled)
    assert (row.status, row.error_code, row.attempts) == ("pending", str(code), 1)
    assert row.next_attempt_at > bot.clock.now()
    retry_now(bot, bot.clock)
    row = bot.wait_row(message_id, lambda r: r.status == "queued")
    assert row.attempts == 2 and row.error_code is None
    assert bot.fake.message(row.provider_id).body == "Reminder"


def test_retry_after_is_honoured(make_bot: Callable[..., WhatsAppBot]) -> None:
    """A Retry-After header sets when the message is tried again."""
    bot = make_bot()
    bot.say(PHONE, "Hello, good morning to the team")
    bot.fake.fail(PHONE, 20429, retry_after=0.5)
    message_id = bot.enqueue(PHONE, "Reminder")
    row = bot.wait_row(message_id, settled)
    wait = (row.next_attempt_at - bot.clock.now()).total_seconds()
    assert wait == pytest.approx(0.5, abs=0.01)


def test_retries_are_bounded(make_bot: Callable[..., WhatsAppBot]) -> None:
    """A server error that never ends fails the message after SEND_MAX_ATTEMPTS."""
    bot = make_bot(send_max_attempts=3)
    bot.say(PHONE, "Hello, good morning to the team")
    bot.fake.fail(PHONE, 20500, times=-1)
    message_id = bot.enqueue(PHONE, "Reminder")
    for attempt in (1, 2):
        row = bot.wait_row(message_id, settled)
        assert (row.status, row.attempts) == ("pending", attempt)
        retry_now(bot, bot.clock)
        bot.wait_row(message_id, tried_more_than(attempt))
    row = bot.wait_row(message_id, lambda r: r.status == "failed")
    assert (row.attempts, row.error_code) == (3, "20500")


@pytest.mark.parametrize(
    ("code", "unreachable"), [(21211, True), (63024, True), (21408, False), (21617, False)]
)
def test_other_client_errors_fail_with_the_reason(
    make_bot: Callable[..., WhatsAppBot], code: int, unreachable: bool
) -> None:
    """Other 4xx: failed at once with Twilio's code and message, phone numbers removed."""
    bot = make_bot()
    bot.say(PHONE, "Hello, good morning to the team")
    bot.fake.fail(PHONE, code)
    row = bot.wait_row(bot.enqueue(PHONE, "Reminder"), settled)
    assert (row.status, row.error_code, row.attempts) == ("failed", str(code), 1)
    assert row.error_reason and PHONE not in row.error_reason
    assert bot.contact(PHONE).unreachable is unreachable


def test_every_send_has_a_timeout(make_bot: Callable[..., WhatsAppBot]) -> None:
    """A Twilio that does not answer fails the send after SEND_TIMEOUT_SECONDS (not retried)."""
    bot = make_bot(send_timeout_seconds=0.3)
    bot.say(PHONE, "Hello, good morning to the team")
    bot.fake.delay(PHONE, 1.0)  # it would answer 201 after a second: too late
    row = bot.wait_row(bot.enqueue(PHONE, "Reminder"), settled)
    assert (row.status, row.error_code, row.attempts) == ("failed", "timeout", 1)


# -- status callbacks -----------------------------------------------------------------------------


def test_status_callbacks_move_forward_and_ignore_regressions(
    make_bot: Callable[..., WhatsAppBot],
) -> None:
    """queued < sent < delivered < read; a late 'sent' or 'delivered' changes nothing."""
    bot = make_bot()
    bot.say(PHONE, "Hello, good morning to the team")
    message_id = bot.enqueue(PHONE, "Reminder")
    sid = bot.wait_row(message_id, settled).provider_id
    assert bot.row(message_id).status == "queued"
    for status, expected in [
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("sent", "delivered"),  # out of order: ignored
        ("read", "read"),
        ("delivered", "read"),
        ("failed", "read"),  # read is final
    ]:
        assert bot.fake.send_status(sid, status) == 200
        assert bot.row(message_id).status == expected, status


def test_a_failure_callback_keeps_twilios_error_code(
    make_bot: Callable[..., WhatsAppBot],
) -> None:
    """failed/undelivered are terminal and keep ErrorCode; later statuses are ignored."""
    bot = make_bot()
    bot.say(PHONE, "Hello, good morning to the team")
    first = bot.wait_row(bot.enqueue(PHONE, "One"), settled)
    second = bot.wait_row(bot.enqueue(PHONE, "Two"), settled)
    bot.fake.send_status(first.provider_id, "sent")
    bot.fake.send_status(first.provider_id, "undelivered", error_code="30008")
    bot.fake.send_status(first.provider_id, "delivered")
    bot.fake.send_status(second.provider_id, "failed", error_code="63024")
    one, two = bot.row(first.id), bot.row(second.id)
    assert (one.status, one.error_code) == ("undelivered", "30008")
    assert (two.status, two.error_code) == ("failed", "63024")


def test_a_callback_for_an_unknown_message_is_acknowledged(
    make_bot: Callable[..., WhatsAppBot],
) -> None:
    """A callback for a message we never sent (or erased) is answered 200 and ignored."""
    bot = make_bot()
    form = {"MessageSid": new_sid(), "MessageStatus": "delivered", "To": f"whatsapp:{PHONE}"}
    assert bot.fake.send_callback(bot.public_base_url + "/whatsapp/status", form) == 200


def test_a_callback_that_beats_the_send_record_is_applied_later(
    make_bot: Callable[..., WhatsAppBot], fake: FakeTwilioAPI
) -> None:
    """Twilio's 'sent' may arrive before the bot has stored the message SID; it still lands."""
    bot = make_bot()
    bot.say(PHONE, "Hello, good morning to the team")
    fake.status_before_answer = "sent"
    message_id = bot.enqueue(PHONE, "Reminder")
    row = bot.wait_row(message_id, lambda r: r.status == "sent")
    assert fake.callbacks[-1] == (row.provider_id, "sent", 200)


# -- rendering ------------------------------------------------------------------------------------


def test_a_language_menu_goes_as_a_list_and_a_list_pick_is_a_choice(
    make_bot: Callable[..., WhatsAppBot],
) -> None:
    """Seven languages fit a list-picker (items ≤ 24 characters); ListId picks one."""
    bot = make_bot()
    bot.say(PHONE, "Hello, good morning to the team")
    [menu] = bot.say(PHONE, "language")
    assert menu.content_sid == HX_LIST[7] and menu.body is None
    variables = menu.content_variables or {}
    assert variables["2"] == "Choose"
    items = {variables[str(3 + 2 * i)]: variables[str(4 + 2 * i)] for i in range(7)}
    assert list(items) == [
        "English",
        "Français",
        "Español",
        "العربية",
        "Русский",
        "中文",
        "Português",
    ]
    [chosen] = bot.say(
        PHONE,
        "Français",
        ListId=items["Français"],
        ListTitle="Français",
        MessageType="interactive",
    )
    assert "Français" in (chosen.body or str(chosen.content_variables))
    assert bot.contact(PHONE).language == "fr"


# -- throughput -----------------------------------------------------------------------------------


def test_sends_are_paced_to_the_configured_rate(
    make_bot: Callable[..., WhatsAppBot], fake: FakeTwilioAPI
) -> None:
    """60 messages at 40/s against a fake enforcing 40/s: none throttled, none early.

    The fake shares this process (and its CPU) with the bot, so it tolerates 225 ms of
    scheduling jitter; without pacing the bot would send all 60 within that. The strict figure
    is bench/whatsapp_outbound.py's, with the fake in another process.
    """
    fake.rate, fake.burst = 40.0, 10
    bot = make_bot(whatsapp_rate_per_second=40.0)
    ids = [bot.enqueue(f"+2327690{n:04d}", f"Hello {n}", kind="reply") for n in range(60)]
    rows = [bot.wait_row(message_id, settled) for message_id in ids]
    assert fake.throttled == 0
    assert {r.status for r in rows} == {"queued"}
    times = sorted(m.at for m in fake.sent())
    assert times[-1] - times[0] >= 59 / 40 * 0.95


def test_the_fake_enforces_its_rate(
    make_bot: Callable[..., WhatsAppBot], fake: FakeTwilioAPI
) -> None:
    """A bot configured faster than the API provokes 429s; they are counted and retried later."""
    fake.rate, fake.burst = 20.0, 1
    bot = make_bot(whatsapp_rate_per_second=500.0)
    ids = [bot.enqueue(f"+2327691{n:04d}", f"Hello {n}", kind="reply") for n in range(10)]
    rows = [bot.wait_row(message_id, settled) for message_id in ids]
    throttled = [r for r in rows if r.status == "pending"]
    assert fake.throttled == len(throttled) > 0
    assert {r.error_code for r in throttled} == {"20429"}
    assert len(fake.sent()) == 10 - len(throttled)


def test_a_stalling_api_never_gets_a_bunch_beyond_its_rate(
    make_bot: Callable[..., WhatsAppBot], fake: FakeTwilioAPI
) -> None:
    """240 messages at 200/s while the API stalls 80 ms on every 20th request: zero 429s.

    During a stall the requests sent meanwhile wait on the way and then arrive together, with
    slow answers followed by fast ones. Pacing the starts alone sent about 16 into each stall
    and the fake refused the bunch beyond its tolerance (10 at 200/s); counting calls in
    flight as arriving now holds them back, whatever the delays, so none is refused.
    """
    fake.rate, fake.burst = 200.0, 10
    fake.stall(0.08, every=20)
    bot = make_bot(whatsapp_rate_per_second=200.0)
    ids = [bot.enqueue(f"+2327692{n:04d}", f"Hello {n}", kind="reply") for n in range(240)]
    rows = [bot.wait_row(message_id, settled) for message_id in ids]
    assert fake.throttled == 0
    assert {r.status for r in rows} == {"queued"}
    assert len(fake.sent()) == 240
