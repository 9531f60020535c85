"""What a channel plugs into the server: its routes, its sender, its start and stop."""

from __future__ import annotations

from typing import Protocol

from starlette.routing import BaseRoute

from bot.dispatcher import Sender


class Channel(Protocol):
    """A platform channel (Telegram, WhatsApp)."""

    name: str
    sender: Sender

    def routes(self) -> list[BaseRoute]:
        """HTTP routes the channel serves (webhooks)."""

    async def start(self) -> None:
        """Connect to the platform (register webhooks, start polling)."""

    async def start_sending(self) -> None:
        """Connect for sending only, in a `citybot worker --send` process (no webhook, no poll)."""

    async def stop(self) -> None:
        """Disconnect cleanly."""
