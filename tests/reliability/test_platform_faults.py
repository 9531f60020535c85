"""Platform faults: the dispatcher backs off, recovers, and gives up after a bounded number.

The runtime is built as `serve` builds it, in process, with its Telegram and WhatsApp
channels against the fake platforms on loopback (python-telegram-bot and twilio's client over
real HTTP). Outbox rows are queued for many people; the fakes answer some sends with faults:
429 storms with retry_after, 5xx (JSON and a proxy's HTML page), 403 blocks, 400s, malformed
JSON with a 200, answers slower than the send timeout, Twilio's opt-out and unreachable codes.
The dispatcher is drained on a fixed clock moved to each next attempt, so backoffs are read
exactly from the rows and minutes of backoff pass at once. Checked: every fault is met with
the right move (retry after the platform's delay or exponential backoff, or failed with the
reason), transient faults end delivered once, permanent ones end failed after at most
SEND_MAX_ATTEMPTS, and the loop ends: nothing is retried forever.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.channels.whatsapp import WhatsAppChannel
from bot.clock import FixedClock
from bot.runtime import Runtime, build_runtime
from bot.settings import get_settings
from handlers.messages import Outgoing
from storage import contacts, outbox
from storage.db import session_scope
from storage.models import Contact, OutboxMessage
from tests.fakes.telegram_api import wire
from tests.fakes.twilio_api import SANDBOX_FROM
from tests.reliability.faulty import FaultyTelegram, FaultyTwilio, NoGazetteer
from tests.reliability.figures import record, sized

SECRET = "Faults_secret-0123456789"
PUBLIC = "https://bot.example.org"
TOKEN = "faults-auth-token"
MAX_ATTEMPTS = 4
TIMEOUT = 1.0
SLOW = 1.6  # longer than the send timeout
BASE_BACKOFF = 2.0  # Dispatcher.base_backoff
MAX_ROUNDS = 400


@dataclass
class Drained:
    """What draining the outbox to the end took, and the backoffs seen."""

    rounds: int = 0
    advanced: timedelta = timedelta(0)
    delays: dict[int, list[tuple[int, str, float]]] = field(default_factory=dict)


def queue(engine: Engine, clock: FixedClock, urns: list[str], per_person: int) -> None:
    """A contact per URN (WhatsApp ones just wrote, so the window is open) and their messages."""
    now = clock.now()
    with session_scope(engine) as session:
        for urn in urns:
            contact, _ = contacts.get_or_create_contact(session=session, urn=urn, now=now)
            contacts.update_contact(session=session, contact=contact, last_inbound_at=now)
            session.flush()
            for n in range(per_person):
                outbox.enqueue(
                    session=session,
                    idempotency_key=f"fault:{urn}:{n}",
                    urn=urn,
                    channel=urn.partition(":")[0],
                    body=Outgoing(text=f"Notice {n} for {urn}", kind="reminder").to_body(),
                    now=now,
                    contact_id=contact.id,
                    kind="reminder",
                )


def rows(engine: Engine, channel: str) -> list[OutboxMessage]:
    """A channel's outbox rows."""
    with session_scope(engine) as session:
        stmt = select(OutboxMessage).where(OutboxMessage.channel == channel)
        return list(session.exec(stmt.order_by(col(OutboxMessage.id))))


def note_delays(engine: Engine, channel: str, drained: Drained) -> None:
    """Record the delay each retried row was given (next attempt − when it was recorded)."""
    for row in rows(engine, channel):
        if row.status != "pending" or not row.attempts:
            continue
        seen = drained.delays.setdefault(row.id or 0, [])
        if seen and seen[-1][0] == row.attempts:
            continue
        delay = (row.next_attempt_at - row.updated_at).total_seconds()
        seen.append((row.attempts, row.error_code or "", delay))


