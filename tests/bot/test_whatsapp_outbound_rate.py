"""WhatsApp outbound over real HTTP: sends paced to the rate, the fake's limit, stalls."""

from __future__ import annotations

from collections.abc import Callable

from tests.bot.whatsapp_outbound_cases import fake as fake  # a fixture
from tests.bot.whatsapp_outbound_cases import make_bot as make_bot  # a fixture
from tests.bot.whatsapp_outbound_cases import settled
from tests.fakes.twilio_api import FakeTwilioAPI, WhatsAppBot

# -- throughput -----------------------------------------------------------------------------------


def test_sends_are_paced_to_the_configured_rate(
    make_bot: Callable[..., WhatsAppBot], fake: FakeTwilioAPI
) -> None:
    """60 messages at 40/s against a fake enforcing 40/s: none throttled, none early.

    The fake shares this process (and its CPU) with the bot, so it tolerates 225 ms of
    scheduling jitter; without pacing the bot would send all 60 within that. The strict figure
    is bench/whatsapp_outbound.py's, with the fake in another process.
    """
    fake.rate, fake.burst = 40.0, 10
    bot = make_bot(whatsapp_rate_per_second=40.0)
    ids = [bot.enqueue(f"+2327690{n:04d}", f"Hello {n}", kind="reply") for n in range(60)]
    rows = [bot.wait_row(message_id, settled) for message_id in ids]
    assert fake.throttled == 0
    assert {r.status for r in rows} == {"queued"}
    times = sorted(m.at for m in fake.sent())
    assert times[-1] - times[0] >= 59 / 40 * 0.95


def test_the_fake_enforces_its_rate(
    make_bot: Callable[..., WhatsAppBot], fake: FakeTwilioAPI
) -> None:
    """A bot configured faster than the API provokes 429s; they are counted and retried later."""
    fake.rate, fake.burst = 20.0, 1
    bot = make_bot(whatsapp_rate_per_second=500.0)
    ids = [bot.enqueue(f"+2327691{n:04d}", f"Hello {n}", kind="reply") for n in range(10)]
    rows = [bot.wait_row(message_id, settled) for message_id in ids]
    throttled = [r for r in rows if r.status == "pending"]
    assert fake.throttled == len(throttled) > 0
    assert {r.error_code for r in throttled} == {"20429"}
    assert len(fake.sent()) == 10 - len(throttled)


def test_a_stalling_api_never_gets_a_bunch_beyond_its_rate(
    make_bot: Callable[..., WhatsAppBot], fake: FakeTwilioAPI
) -> None:
    """240 messages at 200/s while the API stalls 80 ms on every 20th request: zero 429s.

    During a stall the requests sent meanwhile wait on the way and then arrive together, with
    slow answers followed by fast ones. Pacing the starts alone sent about 16 into each stall
    and the fake refused the bunch beyond its tolerance (10 at 200/s); counting calls in
    flight as arriving now holds them back, whatever the delays, so none is refused.
    """
    fake.rate, fake.burst = 200.0, 10
    fake.stall(0.08, every=20)
    bot = make_bot(whatsapp_rate_per_second=200.0)
    ids = [bot.enqueue(f"+2327692{n:04d}", f"Hello {n}", kind="reply") for n in range(240)]
    rows = [bot.wait_row(message_id, settled) for message_id in ids]
    assert fake.throttled == 0
    assert {r.status for r in rows} == {"queued"}
    assert len(fake.sent()) == 240
