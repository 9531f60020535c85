"""Telegram adapter: saved Update JSON → neutral Inbound (or nothing), as a table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from telegram import Bot, Update

from bot.channels.telegram_adapter import chat_of, to_received, urn_of

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DATE = 1_793_610_000  # 2026-11-02 08:20:00 UTC
SENT = datetime.fromtimestamp(DATE, tz=UTC)

USER_FR = {"id": 42, "is_bot": False, "first_name": "Awa", "language_code": "fr"}
USER_PT_BR = {"id": 43, "is_bot": False, "first_name": "Ana", "language_code": "pt-br"}
USER_NONE = {"id": 44, "is_bot": False, "first_name": "Li"}
CHAT_42 = {"id": 42, "type": "private", "first_name": "Awa"}
BOT = {"id": 123, "is_bot": True, "first_name": "City partners", "username": "CityPartnersBot"}
KEYBOARD = {
    "inline_keyboard": [
        [{"text": "Oui", "callback_data": "s1:#yes"}, {"text": "Non", "callback_data": "s1:#no"}]
    ]
}
BOT_MESSAGE = {
    "message_id": 7,
    "from": BOT,
    "chat": CHAT_42,
    "date": DATE - 60,
    "text": "Acceptez-vous ?",
    "reply_markup": KEYBOARD,
}


def message(text: str | None = None, **extra: Any) -> dict[str, Any]:
    """A private message from user 42 (French app)."""
    body: dict[str, Any] = {"message_id": 8, "from": USER_FR, "chat": CHAT_42, "date": DATE}
    if text is not None:
        body["text"] = text
    body.update(extra)
    return body


# (case, update JSON, expected: None or (chat, text, choice_id, hint, received_at, query?))
CASES: list[tuple[str, dict[str, Any], tuple[Any, ...] | None]] = [
    (
        "typed text with the app language as hint",
        {"update_id": 1, "message": message("Bonjour, je suis la maire")},
        (42, "Bonjour, je suis la maire", None, "fr", SENT, None),
    ),
    (
        "Start button",
        {
            "update_id": 2,
            "message": message(
                "/start", entities=[{"type": "bot_command", "offset": 0, "length": 6}]
            ),
        },
        (42, "/start", None, "fr", SENT, None),
    ),
    (
        "deep link t.me/<bot>?start=needs",
        {
            "update_id": 3,
            "message": message(
                "/start needs", entities=[{"type": "bot_command", "offset": 0, "length": 6}]
            ),
        },
        (42, "/start needs", None, "fr", SENT, None),
    ),
    (
        "regional language tag is passed as is",
        {"update_id": 4, "message": message("Olá", **{"from": USER_PT_BR})},
        (42, "Olá", None, "pt-br", SENT, None),
    ),
    (
        "no language_code: no hint",
        {"update_id": 5, "message": message("hello", **{"from": USER_NONE})},
        (42, "hello", None, None, SENT, None),
    ),
    (
        "a photo's caption is its text",
        {
            "update_id": 6,
            "message": message(
                caption="Our market",
                photo=[{"file_id": "p", "file_unique_id": "u", "width": 9, "height": 9}],
            ),
        },
        (42, "Our market", None, "fr", SENT, None),
    ),
    (
        "a sticker arrives as empty text (the bot still answers)",
        {
            "update_id": 7,
            "message": message(
                sticker={
                    "file_id": "s",
                    "file_unique_id": "u",
                    "type": "regular",
                    "width": 9,
                    "height": 9,
                    "is_animated": False,
                    "is_video": False,
                }
            ),
        },
        (42, "", None, "fr", SENT, None),
    ),
    (
        "a tapped button: its data is the choice, its label the text",
        {
            "update_id": 8,
            "callback_query": {
                "id": "4382",
                "from": USER_FR,
                "message": BOT_MESSAGE,
                "chat_instance": "-99",
                "data": "s1:#no",
            },
        },
        (42, "Non", "s1:#no", "fr", NOW, ("4382", 7)),
    ),
    (
        "a tap on a message too old to be shown: chat from the stub, no label",
        {
            "update_id": 9,
            "callback_query": {
                "id": "4383",
                "from": USER_FR,
                "message": {"message_id": 3, "chat": CHAT_42, "date": 0},
                "chat_instance": "-99",
                "data": "m:needs",
            },
        },
        (42, "", "m:needs", "fr", NOW, ("4383", 3)),
    ),
    (
        "a tap without data is answered but not stored",
        {
            "update_id": 10,
            "callback_query": {
                "id": "4384",
                "from": USER_FR,
                "message": BOT_MESSAGE,
                "chat_instance": "-99",
                "game_short_name": "quiz",
            },
        },
        (42, None, None, None, None, ("4384", 7)),
    ),
    (
        "a group message is ignored",
        {
            "update_id": 11,
            "message": message("hello", chat={"id": -100, "type": "group", "title": "Mayors"}),
        },
        None,
    ),
    ("an edited message is ignored", {"update_id": 12, "edited_message": message("x")}, None),
    (
        "the person blocking the bot (my_chat_member) is ignored",
        {
            "update_id": 13,
            "my_chat_member": {
                "chat": CHAT_42,
                "from": USER_FR,
                "date": DATE,
                "old_chat_member": {"status": "member", "user": BOT},
                "new_chat_member": {"status": "kicked", "user": BOT, "until_date": 0},
            },
        },
        None,
    ),
    (
        "a channel post is ignored",
        {
            "update_id": 14,
            "channel_post": {
                "message_id": 1,
                "chat": {"id": -200, "type": "channel", "title": "News"},
                "date": DATE,
                "text": "hi",
            },
        },
        None,
    ),
]


@pytest.mark.parametrize(("update", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_update_to_inbound(update: dict[str, Any], expected: tuple[Any, ...] | None) -> None:
    """Each saved update translates to the neutral message the router expects."""
    bot = Bot("123:TEST")
    received = to_received(Update.de_json(update, bot), now=NOW)  # type: ignore[arg-type]
    if expected is None:
        assert received is None
        return
    chat, text, choice_id, hint, at, query = expected
    assert received is not None
    assert received.update_id == update["update_id"] and received.chat_id == chat
    if query is None:
        assert received.callback_query_id is None and received.callback_message_id is None
    else:
        assert (received.callback_query_id, received.callback_message_id) == query
    if text is None:
        assert received.inbound is None
        return
    inbound = received.inbound
    assert inbound is not None
    assert inbound.urn == f"telegram:{chat}" and inbound.channel == "telegram"
    assert (inbound.text, inbound.choice_id, inbound.language_hint) == (text, choice_id, hint)
    assert inbound.received_at == at and inbound.received_at.tzinfo is not None


def test_urns_round_trip() -> None:
    """A chat id and its URN convert both ways; other channels are refused."""
    assert urn_of(-1001) == "telegram:-1001" and chat_of("telegram:42") == 42
    with pytest.raises(ValueError):
        chat_of("whatsapp:+2327000000")
