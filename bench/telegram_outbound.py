"""Telegram outbound: a broadcast of 3,000 messages to 3,000 chats, against Telegram's limits.

The fake Bot API (tests/fakes/telegram_api.py, on loopback in a thread) enforces 30 messages
in any sliding second overall and 1 per chat, answering 429 beyond. The messages go the
production way: outbox rows in SQLite, drained by the dispatcher through the Telegram sender
(python-telegram-bot over HTTP, paced by our own limiter). Prints the achieved rate as a share
of the limit, the 429s provoked, and the outbox statuses.

    .venv/bin/python bench/telegram_outbound.py [--messages 3000] [--rate 30]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.channels.telegram import TelegramChannel  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.dispatcher import Dispatcher  # noqa: E402
from bot.runtime import build_runtime  # noqa: E402
from bot.settings import get_settings  # noqa: E402
from handlers.messages import Choice, Outgoing  # noqa: E402
from storage import contacts, migrate, outbox  # noqa: E402
from storage.db import make_engine, session_scope  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402

MESSAGE = Outgoing(
    text=(
        "Webinar on Thursday at 14:00 (your time): financing resilient city infrastructure. "
        "Will you join?"
    ),
    choices=(Choice("w:yes", "Yes"), Choice("w:no", "No")),
    kind="broadcast",
)


async def run(messages: int, rate: float) -> None:
    """Queue the broadcast, drain it, print the figures."""
    folder = tempfile.mkdtemp(prefix="citybot-tg-out-")
    fake = FakeTelegram(rate_per_second=rate, rate_per_chat=1).start()
    settings = get_settings(
        telegram_bot_token=fake.token,
        telegram_webhook_secret="bench_secret",
        telegram_api_base_url=fake.base_url,
        public_base_url="https://bot.example.org",
        telegram_mode="webhook",
        telegram_rate_per_second=rate,
        telegram_rate_per_chat=1.0,
        database_url=f"sqlite:///{folder}/bench.db",
    )
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine=engine)
    clock = SystemClock()
    with session_scope(engine) as session:
        for n in range(messages):
            urn = f"telegram:{20_000 + n}"
            contact, _ = contacts.get_or_create_contact(session=session, urn=urn, now=clock.now())
            outbox.enqueue(
                session=session,
                idempotency_key=f"bench:{n}",
                urn=urn,
                channel="telegram",
                body=MESSAGE.to_body(),
                now=clock.now(),
                contact_id=contact.id,
                kind=MESSAGE.kind,
            )
    runtime = build_runtime(
        settings, engine=engine, clock=clock, channels={}, with_scheduler=False
    )
    channel = TelegramChannel(settings=settings, runtime=runtime)
    await channel.start()
    dispatcher = Dispatcher(engine, {"telegram": channel.sender}, clock)
    started = time.perf_counter()
    try:
        while await dispatcher.drain("telegram"):
            pass
    finally:
        elapsed = time.perf_counter() - started
        await channel.stop()
        fake.stop()
    sends = [c for c in fake.calls if c.method == "sendMessage"]
    delivered = [c for c in sends if c.status == 200]
    span = delivered[-1].at - delivered[0].at if len(delivered) > 1 else 0.0
    achieved = (len(delivered) - 1) / span if span else 0.0
    with session_scope(engine) as session:
        statuses = outbox.count_by_status(session=session, channel="telegram")
    worst = max_in_window(sorted(c.at for c in delivered))
    print(
        f"broadcast: {messages} messages to {messages} chats, limit {rate:.0f}/s overall, 1/s/chat"
    )
    print(
        f"delivered {len(delivered)} in {elapsed:.1f} s: {achieved:.2f} messages/s between the "
        f"first and the last = {achieved / rate:.1%} of the limit "
        f"({len(delivered) / elapsed:.2f}/s over the whole run)"
    )
    print(
        f"429s provoked: {len(fake.rate_limited)}; most messages the fake saw in any 1 s "
        f"window: {worst}; outbox: {dict(sorted(statuses.items()))}"
    )
    if fake.rate_limited or len(delivered) != messages:
        sys.exit("the limiter let a 429 through or lost a message: the benchmark is not valid")


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most events in any sliding window of `window` seconds."""
    best, left = 0, 0
    for right, at in enumerate(times):
        while at - times[left] >= window:
            left += 1
        best = max(best, right - left + 1)
    return best


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=30.0)
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.rate))


if __name__ == "__main__":
    main()
