"""SIGKILL of `citybot serve` under inbound load and during a broadcast, then restart.

One `python -m bot serve` subprocess (SQLite in a temporary file; Telegram in webhook mode and
WhatsApp through Twilio, both against the fakes on loopback) lives through this timeline:

1. A broadcast to every Telegram contact (registered earlier, seeded in the database) is
   confirmed to go now; serve's own scheduler sweep queues it and its dispatcher sends it
   through the fake Bot API.
2. While it goes out, people on both channels type short scripts (/start, yes, a name) as
   signed webhooks from several concurrent clients.
3. With the broadcast 40 % sent and the inbound load under way, serve is SIGKILLed and
   restarted; the clients keep sending, and send again whatever got no 2xx (same update id,
   same MessageSid), as the platforms do. Then everything runs to its end.

One kill covers both conditions (a restart of serve costs 15-25 s on two busy cores); the
replies and the broadcast are counted apart. Messages leased (`sending`) when a process dies
stay leased for the outbox lease (2 minutes) before another process may send them. The CI
run expires those leases while serve is down (the state after two minutes of downtime);
with CITYBOT_RELIABILITY_WAIT_LEASES=1 the restarted process takes them when the real lease
runs out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from handlers import broadcasts_compose
from storage import migrate
from storage.db import make_engine, session_scope
from storage.models import Contact, ContactURN
from storage.staff_models import Broadcast
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilioAPI
from tests.reliability import accounting
from tests.reliability.figures import record, sized, wait_leases
from tests.reliability.process import TWILIO_TOKEN, ServeProcess, serve_env
from tests.reliability.traffic import Platforms, drive, explain, finish, people, until

BROADCAST_TEXT = "Reliability drill: the webinar moved to Friday 10:00 UTC."
LEASE_WAIT = 150.0  # the outbox lease (2 minutes) and a margin
KILL_AT = 0.4


@dataclass
class Phase:
    """What one kill looked like and what came of it."""

    in_flight: int = 0
    expired: int = 0
    restart_seconds: float = 0.0
    downtime: float = 0.0
    held: int = 0
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class KillRun:
    """Everything the timeline measured."""

    broadcast_id: int = 0
    startup_seconds: float = 0.0
    phase: Phase = field(default_factory=Phase)
    in_flight_ids: list[int] = field(default_factory=list)
    replies_in_flight: int = 0
    broadcast_in_flight: int = 0
    inbound: accounting.Inbound = field(default_factory=accounting.Inbound)
    replies: accounting.Outbound = field(default_factory=accounting.Outbound)
    sent: accounting.Outbound = field(default_factory=accounting.Outbound)
    broadcast_status: str = ""
    recipients: int = 0
    log: str = ""


async def kill_and_restart(serve: ServeProcess, engine: Engine, run: KillRun) -> None:
    """SIGKILL serve, note what was in flight, start it again.

    The rows the dead process had leased are expired at once (CI), or left for the restarted
    process to take once their lease runs out (CITYBOT_RELIABILITY_WAIT_LEASES=1).
    """
    phase = run.phase
    killed = time.monotonic()
    await asyncio.to_thread(serve.kill)
    run.in_flight_ids = await asyncio.to_thread(accounting.in_flight, engine)
    phase.in_flight = len(run.in_flight_ids)
    if not wait_leases():
        phase.expired = await asyncio.to_thread(accounting.expire_leases, engine)
    phase.restart_seconds = await asyncio.to_thread(serve.start)
    phase.downtime = time.monotonic() - killed


def seed_contacts(engine: Engine, count: int) -> None:
    """Telegram contacts who registered earlier (they only receive the broadcast)."""
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        first = session.exec(select(Contact.id).order_by(col(Contact.id).desc())).first() or 0
        session.execute(
            insert(Contact.__table__),  # type: ignore[attr-defined]
            [
                {
                    "language": "en",
                    "opted_out": False,
                    "unreachable": False,
                    "prompt_data": {},
                    "created_at": now,
                }
                for _ in range(count)
            ],
        )
        found = session.exec(select(Contact.id).where(col(Contact.id) > first))
        ids = [int(i) for i in found if i is not None]
        session.execute(
            insert(ContactURN.__table__),  # type: ignore[attr-defined]
            [
                {"urn": f"telegram:{6_000_000 + i}", "channel": "telegram", "contact_id": i}
                for i in ids
            ],
        )


def schedule_broadcast(engine: Engine) -> int:
    """A broadcast to every Telegram contact, confirmed to go now (serve's sweep sends it)."""
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        draft = broadcasts_compose.create_draft(
            session=session,
            title="Reliability drill",
            texts={"en": BROADCAST_TEXT},
            segment={"channel": ["telegram"]},
            default_language="en",
            now=now,
            created_by=None,
            via="cli",
        )
        broadcasts_compose.schedule(
            session=session, broadcast=draft, at=None, now=now, actor=None, via="cli"
        )
        return draft.id or 0


def broadcast_status(engine: Engine, broadcast_id: int) -> tuple[str, int]:
    """The broadcast's status and recipient count."""
    with session_scope(engine) as session:
        row = session.get(Broadcast, broadcast_id)
        assert row is not None
        return row.status, row.recipients


def broadcast_rate(fake: FakeTelegram, run: KillRun) -> float | None:
    """Broadcast messages a second while serve was up (first to last, less the downtime)."""
    times = [m.at for m in list(fake.messages) if m.text == BROADCAST_TEXT]
    span = max(times) - min(times) - run.phase.downtime if len(times) > 1 else 0.0
    return round(len(times) / span, 1) if span > 0 else None


def delivered_broadcasts(fake: FakeTelegram) -> int:
    """Broadcast messages the fake Bot API accepted so far."""
    return sum(1 for m in list(fake.messages) if m.text == BROADCAST_TEXT)


async def under_load(
    serve: ServeProcess, engine: Engine, tg: FakeTelegram, platforms: Platforms, run: KillRun
) -> None:
    """Inbound load while the broadcast goes out; SIGKILL midway, restart, carry on."""
    crowd = people(sized(40), sized(30))
    total = sum(len(p.script) for p in crowd)
    ledger = platforms.ledger
    detail = explain(platforms, serve)
    await until(lambda: broadcast_status(engine, run.broadcast_id)[1] > 0, "the broadcast")
    run.recipients = broadcast_status(engine, run.broadcast_id)[1]
    typing = asyncio.create_task(drive(platforms, crowd, concurrency=8))
    await until(
        lambda: delivered_broadcasts(tg) >= run.recipients * KILL_AT, "mid-broadcast", 120, detail
    )
    await until(lambda: len(ledger.acked) >= total * 0.1, "the load under way", 120, detail)
    killed_at = time.monotonic()
    run.phase.figures.update(
        acked_at_kill=len(ledger.acked),
        broadcast_sent_at_kill=delivered_broadcasts(tg),
        inbound_per_second_before_kill=round(len(ledger.acked) / (killed_at - ledger.started), 1),
    )
    await kill_and_restart(serve, engine, run)
    await finish(typing, "the load", max(180.0, total * 0.5), detail)
    up = ledger.finished - ledger.started - run.phase.downtime
    run.phase.figures.update(
        people=len(crowd),
        messages=total,
        requests=len(ledger.attempts),
        resent=ledger.retries(),
        answers=dict(ledger.statuses()),
        inbound_per_second=round(total / up, 1) if up > 0 else None,
    )


async def account(
    engine: Engine, tg: FakeTelegram, tw: FakeTwilioAPI, platforms: Platforms, run: KillRun
) -> None:
    """Wait until everything is done, then count inbound, replies and the broadcast."""
    timeout = LEASE_WAIT + 60 if wait_leases() else 90
    await until(
        lambda: broadcast_status(engine, run.broadcast_id)[0] == "done", "its end", timeout
    )
    run.phase.held = await asyncio.to_thread(
        accounting.wait_quiet, engine, timeout=timeout, until_released=wait_leases()
    )
    run.broadcast_status = broadcast_status(engine, run.broadcast_id)[0]
    run.inbound = accounting.inbound(engine, platforms.ledger.acked)
    rows = accounting.outbox_rows(engine)
    replies = [r for r in rows if r.idempotency_key.startswith("in:")]
    received = {**accounting.telegram_received(tg), **accounting.whatsapp_received(tw)}
    run.replies = accounting.outbound(replies, received)
    casts = [r for r in rows if r.kind == "broadcast"]
    run.phase.figures["broadcast_per_second"] = broadcast_rate(tg, run)
    run.sent = accounting.outbound(casts, accounting.telegram_received(tg), only=BROADCAST_TEXT)
    ids = set(run.in_flight_ids)
    run.replies_in_flight = sum(1 for r in replies if r.id in ids)
    run.broadcast_in_flight = sum(1 for r in casts if r.id in ids)


async def timeline(folder: Path) -> KillRun:
    """Seed, schedule the broadcast, start serve, load it, kill it, restart it, count."""
    run = KillRun()
    db = folder / "bot.db"
    engine = make_engine(f"sqlite:///{db}")
    migrate.upgrade(engine=engine)
    seed_contacts(engine, sized(300))
    run.broadcast_id = schedule_broadcast(engine)
    with (
        FakeTelegram(rate_per_second=2000, rate_per_chat=200) as tg,
        FakeTwilioAPI(auth_token=TWILIO_TOKEN) as tw,
    ):
        env = serve_env(
            database_url=f"sqlite:///{db}",
            telegram_base=tg.base_url,
            telegram_token=tg.token,
            twilio_base=tw.base_url,
            folder=folder,
            TELEGRAM_RATE_PER_SECOND="100",
        )
        serve = ServeProcess(env, folder)
        try:
            run.startup_seconds = await asyncio.to_thread(serve.start)
            platforms = Platforms(serve.base_url)
            try:
                await under_load(serve, engine, tg, platforms, run)
            finally:
                await platforms.close()
            await account(engine, tg, tw, platforms, run)
        finally:
            serve.stop()
            run.log = serve.log()
            engine.dispose()
    return run


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KillRun]:
    """The timeline, run once for the module's checks."""
    yield asyncio.run(timeline(tmp_path_factory.mktemp("kill")))