async def drain_to_the_end(
    runtime: Runtime, engine: Engine, clock: FixedClock, channel: str
) -> Drained:
    """Drain; when nothing is due, move the clock to the next attempt; stop when none is left."""
    drained = Drained()
    for drained.rounds in range(1, MAX_ROUNDS + 1):
        if await runtime.dispatcher.drain(channel):
            note_delays(engine, channel, drained)
            continue
        now = clock.now()
        waiting = [r.next_attempt_at for r in rows(engine, channel) if r.status == "pending"]
        if not waiting:
            return drained
        later = [at for at in waiting if at > now]  # the others wait behind a retry
        assert later, "messages pending that nothing will ever send"
        step = min(later) - now + timedelta(milliseconds=1)
        clock.advance(step)
        drained.advanced += step
    left = [(r.urn, r.status, r.attempts, r.error_code) for r in rows(engine, channel)]
    left = [r for r in left if r[1] in ("pending", "sending")]
    raise AssertionError(f"still retrying after {MAX_ROUNDS} rounds: {left}")


def check_backoff(drained: Drained, retry_after: dict[str, float]) -> int:
    """Every retry waited the platform's delay or an exponential backoff; return how many."""
    checked = 0
    for history in drained.delays.values():
        for attempts, code, delay in history:
            checked += 1
            if code in retry_after:
                assert delay == pytest.approx(retry_after[code]), (code, delay)
                continue
            ceiling = BASE_BACKOFF * 2 ** (attempts - 1)
            assert ceiling / 2 <= delay <= ceiling, (attempts, code, delay)
    return checked


@pytest.fixture
def telegram() -> Iterator[FaultyTelegram]:
    """The fake Bot API with fault modes (limits far above the load)."""
    with FaultyTelegram(rate_per_second=5000, rate_per_chat=500) as fake:
        yield fake


@pytest.fixture
def twilio() -> Iterator[FaultyTwilio]:
    """The fake Twilio with fault modes."""
    with FaultyTwilio(auth_token=TOKEN) as fake:
        yield fake


def by_urn(found: list[OutboxMessage]) -> dict[str, list[OutboxMessage]]:
    """Rows grouped by URN."""
    grouped: dict[str, list[OutboxMessage]] = {}
    for row in found:
        grouped.setdefault(row.urn, []).append(row)
    return grouped


def contact_flags(engine: Engine, urn: str) -> tuple[bool, bool]:
    """(unreachable, opted_out) of the contact holding a URN."""
    with session_scope(engine) as session:
        contact = contacts.get_contact_by_urn(session=session, urn=urn)
        assert isinstance(contact, Contact)
        return contact.unreachable, contact.opted_out


TELEGRAM_TRANSIENT = {
    201: dict(status=500, times=2),
    202: dict(status=502, times=2, body=b"<html><h1>502 Bad Gateway</h1></html>"),
    203: dict(status=503, times=1),
    204: dict(status=200, times=2, body=b'{"ok": true, "result": {"message_id"'),
}
TELEGRAM_PERMANENT = {
    301: ("403", dict(status=403, times=10_000)),
    302: ("500", dict(status=500, times=10_000)),
    304: ("400", dict(status=400, times=1)),
}


