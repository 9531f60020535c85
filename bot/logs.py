"""Logging setup: ids only in our messages, secrets redacted, chatty libraries quiet.

Secrets are redacted where every log record is made (a record factory), so no handler, level
or library can let one through: Telegram bot tokens and Twilio account SIDs by their shape, and
the configured secrets (the bot token, the webhook secret, the Twilio auth token and its Basic
auth pair) by value once `protect_secrets` or `protect_settings` has been told of them. The
request logs of httpx (full URLs, which hold the bot token) and of twilio's HTTP clients (URLs,
headers, phone numbers and bodies) are demoted from INFO to DEBUG, and their loggers are kept at
WARNING by `configure_logging`.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from bot.settings import Settings

_SECRET = re.compile(
    r"(bot\d+:[A-Za-z0-9_-]{20,}|\b\d{5,}:[A-Za-z0-9_-]{30,}|AC[0-9a-f]{32}|(?<=token=)[^&\s]+)"
)
REDACTED = "[redacted]"
NOISY = ("httpx", "httpcore", "telegram", "twilio", "apscheduler", "alembic", "aiohttp")
# Loggers whose INFO records are request dumps (URLs, headers, form data): DEBUG at most.
DEMOTED = ("httpx", "twilio.http_client", "twilio.async_http_client")
MIN_SECRET_LENGTH = 6

_lock = threading.Lock()
_secrets: list[str] = []  # longest first


def protect_secrets(*values: str | None, basic_auth: tuple[str, str] | None = None) -> None:
    """Redact these values (as given and URL-encoded) and a Basic auth pair in every record."""
    forms: set[str] = set()
    for value in values:
        if value and len(value) >= MIN_SECRET_LENGTH:
            forms.update({value, quote(value, safe="")})
    if basic_auth is not None and all(basic_auth):
        pair = f"{basic_auth[0]}:{basic_auth[1]}"
        forms.update({pair, base64.b64encode(pair.encode()).decode()})
    with _lock:
        known = set(_secrets) | forms
        _secrets[:] = sorted(known, key=len, reverse=True)
    install_redaction()


def protect_settings(settings: Settings) -> None:
    """Protect every secret of the settings (bot token, webhook secret, Twilio token)."""
    token = settings.telegram_bot_token
    webhook = settings.telegram_webhook_secret
    twilio = settings.twilio_auth_token
    protect_secrets(
        token.get_secret_value() if token is not None else None,
        webhook.get_secret_value() if webhook is not None else None,
        twilio.get_secret_value() if twilio is not None else None,
        basic_auth=(
            (settings.twilio_account_sid, twilio.get_secret_value())
            if settings.twilio_account_sid and twilio is not None
            else None
        ),
    )


def describe(error: BaseException) -> str:
    """The class names of an error and its driver error; never its message (it holds data)."""
    orig = getattr(error, "orig", None)
    return type(error).__name__ + (f"/{type(orig).__name__}" if orig is not None else "")


def redact(text: str) -> str:
    """`text` with secret-shaped strings and the protected secrets replaced."""
    text = _SECRET.sub(REDACTED, text)
    with _lock:
        known = list(_secrets)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def scrub(record: logging.LogRecord) -> None:
    """Demote request dumps to DEBUG and redact the message and traceback of a record."""
    if record.levelno == logging.INFO and record.name.startswith(DEMOTED):
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: logging reports it when the record is formatted
        return
    redacted = redact(message)
    if redacted != message:
        record.msg, record.args = redacted, ()
    if record.exc_info and record.exc_info[0] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        cleaned = redact(text)
        if cleaned != text:
            record.exc_text = cleaned


class RedactSecrets(logging.Filter):
    """Redact a record passing through a handler (for records made before redaction began)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub in place; never drops a record."""
        scrub(record)
        return True


def install_redaction() -> None:
    """Scrub every log record where it is made (idempotent)."""
    current = logging.getLogRecordFactory()
    if getattr(current, "citybot_redacts", False):
        return
    base: Callable[..., logging.LogRecord] = current

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        """Make the record as before, then scrub it."""
        record = base(*args, **kwargs)
        scrub(record)
        return record

    make_record.citybot_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr with redaction; keep httpx and the platform clients at WARNING."""
    install_redaction()
    handler = logging.StreamHandler()
    handler.addFilter(RedactSecrets())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
