"""Logging setup: ids only in our messages, secrets redacted, chatty libraries quiet."""

from __future__ import annotations

import logging
import re

_SECRET = re.compile(r"(bot\d+:[A-Za-z0-9_-]{20,}|AC[0-9a-f]{32}|(?<=token=)[^&\s]+)")


class RedactSecrets(logging.Filter):
    """Replace bot tokens, account SIDs and token parameters in log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the rendered message in place."""
        message = record.getMessage()
        redacted = _SECRET.sub("[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr with redaction; keep httpx and the platform clients at WARNING."""
    handler = logging.StreamHandler()
    handler.addFilter(RedactSecrets())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "telegram", "twilio", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