async def test_telegram_faults_back_off_recover_and_end(
    telegram: FaultyTelegram, engine: Engine, tmp_path: Path
) -> None:
    """429 storm, 5xx, HTML 502, malformed JSON, timeouts, 403, 400: each handled, bounded."""
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    runtime, channel = wire(
        telegram,
        engine,
        clock,
        NoGazetteer(),
        SECRET,
        PUBLIC,
        "webhook",
        send_timeout_seconds=TIMEOUT,
        send_max_attempts=MAX_ATTEMPTS,
        telegram_rate_per_second=2000.0,
    )
    plain = [f"telegram:{7_000_000 + i}" for i in range(sized(40))]
    special = [f"telegram:{chat}" for chat in (*TELEGRAM_TRANSIENT, *TELEGRAM_PERMANENT, 205, 303)]
    queue(engine, clock, plain + special, per_person=2)
    await channel.start()
    try:
        for chat, script in TELEGRAM_TRANSIENT.items():
            telegram.fail(method="sendMessage", chat_id=chat, **script)  # type: ignore[arg-type]
        for chat, (_code, script) in TELEGRAM_PERMANENT.items():
            telegram.fail(method="sendMessage", chat_id=chat, **script)  # type: ignore[arg-type]
        telegram.slow(205, SLOW, times=1)  # one timeout, then fine
        telegram.slow(303, SLOW, times=MAX_ATTEMPTS)  # never in time for the first message
        storm = sized(30)
        telegram.fail(status=429, method="sendMessage", retry_after=3, times=storm)
        drained = await drain_to_the_end(runtime, engine, clock, "telegram")
        await asyncio.sleep(SLOW)  # the last slow answer lands at the fake after the timeout
    finally:
        await channel.stop()

    final = by_urn(rows(engine, "telegram"))
    received = Counter((m.chat_id, m.text) for m in telegram.messages)
    retries = check_backoff(drained, {"429": 3.0})
    lost = duplicated = 0
    for urn in plain + [f"telegram:{c}" for c in (*TELEGRAM_TRANSIENT, 205)]:
        chat = int(urn.partition(":")[2])
        for row in final[urn]:
            assert row.status == "sent", (urn, row.status, row.error_code)
            got = received[(chat, row.body["text"])]
            lost += got == 0
            duplicated += max(0, got - 1)
    for chat, (code, _script) in TELEGRAM_PERMANENT.items():
        first, second = final[f"telegram:{chat}"]
        assert (first.status, first.error_code) == ("failed", code) and first.error_reason
    for chat in (302, 303):  # retried to the bound, then failed with the reason
        first = final[f"telegram:{chat}"][0]
        assert first.attempts == MAX_ATTEMPTS and first.status == "failed", first
    assert final["telegram:303"][0].error_code == "timeout"
    assert final["telegram:303"][1].status == "sent"  # the chat recovers
    assert final["telegram:302"][0].error_reason
    assert len(telegram.calls_of("sendMessage", 302)) == 2 * MAX_ATTEMPTS
    blocked = final["telegram:301"]  # blocked: never retried, the contact marked unreachable
    assert [(r.status, r.attempts) for r in blocked] == [("failed", 1), ("failed", 1)]
    assert contact_flags(engine, "telegram:301") == (True, False)
    assert len(telegram.calls_of("sendMessage", 301)) == 2
    assert final["telegram:304"][1].status == "sent"  # a 400 ends one message, not the chat
    timed_out = len(telegram.calls_of("sendMessage", 205)) - 2
    failed_copies = received[(303, final["telegram:303"][0].body["text"])]
    figures = record(
        "faults_telegram",
        messages=sum(len(v) for v in final.values()),
        faults_served=dict(telegram.faults),
        faults_total=sum(telegram.faults.values()),
        retries_checked=retries,
        rounds=drained.rounds,
        clock_advanced_seconds=drained.advanced.total_seconds(),
        outbound_lost=lost,
        duplicated=duplicated,
        ambiguous_timeouts=timed_out,
        timed_out_failed_but_delivered=failed_copies,
        failed_with_reason=sum(1 for v in final.values() for r in v if r.status == "failed"),
        max_attempts=MAX_ATTEMPTS,
    )
    print(f"\ntelegram faults: {figures}")
    assert lost == 0
    assert duplicated <= timed_out  # only a message whose answer timed out may arrive twice
    assert telegram.faults["429"] == storm and telegram.faults["slow"] >= 1 + MAX_ATTEMPTS


WHATSAPP_TRANSIENT: dict[str, dict[str, Any]] = {
    "+23277000001": dict(code=20429, times=2, retry_after=1),
    "+23277000002": dict(code=20500, times=2),
    "+23277000003": dict(code=20503, times=1, retry_after=2),
}
WHATSAPP_GARBLED: dict[str, dict[str, Any]] = {
    "+23277000004": dict(status=201, body="{not json"),
    "+23277000005": dict(status=502, body="<html><h1>502 Bad Gateway</h1></html>"),
}
WHATSAPP_PERMANENT: dict[str, tuple[str, dict[str, Any]]] = {
    "+23277000006": ("21610", dict(code=21610)),
    "+23277000007": ("63003", dict(code=63003, status=400)),
    "+23277000008": ("20500", dict(code=20500, times=-1)),
    "+23277000010": ("21211", dict(code=21211)),
}


