"""WhatsApp outbound over real HTTP: the 24-hour window, templates, a list-picker menu."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from tests.bot.whatsapp_outbound_cases import (
    HX_LIST,
    HX_REMINDER_EN,
    HX_REMINDER_ES,
    PHONE,
    WEBINAR,
    settled,
)
from tests.bot.whatsapp_outbound_cases import fake as fake  # a fixture
from tests.bot.whatsapp_outbound_cases import make_bot as make_bot  # a fixture
from tests.fakes.twilio_api import WhatsAppBot

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
