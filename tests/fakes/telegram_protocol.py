"""The Bot API's constants, the records the fake Telegram keeps, and request decoding."""

from __future__ import annotations

import email.parser
import email.policy
import json
import math
from dataclasses import dataclass, field
from typing import Any

SEND_METHODS = frozenset({"sendMessage", "sendDocument", "sendPhoto"})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    403: "Forbidden: bot was blocked by the user",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
INT_PARAMS = frozenset({"chat_id", "message_id", "offset", "limit", "max_connections"})
JSON_PARAMS = frozenset({"reply_markup", "commands", "scope", "allowed_updates", "timeout"})
BOOL_PARAMS = frozenset({"drop_pending_updates", "show_alert"})


@dataclass
class Call:
    """One request the fake received, with the HTTP status it answered."""

    method: str
    params: dict[str, Any]
    chat_id: int | None
    at: float
    status: int = 200


@dataclass
class Scripted:
    """An error to answer instead of doing the work, `times` times."""

    method: str | None
    chat_id: int | None
    status: int
    description: str
    retry_after: int | None
    times: int
    body: bytes | None


@dataclass
class BotMessage:
    """A message the bot sent, as the fake stores it."""

    message_id: int
    chat_id: int
    method: str
    text: str
    reply_markup: dict[str, Any] | None
    at: float
    date: int
    extra: dict[str, Any] = field(default_factory=dict)

    def labels(self) -> list[str]:
        """The labels of the inline keyboard, row by row."""
        if not self.reply_markup:
            return []
        return [b["text"] for row in self.reply_markup["inline_keyboard"] for b in row]

    def button_data(self, label: str) -> str | None:
        """The callback data of the button with this label, if the keyboard has it."""
        if not self.reply_markup:
            return None
        for row in self.reply_markup["inline_keyboard"]:
            for button in row:
                if button["text"] == label:
                    return str(button["callback_data"])
        return None


def _window(rate: float) -> tuple[int, float]:
    """Express a rate as at most `limit` events in `window` seconds."""
    limit = max(1, math.floor(rate))
    return limit, limit / rate


def _parse_params(method: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Decode Bot API parameters: PTB sends strings raw and everything else JSON-encoded."""
    params: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, dict):  # an uploaded file
            params[name] = value
        elif name in INT_PARAMS:
            params[name] = int(value)
        elif name in JSON_PARAMS or name in BOOL_PARAMS:
            params[name] = json.loads(value)
        else:
            params[name] = value
    return params


def _parse_multipart(body: bytes, content_type: str) -> dict[str, Any]:
    """Read a multipart/form-data body; files become {filename, size, content}."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename:
            fields[name] = {"filename": filename, "size": len(payload), "content": payload}
        else:
            fields[name] = payload.decode("utf-8")
    return fields