def whatsapp_runtime(
    fake: FaultyTwilio, engine: Engine, clock: FixedClock, folder: Path
) -> Runtime:
    """The runtime `serve` builds with the WhatsApp channel, against the fake Twilio."""
    settings = get_settings(
        telegram_bot_token=None,
        twilio_account_sid=fake.account_sid,
        twilio_auth_token=fake.auth_token,
        twilio_whatsapp_from=SANDBOX_FROM,
        twilio_api_base_url=fake.base_url,
        public_base_url=PUBLIC,
        whatsapp_templates_file=str(folder / "none.yaml"),
        send_timeout_seconds=TIMEOUT,
        send_max_attempts=MAX_ATTEMPTS,
        whatsapp_rate_per_second=500.0,
    )
    channel = WhatsAppChannel(settings=settings)
    runtime = build_runtime(
        settings,
        engine=engine,
        clock=clock,
        places=NoGazetteer(),
        channels={"whatsapp": channel},
        with_scheduler=False,
    )
    channel.attach(runtime)
    return runtime


async def test_whatsapp_faults_back_off_recover_and_end(
    twilio: FaultyTwilio, engine: Engine, tmp_path: Path
) -> None:
    """429 with Retry-After, 5xx, garbled answers, opt-out, unreachable, timeouts: bounded."""
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    runtime = whatsapp_runtime(twilio, engine, clock, tmp_path)
    plain = [f"whatsapp:+2327800{i:04d}" for i in range(sized(30))]
    numbers = [*WHATSAPP_TRANSIENT, *WHATSAPP_GARBLED, *WHATSAPP_PERMANENT, "+23277000009"]
    queue(engine, clock, plain + [f"whatsapp:{n}" for n in numbers], per_person=2)
    for number, script in WHATSAPP_TRANSIENT.items():
        twilio.fail(number, **script)
    for number, garbled in WHATSAPP_GARBLED.items():
        twilio.garble(number, **garbled)
    for number, (_code, script) in WHATSAPP_PERMANENT.items():
        twilio.fail(number, **script)
    twilio.delay("+23277000009", SLOW + 1.0)  # no answer within the timeout
    try:
        drained = await drain_to_the_end(runtime, engine, clock, "whatsapp")
    finally:
        await runtime.channels["whatsapp"].stop()
    await asyncio.sleep(SLOW + 1.0)  # the slow answer lands at the fake after the timeout

    final = by_urn(rows(engine, "whatsapp"))
    received = Counter((m.address, m.body) for m in twilio.sent())
    retries = check_backoff(drained, {"20429": 1.0, "20503": 2.0})
    lost = duplicated = 0
    for urn in plain + [f"whatsapp:{n}" for n in (*WHATSAPP_TRANSIENT, *WHATSAPP_GARBLED)]:
        for row in final[urn]:
            assert row.status == "queued", (urn, row.status, row.error_code)
            got = received[(urn.partition(":")[2], row.body["text"])]
            lost += got == 0
            duplicated += max(0, got - 1)
    for number, (code, _script) in WHATSAPP_PERMANENT.items():
        first = final[f"whatsapp:{number}"][0]
        assert (first.status, first.error_code) == ("failed", code) and first.error_reason
    forever = final["whatsapp:+23277000008"][0]
    assert forever.attempts == MAX_ATTEMPTS
    assert contact_flags(engine, "whatsapp:+23277000006") == (False, True)
    assert contact_flags(engine, "whatsapp:+23277000007") == (True, False)
    slow = final["whatsapp:+23277000009"]
    assert (slow[0].status, slow[0].error_code, slow[0].attempts) == ("failed", "timeout", 1)
    assert slow[1].status == "queued"  # the next message goes on
    figures = record(
        "faults_whatsapp",
        messages=sum(len(v) for v in final.values()),
        faults_served=dict(twilio.faults),
        faults_total=sum(twilio.faults.values()),
        retries_checked=retries,
        rounds=drained.rounds,
        clock_advanced_seconds=drained.advanced.total_seconds(),
        outbound_lost=lost,
        duplicated=duplicated,
        failed_with_reason=sum(1 for v in final.values() for r in v if r.status == "failed"),
        timeout_failed_but_accepted=sum(
            1
            for m in twilio.sent()
            if m.address == "+23277000009" and "Notice 0" in (m.body or "")
        ),
        max_attempts=MAX_ATTEMPTS,
    )
    print(f"\nwhatsapp faults: {figures}")
    assert lost == 0 and duplicated == 0
