"""What a Telegram update must look like before it is stored.

Telegram documents the types and ranges of its ids and fields; an update outside them is
refused (400) rather than stored, and text that no database accepts (lone surrogates from
`\\ud800` escapes in JSON) is made storable.
"""

from __future__ import annotations

import dataclasses

from bot.channels.telegram_adapter import Received

MAX_UPDATE_ID = (1 << 63) - 1
MAX_CHAT_ID = 1 << 53  # Telegram's ids fit in 52 bits
MAX_TEXT = 8192  # a message is at most 4096 characters (UTF-16 units) after entities parsing
MAX_CALLBACK_DATA = 64  # bytes
MAX_LANGUAGE_CODE = 35  # an IETF language tag


def _valid_unicode(text: str) -> str:
    """`text` with lone surrogates (from `\\ud800` escapes in JSON) replaced by U+FFFD."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def clean(received: Received) -> Received:
    """The update with storable text: no lone surrogates, which no database accepts."""
    inbound = received.inbound
    if inbound is None:
        return received
    text = _valid_unicode(inbound.text)
    choice = _valid_unicode(inbound.choice_id) if inbound.choice_id is not None else None
    hint = _valid_unicode(inbound.language_hint) if inbound.language_hint is not None else None
    if (text, choice, hint) == (inbound.text, inbound.choice_id, inbound.language_hint):
        return received
    cleaned = dataclasses.replace(inbound, text=text, choice_id=choice, language_hint=hint)
    return dataclasses.replace(received, inbound=cleaned)


def _is_int(value: object, low: int, high: int) -> bool:
    """Whether `value` is an int (not a bool) in [low, high]."""
    return type(value) is int and low <= value <= high


def _short_text(value: object, limit: int, *, optional: bool = True) -> bool:
    """Whether `value` is a string of at most `limit` characters (or None when optional)."""
    if value is None:
        return optional
    return isinstance(value, str) and len(value) <= limit


def valid_update_id(value: object) -> bool:
    """Whether a value can be an update_id (an int, not a bool, in Telegram's range)."""
    return _is_int(value, 0, MAX_UPDATE_ID)


def well_formed(received: Received) -> bool:
    """Whether an update's ids and fields have the types and ranges Telegram documents."""
    if not valid_update_id(received.update_id):
        return False
    if not _is_int(received.chat_id, -MAX_CHAT_ID, MAX_CHAT_ID):
        return False
    if received.callback_message_id is not None and not _is_int(
        received.callback_message_id, 0, MAX_UPDATE_ID
    ):
        return False
    if not _short_text(received.callback_query_id, 256):
        return False
    inbound = received.inbound
    if inbound is None:
        return True
    choice = inbound.choice_id
    if choice is not None and not (
        isinstance(choice, str)
        and 1 <= len(choice.encode("utf-8", "surrogatepass")) <= MAX_CALLBACK_DATA
    ):
        return False
    return _short_text(inbound.text, MAX_TEXT, optional=False) and _short_text(
        inbound.language_hint, MAX_LANGUAGE_CODE
    )


class Malformed(ValueError):
    """An update that is not what Telegram sends."""
