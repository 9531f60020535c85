"""WhatsApp outbound over real HTTP: Twilio's status callbacks, in and out of order."""

from __future__ import annotations

from collections.abc import Callable

from tests.bot.whatsapp_outbound_cases import PHONE, settled
from tests.bot.whatsapp_outbound_cases import fake as fake  # a fixture
from tests.bot.whatsapp_outbound_cases import make_bot as make_bot  # a fixture
from tests.fakes.twilio_api import FakeTwilioAPI, WhatsAppBot, new_sid

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