def test_sigkill_under_inbound_load_loses_nothing_acknowledged(killed: KillRun) -> None:
    """Every acknowledged message is processed and answered; replies reach the platform once,
    except at most those in flight at the kill."""
    inbound, replies, phase = killed.inbound, killed.replies, killed.phase
    figures = record(
        "kill_inbound",
        startup_seconds=round(killed.startup_seconds, 1),
        restart_seconds=round(phase.restart_seconds, 1),
        downtime_seconds=round(phase.downtime, 1),
        acked=inbound.acked,
        inbound_lost=len(inbound.lost) + len(inbound.unprocessed),
        unanswered=inbound.unanswered,
        replies_expected=replies.expected,
        replies_received=replies.received,
        outbound_lost=replies.lost,
        duplicated=replies.duplicated,
        in_flight_at_kill=killed.replies_in_flight,
        leases_expired=phase.expired,
        held_by_lease=phase.held,
        lease_waited=wait_leases(),
        **{k: v for k, v in phase.figures.items() if not k.startswith("broadcast")},
    )
    print(f"\nkill under inbound load: {figures}")
    assert inbound.acked == phase.figures["messages"]
    assert inbound.lost == [] and inbound.unprocessed == []
    assert inbound.unanswered == 0
    assert replies.failed == 0 and phase.held == 0
    assert replies.lost == 0, killed.log
    assert replies.duplicated <= killed.replies_in_flight
    assert replies.expected >= inbound.processed


