"""WhatsApp outbound over real HTTP: Twilio's errors, retries, their bound and timeouts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.bot.whatsapp_outbound_cases import PHONE, retry_now, settled, tried_more_than
from tests.bot.whatsapp_outbound_cases import fake as fake  # a fixture
from tests.bot.whatsapp_outbound_cases import make_bot as make_bot  # a fixture
from tests.fakes.twilio_api import WhatsAppBot

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
