"""Counting what was lost and what was duplicated, from the database and the fake platforms.

Inbound: every request acknowledged with a 2xx must be in the inbox, processed. Outbound: the
replies each processed event must produce are its outbox rows (key `in:<event id>:<n>`), so the
expected messages come from the database, not from a guess; each row's rendered text must
reach the fake exactly once. Per address, the texts expected (a multiset) are compared with the
texts the fake received: what is missing is lost, what is extra is duplicated.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.channels.telegram_render import render
from bot.channels.whatsapp_render import ContentConfig, session_requests
from handlers.messages import Outgoing
from storage.db import session_scope
from storage.models import InboxEvent, OutboxMessage

DELIVERED = frozenset({"sent", "queued", "delivered", "read"})
STUCK_AFTER = timedelta(seconds=20)  # a lease older than any live send: its holder died


@dataclass
class Inbound:
    """Acknowledged inbound messages and what became of them."""

    acked: int = 0
    stored: int = 0
    processed: int = 0
    lost: list[tuple[str, str]] = field(default_factory=list)
    unprocessed: list[tuple[str, str]] = field(default_factory=list)
    unanswered: int = 0  # processed events without a single reply row


@dataclass
class Outbound:
    """Outbox rows against what reached the fake platforms."""

    rows: int = 0
    expected: int = 0  # messages (rendered pieces) that must reach the platform
    received: int = 0
    lost: int = 0
    duplicated: int = 0
    failed: int = 0
    held: int = 0  # rows still leased by a process that died (and those queued behind them)
    statuses: Counter[str] = field(default_factory=Counter)
    duplicated_urns: list[str] = field(default_factory=list)


def inbound(engine: Engine, acked: Iterable[tuple[str, str]]) -> Inbound:
    """Check every acknowledged (channel, platform id) against the inbox."""
    keys = set(acked)
    with session_scope(engine) as session:
        events = list(session.exec(select(InboxEvent)))
        answered = {
            row.idempotency_key.split(":")[1]
            for row in session.exec(
                select(OutboxMessage).where(col(OutboxMessage.idempotency_key).startswith("in:"))
            )
        }
    by_key = {(e.channel, e.external_id): e for e in events}
    found = Inbound(acked=len(keys))
    for key in sorted(keys):
        event = by_key.get(key)
        if event is None:
            found.lost.append(key)
            continue
        found.stored += 1
        if event.processed_at is None:
            found.unprocessed.append(key)
            continue
        found.processed += 1
        if str(event.id) not in answered:
            found.unanswered += 1
    return found


def texts(row: OutboxMessage) -> list[str]:
    """The texts a row becomes on its platform, as the channel renders it."""
    message = Outgoing.from_body(dict(row.body), kind=row.kind)
    if row.channel == "telegram":
        return [piece.text for piece in render(message)]
    return [r.body or "" for r in session_requests(message, row.language, ContentConfig())]


def outbox_rows(engine: Engine, *, kinds: Iterable[str] | None = None) -> list[OutboxMessage]:
    """Outbox rows, optionally of some kinds only, in id order."""
    with session_scope(engine) as session:
        stmt = select(OutboxMessage).order_by(col(OutboxMessage.id))
        if kinds is not None:
            stmt = stmt.where(col(OutboxMessage.kind).in_(list(kinds)))
        return list(session.exec(stmt))


def held_rows(rows: list[OutboxMessage], now: datetime) -> set[int]:
    """Rows leased by a dead process (stuck `sending`) and the rows queued behind them."""
    stuck_urns = {
        r.urn
        for r in rows
        if r.status == "sending" and r.next_attempt_at > now and r.updated_at < now - STUCK_AFTER
    }
    return {r.id or 0 for r in rows if r.urn in stuck_urns and r.status in ("pending", "sending")}


def outbound(
    rows: list[OutboxMessage],
    received: dict[str, list[str]],
    *,
    now: datetime | None = None,
    only: str | None = None,
) -> Outbound:
    """Compare rows with the texts received per URN (`only`: count just this text)."""
    now = now or datetime.now(UTC)
    held = held_rows(rows, now)
    found = Outbound(rows=len(rows), statuses=Counter(r.status for r in rows))
    expected: dict[str, Counter[str]] = {}
    for row in rows:
        if row.status not in DELIVERED and row.status not in ("pending", "sending"):
            found.failed += 1
            continue
        if row.id in held:
            found.held += 1
            continue
        pieces = Counter(texts(row))
        expected.setdefault(row.urn, Counter()).update(pieces)
    urns = set(expected)
    if only is not None:
        urns |= {u for u, got in received.items() if only in got}
    for urn in sorted(urns):
        want = expected.get(urn, Counter())
        got = Counter(t for t in received.get(urn, []) if only is None or t == only)
        found.expected += sum(want.values())
        found.received += sum(got.values())
        found.lost += sum((want - got).values())
        extra = sum((got - want).values())
        found.duplicated += extra
        if extra:
            found.duplicated_urns.append(urn)
    return found


def telegram_received(fake: Any) -> dict[str, list[str]]:
    """The texts the fake Bot API accepted, per URN."""
    found: dict[str, list[str]] = {}
    for message in list(fake.messages):
        found.setdefault(f"telegram:{message.chat_id}", []).append(message.text)
    return found


def whatsapp_received(fake: Any) -> dict[str, list[str]]:
    """The bodies the fake Twilio accepted, per URN."""
    found: dict[str, list[str]] = {}
    for message in fake.sent():
        found.setdefault(f"whatsapp:{message.address}", []).append(message.body or "")
    return found


def in_flight(engine: Engine) -> list[int]:
    """Rows leased right now (`sending`): sent or not, nobody knows until they are retried."""
    with session_scope(engine) as session:
        stmt = select(OutboxMessage.id).where(OutboxMessage.status == "sending")
        return [int(i) for i in session.exec(stmt) if i is not None]


def expire_leases(engine: Engine) -> int:
    """Make leased rows due now, as if the lease had run out (the process holding it is dead)."""
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        rows = list(session.exec(select(OutboxMessage).where(OutboxMessage.status == "sending")))
        for row in rows:
            row.next_attempt_at = now
            session.add(row)
    return len(rows)


def work_left(engine: Engine) -> tuple[int, int]:
    """(things still to do now, rows held by a dead process's lease)."""
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        unprocessed = len(
            list(session.exec(select(InboxEvent.id).where(col(InboxEvent.processed_at).is_(None))))
        )
        rows = list(
            session.exec(
                select(OutboxMessage).where(col(OutboxMessage.status).in_(("pending", "sending")))
            )
        )
    held = held_rows(rows, now)
    return unprocessed + sum(1 for r in rows if r.id not in held), len(held)


def wait_quiet(
    engine: Engine, *, timeout: float = 60.0, settle: float = 0.5, until_released: bool = False
) -> int:
    """Wait until nothing is left to do but rows held by a dead lease (with `until_released`,
    until those are done too); return how many rows are held."""
    deadline = time.monotonic() + timeout
    calm = 0
    while True:
        busy, held = work_left(engine)
        calm = calm + 1 if busy == 0 and not (until_released and held) else 0
        if calm >= 3:
            return held
        if time.monotonic() > deadline:
            raise AssertionError(f"not quiet after {timeout}s: {busy} to do, {held} held")
        time.sleep(settle)
