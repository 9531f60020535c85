"""A fake Telegram Bot API: a real HTTP server on 127.0.0.1 (Starlette on uvicorn, own thread).

python-telegram-bot talks to it over HTTP through `base_url` (see `FakeTelegram.base_url`),
exactly as it talks to api.telegram.org: form-encoded or multipart POSTs to
`/bot<token>/<method>`, Telegram-shaped JSON answers (`ok`, `result`, `error_code`,
`description`, `parameters.retry_after`).

Methods: getMe, getUpdates (long polling), setWebhook, deleteWebhook, getWebhookInfo,
sendMessage, sendDocument, sendPhoto, answerCallbackQuery, editMessageReplyMarkup,
setMyCommands, getMyCommands.

It records every call, enforces Telegram's flood limits on the send methods (at most
`rate_per_second` messages in any sliding second overall and `rate_per_chat` per chat; a
message over a limit is answered 429 with `retry_after` and counted in `rate_limited`),
answers scripted errors per method and/or chat (`fail`), and plays the people: it builds their
updates (`message_update`, `callback_update`) and delivers them by getUpdates (`queue_update`)
or by POSTing them to a webhook on loopback with the registered secret (`deliver`).
It never contacts any address but loopback.

The pieces live in their own modules, re-exported here: the Bot API's constants and the
records (`telegram_protocol`), the fake's state (`telegram_state`), its methods
(`telegram_methods`), the server and the people (`telegram_server`), and the harness that
serves our app against it (`telegram_harness`).
"""

from tests.fakes.telegram_harness import Harness, Person, wire
from tests.fakes.telegram_protocol import (
    BOOL_PARAMS,
    DESCRIPTIONS,
    INT_PARAMS,
    JSON_PARAMS,
    LOOPBACK,
    SECRET_HEADER,
    SEND_METHODS,
    BotMessage,
    Call,
    Scripted,
)
from tests.fakes.telegram_server import FakeTelegram

__all__ = [
    "BOOL_PARAMS",
    "DESCRIPTIONS",
    "INT_PARAMS",
    "JSON_PARAMS",
    "LOOPBACK",
    "SECRET_HEADER",
    "SEND_METHODS",
    "BotMessage",
    "Call",
    "FakeTelegram",
    "Harness",
    "Person",
    "Scripted",
    "wire",
]
