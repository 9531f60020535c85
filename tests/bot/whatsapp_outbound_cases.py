"""The WhatsApp outbound tests' fixtures (a fake Twilio, bots), templates and predicates.

twilio's own async client sends through `TWILIO_API_BASE_URL` to the fake Twilio API on
loopback, which answers as Twilio does (201 with a Message resource, or Twilio-shaped errors)
and plays signed status callbacks back to the bot. Proactive messages are queued straight into
the outbox, as the scheduler's jobs do; the fixed clock is moved to leave the window or to make
a retry due.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from handlers.places import Gazetteer
from storage.models import OutboxMessage
from tests.fakes.twilio_api import FakeTwilioAPI, WhatsAppBot

TOKEN = "test-auth-token-outbound"
HX_REMINDER_EN = "HX" + "1" * 32
HX_REMINDER_ES = "HX" + "2" * 32
HX_BROADCAST_EN = "HX" + "3" * 32
HX_LIST = {n: "HX" + f"{n:02d}" * 16 for n in range(2, 11)}
TEMPLATES: dict[str, Any] = {
    "reminder": {
        "en": {"content_sid": HX_REMINDER_EN, "variables": ["title", "starts"]},
        "es": {"content_sid": HX_REMINDER_ES, "variables": ["title", "starts"]},
    },
    "broadcast": {"en": {"content_sid": HX_BROADCAST_EN, "variables": ["text"]}},
    "interactive": {"list_picker": HX_LIST},
}
WEBINAR = {"title": "Waste management\nin coastal cities", "starts": "4 Nov 2026, 14:00 GMT"}
PHONE = "+23276500001"


@pytest.fixture
def fake() -> Iterator[FakeTwilioAPI]:
    """A fake Twilio API on loopback."""
    with FakeTwilioAPI(auth_token=TOKEN) as api:
        yield api


@pytest.fixture
def make_bot(
    fake: FakeTwilioAPI, engine: Engine, clock: FixedClock, places: Gazetteer, tmp_path: Path
) -> Iterator[Callable[..., WhatsAppBot]]:
    """Start the bot against the fake with the test templates (or others)."""
    started: list[WhatsAppBot] = []

    def make(**kwargs: Any) -> WhatsAppBot:
        """Start one bot."""
        kwargs.setdefault("templates", TEMPLATES)
        bot = WhatsAppBot(
            fake, engine=engine, clock=clock, places=places, folder=tmp_path, **kwargs
        ).__enter__()
        started.append(bot)
        return bot

    yield make
    for bot in started:
        bot.__exit__(None, None, None)


def settled(row: OutboxMessage) -> bool:
    """The dispatcher is done with the message for now (sent, failed, or waiting to retry)."""
    return row.status not in ("pending", "sending") or (
        row.status == "pending" and row.error_code is not None
    )


def tried_more_than(attempts: int) -> Callable[[OutboxMessage], bool]:
    """A predicate: the message was tried more than `attempts` times."""
    return lambda row: row.attempts > attempts


def retry_now(bot: WhatsAppBot, clock: FixedClock) -> None:
    """Move past any backoff and wake the dispatcher."""
    clock.advance(timedelta(minutes=10))
    bot.wake()
