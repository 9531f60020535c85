"""Telegram out: a neutral `Outgoing` becomes the Bot API messages that show it.

Choices become an inline keyboard (two buttons a row when every label is short, else one)
whose callback data is the choice id; typing the option works as well, so nothing here is
needed to answer. Text longer than a Telegram message is split at line breaks; the keyboard
goes on the last part. Attachments become documents or photos; when the message asks a
question, they come first so the keyboard stays at the bottom of the chat.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import InlineKeyboardButtonLimit, MessageLimit

from handlers.messages import Choice, Outgoing

MAX_TEXT = MessageLimit.MAX_TEXT_LENGTH  # 4096
MAX_CAPTION = MessageLimit.CAPTION_LENGTH  # 1024
MAX_CALLBACK_DATA = InlineKeyboardButtonLimit.MAX_CALLBACK_DATA  # 64 bytes
SHORT_LABEL = 18  # display columns: labels this short go two a row


class RenderError(ValueError):
    """A message that cannot be shown on Telegram as it is."""


@dataclass(frozen=True, slots=True)
class Piece:
    """One Bot API message: text (with a keyboard) or a file (with a caption)."""

    kind: str  # "text" | "document" | "image"
    text: str
    keyboard: InlineKeyboardMarkup | None = None
    path: str = ""
    filename: str = ""


def width(label: str) -> int:
    """Display columns of a label (wide CJK characters count two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in label)


def callback_data(choice: Choice) -> str:
    """The button's callback data: the choice id, short ASCII (checked here)."""
    data = choice.id
    if not data or not data.isascii() or len(data.encode("ascii")) > MAX_CALLBACK_DATA:
        raise RenderError(f"choice id must be 1-{MAX_CALLBACK_DATA} ASCII bytes")
    return data


def keyboard(choices: tuple[Choice, ...]) -> InlineKeyboardMarkup | None:
    """An inline keyboard: one button per row, or two per row when every label is short."""
    if not choices:
        return None
    buttons = [InlineKeyboardButton(c.label, callback_data=callback_data(c)) for c in choices]
    per_row = 2 if all(width(c.label) <= SHORT_LABEL for c in choices) else 1
    rows = [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]
    return InlineKeyboardMarkup(rows)


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut a text into parts of at most `limit` characters, at line breaks where possible."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = rest.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    parts.append(rest)
    return [p for p in parts if p.strip()] or [text]


def _caption(text: str) -> str:
    """A caption within Telegram's limit."""
    return text if len(text) <= MAX_CAPTION else text[: MAX_CAPTION - 1] + "…"


def render(message: Outgoing) -> list[Piece]:
    """The messages that show `message`, in sending order."""
    markup = keyboard(message.choices)
    files = [
        Piece(
            kind="image" if a.kind == "image" else "document",
            text=_caption(a.caption),
            path=a.path,
            filename=a.filename,
        )
        for a in message.attachments
    ]
    if not message.text.strip():
        if markup is not None:
            raise RenderError("choices need a text to hang on")
        return files
    texts = split_text(message.text)
    pieces = [Piece(kind="text", text=t) for t in texts[:-1]]
    pieces.append(Piece(kind="text", text=texts[-1], keyboard=markup))
    return files + pieces if markup is not None else pieces + files