def test_sigkill_during_a_broadcast_loses_none_and_repeats_at_most_those_in_flight(
    killed: KillRun,
) -> None:
    """The broadcast ends `done`; each recipient got it once, but at most those in flight."""
    sent, phase = killed.sent, killed.phase
    figures = record(
        "kill_broadcast",
        recipients=killed.recipients,
        restart_seconds=round(phase.restart_seconds, 1),
        downtime_seconds=round(phase.downtime, 1),
        delivered=sent.received,
        outbound_lost=sent.lost,
        duplicated=sent.duplicated,
        in_flight_at_kill=killed.broadcast_in_flight,
        leases_expired=phase.expired,
        held_by_lease=phase.held,
        status=killed.broadcast_status,
        lease_waited=wait_leases(),
        sent_at_kill=phase.figures["broadcast_sent_at_kill"],
        outbound_per_second=phase.figures.get("broadcast_per_second"),
    )
    print(f"\nkill during a broadcast: {figures}")
    assert killed.broadcast_status == "done"
    assert sent.rows == killed.recipients > 0
    assert sent.failed == 0 and phase.held == 0
    assert sent.lost == 0, killed.log
    assert sent.duplicated <= killed.broadcast_in_flight
    assert 0 < phase.figures["broadcast_sent_at_kill"] < killed.recipients
