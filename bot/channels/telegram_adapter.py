"""Telegram in: a python-telegram-bot `Update` becomes a neutral `Inbound` (or nothing).

Only private chats are served. A text message (or a caption) is typed text; a message with
neither (a sticker, a voice note) arrives as empty text so the bot still answers. A tapped
inline button arrives with its callback data as the choice id and its label as the text.
Edited messages, channel posts, membership changes and the like are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from telegram import CallbackQuery, Message, Update

from handlers.messages import Inbound

URN_PREFIX = "telegram:"


@dataclass(frozen=True, slots=True)
class Received:
    """What one update means to us: who, what, and the button query to answer."""

    update_id: int
    chat_id: int
    inbound: Inbound | None
    callback_query_id: str | None = None
    callback_message_id: int | None = None


def urn_of(chat_id: int) -> str:
    """The URN of a Telegram chat."""
    return f"{URN_PREFIX}{chat_id}"


def chat_of(urn: str) -> int:
    """The chat id of a Telegram URN; ValueError for anything else."""
    if not urn.startswith(URN_PREFIX):
        raise ValueError("not a telegram URN")
    return int(urn[len(URN_PREFIX) :])


def _label_of(query: CallbackQuery) -> str:
    """The label of the tapped button, read from the message's keyboard when it is there."""
    message = query.message
    if not isinstance(message, Message) or message.reply_markup is None:
        return ""
    for row in message.reply_markup.inline_keyboard:
        for button in row:
            if button.callback_data == query.data:
                return button.text
    return ""


def _from_message(update: Update, message: Message, now: datetime) -> Received | None:
    """A message a person sent."""
    if message.chat.type != "private":
        return None
    user = message.from_user
    text = message.text if message.text is not None else (message.caption or "")
    inbound = Inbound(
        urn=urn_of(message.chat.id),
        text=text,
        received_at=message.date if message.date.tzinfo is not None else now,
        language_hint=user.language_code if user is not None else None,
    )
    return Received(update.update_id, message.chat.id, inbound)


def _from_callback(update: Update, query: CallbackQuery, now: datetime) -> Received | None:
    """A tap on an inline button: answered always, stored when it carries data."""
    message = query.message
    if message is not None and message.chat.type != "private":
        return None
    chat_id = message.chat.id if message is not None else query.from_user.id
    inbound = None
    if query.data:
        inbound = Inbound(
            urn=urn_of(chat_id),
            text=_label_of(query),
            received_at=now,
            choice_id=query.data,
            language_hint=query.from_user.language_code,
        )
    return Received(
        update.update_id,
        chat_id,
        inbound,
        callback_query_id=query.id,
        callback_message_id=message.message_id if message is not None else None,
    )


def to_received(update: Update, *, now: datetime) -> Received | None:
    """Translate an update; None for the kinds the bot ignores."""
    if update.message is not None:
        return _from_message(update, update.message, now)
    if update.callback_query is not None:
        return _from_callback(update, update.callback_query, now)
    return None
