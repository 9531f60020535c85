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
    if settings.telegram_bot_token is not None:
        from bot.channels.telegram import TelegramChannel

        found["telegram"] = TelegramChannel(settings=settings, runtime=runtime)
    if (
        settings.twilio_account_sid
        and settings.twilio_auth_token
        and settings.twilio_whatsapp_from
    ):
        from bot.channels.whatsapp import WhatsAppChannel

        found["whatsapp"] = WhatsAppChannel(settings=settings, runtime=runtime)
    if not found:
        logger.warning(
            "no platform channel configured: set TELEGRAM_BOT_TOKEN or TWILIO_* (see .env.example)"
        )
    return found
