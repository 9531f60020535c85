"""Broadcast storage on SQLite and PostgreSQL: segments, materialising, idempotent queueing,
resuming after a crash, retries, cancelling, stats, and the speed of materialising."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from storage import broadcasts as db
from storage import outbox
from storage import staff as staff_db
from storage.db import session_scope
from storage.models import Contact, ContactURN, OutboxMessage
from storage.staff_models import Broadcast, BroadcastRecipient

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
BODIES = {"en": {"text": "hello"}, "fr": {"text": "bonjour"}}


def seed(engine: Engine, n: int, *, channel_of: Any = None) -> list[int]:
    """n contacts with a language, a country, a role and one URN each (bulk insert)."""
    langs, countries, roles = ["en", "fr", "ar"], ["SL", "KE", "FR", "CN"], ["mayor", "cso"]
    with session_scope(engine) as session:
        start = int(session.exec(select(func.count()).select_from(Contact)).one())
        session.execute(
            insert(Contact.__table__),  # type: ignore[attr-defined]
            [
                {
                    "language": langs[i % 3],
                    "country_code": countries[i % 4],
                    "role": roles[i % 2],
                    "opted_out": i % 50 == 7,
                    "unreachable": i % 50 == 8,
                    "staff_role": None,
                    "prompt_data": {},
                    "created_at": NOW,
                    "last_inbound_at": NOW - timedelta(hours=i % 48),
                }
                for i in range(start, start + n)
            ],
        )
        ids = list(
            session.exec(select(Contact.id).order_by(col(Contact.id)).offset(start).limit(n))
        )
        session.execute(
            insert(ContactURN.__table__),  # type: ignore[attr-defined]
            [
                {
                    "urn": f"{(channel_of or _channel)(i)}:{i}",
                    "channel": (channel_of or _channel)(i),
                    "contact_id": i,
                    "last_seen_at": None,
                }
                for i in ids
                if i % 97  # a few without any address
            ],
        )
    return [int(i or 0) for i in ids]


def _channel(i: int) -> str:
    """Alternate Telegram and WhatsApp."""
    return "telegram" if i % 2 else "whatsapp"


def draft(session: Session, **segment: Any) -> Broadcast:
    """A draft broadcast in English and French."""
    return db.create_broadcast(
        session=session,
        title="t",
        texts={"en": "hello", "fr": "bonjour"},
        base_language="en",
        segment=segment,
        now=NOW,
        created_by=None,
        created_via="cli",
    )


def queue_all(engine: Engine, broadcast_id: int, *, limit: int = 500) -> int:
    """Queue every batch, each in its own transaction; return how many."""
    total = 0
    while True:
        with session_scope(engine) as session:
            found = db.get_broadcast(session=session, broadcast_id=broadcast_id)
            assert found is not None
            n = db.queue_batch(
                session=session, broadcast=found, bodies=BODIES, now=NOW, limit=limit
            )
        if not n:
            return total
        total += n


def test_filters_and_across_kinds_or_within(any_engine: Engine) -> None:
    """Country OR country, AND role, AND an id set; exclusions counted, not dropped."""
    ids = seed(any_engine, 200)
    allowed = frozenset(ids[:150])
    audience = db.Audience(
        country_groups=(("SL", "KE"),), roles=("mayor",), contact_sets=(allowed,)
    )
    with session_scope(any_engine) as session:
        b = draft(session)
        rows = db.preview(
            session=session, audience=audience, languages=["en", "fr"], base_language="en", now=NOW
        )
        total, excluded = db.materialise(session=session, broadcast=b, audience=audience, now=NOW)
        recipients = db.recipients_of(session=session, broadcast_id=b.id or 0)
        contacts_by_id = {c.id: c for c in session.exec(select(Contact))}
    assert sum(r.count for r in rows) == total == len(recipients)
    for r in recipients:
        c = contacts_by_id[r.contact_id]
        assert c.country_code in ("SL", "KE") and c.role == "mayor" and r.contact_id in allowed
        assert r.language == (c.language if c.language in ("en", "fr") else "en")
        assert r.fallback == (c.language == "ar")
        expected = "opted_out" if c.opted_out else "unreachable" if c.unreachable else None
        if expected is None and r.contact_id % 97 == 0:
            expected = "no_channel"
        assert r.excluded == expected
    assert excluded == sum(1 for r in recipients if r.excluded)
    expected_ids = {
        i
        for i, c in contacts_by_id.items()
        if c.country_code in ("SL", "KE") and c.role == "mayor" and i in allowed
    }
    assert {r.contact_id for r in recipients} == expected_ids


def test_an_empty_filter_matches_nobody(any_engine: Engine) -> None:
    """A chosen filter with no values (or an empty id set) is not "everyone"."""
    seed(any_engine, 20)
    with session_scope(any_engine) as session:
        for audience in (
            db.Audience(country_groups=((),)),
            db.Audience(contact_sets=(frozenset(),)),
        ):
            rows = db.preview(
                session=session, audience=audience, languages=["en"], base_language="en", now=NOW
            )
            assert rows == []


def test_channel_filter_uses_the_preferred_urn(any_engine: Engine) -> None:
    """A contact's channel is the one it last wrote from."""
    ids = seed(any_engine, 10)
    with session_scope(any_engine) as session:
        session.add(
            ContactURN(urn="whatsapp:+1", channel="whatsapp", contact_id=ids[1], last_seen_at=NOW)
        )
        session.flush()
        b = draft(session)
        db.materialise(
            session=session, broadcast=b, audience=db.Audience(channels=("whatsapp",)), now=NOW
        )
        recipients = db.recipients_of(session=session, broadcast_id=b.id or 0)
    by_contact = {r.contact_id: r for r in recipients}
    assert by_contact[ids[1]].urn == "whatsapp:+1"  # it had a Telegram URN, but wrote here
    assert all(r.channel == "whatsapp" for r in recipients)


def test_materialising_twice_and_queueing_after_a_crash_never_duplicates(
    any_engine: Engine,
) -> None:
    """Recipients are unique; a batch that crashed before commit is queued again, once."""
    seed(any_engine, 300)
    with session_scope(any_engine) as session:
        b = draft(session)
        first = db.materialise(session=session, broadcast=b, audience=db.Audience(), now=NOW)
        assert (
            db.materialise(session=session, broadcast=b, audience=db.Audience(), now=NOW) == first
        )
        broadcast_id = b.id or 0
    with session_scope(any_engine) as session:  # one batch commits
        found = db.get_broadcast(session=session, broadcast_id=broadcast_id)
        assert found is not None
        assert db.queue_batch(session=session, broadcast=found, bodies=BODIES, now=NOW, limit=100)
    with pytest.raises(RuntimeError), session_scope(any_engine) as session:  # one crashes
        found = db.get_broadcast(session=session, broadcast_id=broadcast_id)
        assert found is not None
        db.queue_batch(session=session, broadcast=found, bodies=BODIES, now=NOW, limit=100)
        raise RuntimeError("killed")
    queue_all(any_engine, broadcast_id, limit=100)
    queue_all(any_engine, broadcast_id, limit=100)  # a second scheduler finds nothing to do
    total, excluded = first
    with session_scope(any_engine) as session:
        keys = list(
            session.exec(
                select(OutboxMessage.idempotency_key).where(OutboxMessage.kind == "broadcast")
            )
        )
        assert len(keys) == len(set(keys)) == total - excluded
        assert db.is_queued(session=session, broadcast_id=broadcast_id)
        pairs = session.exec(
            select(BroadcastRecipient, OutboxMessage).join(
                OutboxMessage, col(OutboxMessage.id) == col(BroadcastRecipient.outbox_id)
            )
        ).all()
        assert len(pairs) == total - excluded
        for recipient, message in pairs:
            assert message.idempotency_key == f"bc:{broadcast_id}:{recipient.contact_id}"
            assert message.contact_id == recipient.contact_id and message.urn == recipient.urn
        texts = {
            (m.language, m.body["text"])
            for m in session.exec(select(OutboxMessage).where(OutboxMessage.kind == "broadcast"))
        }
        assert texts == {("en", "hello"), ("fr", "bonjour")}


def test_queueing_spreads_each_channel_at_its_rate(any_engine: Engine) -> None:
    """With rates, the n-th message of a channel is due n/rate seconds after the start."""
    seed(any_engine, 120)
    with session_scope(any_engine) as session:
        b = draft(session)
        db.save_broadcast(session=session, broadcast=b, now=NOW, started_at=NOW)
        db.materialise(session=session, broadcast=b, audience=db.Audience(), now=NOW)
        while db.queue_batch(
            session=session,
            broadcast=b,
            bodies=BODIES,
            now=NOW,
            rates={"telegram": 10.0, "whatsapp": 20.0},
            limit=25,
            lead=1.0,
        ):
            pass
        due: dict[str, list[datetime]] = {}
        for m in session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))):
            due.setdefault(m.channel, []).append(m.next_attempt_at)
    for channel, rate in (("telegram", 10.0), ("whatsapp", 20.0)):
        offsets = [(at - NOW).total_seconds() for at in due[channel]]
        expected = [max(0.0, i - rate) / rate for i in range(len(offsets))]  # 1 s ahead
        assert offsets == pytest.approx(expected)


def test_stats_retry_and_cancel(any_engine: Engine) -> None:
    """Outcomes counted by status and reason; failed retried once with a new key; cancel
    withdraws what is not yet sent."""
    seed(any_engine, 60)
    with session_scope(any_engine) as session:
        b = draft(session)
        db.materialise(session=session, broadcast=b, audience=db.Audience(), now=NOW)
        broadcast_id = b.id or 0
    queue_all(any_engine, broadcast_id)
    with session_scope(any_engine) as session:
        rows = list(
            session.exec(
                select(OutboxMessage)
                .where(OutboxMessage.kind == "broadcast")
                .order_by(col(OutboxMessage.id))
            )
        )
        for m in rows[:10]:
            outbox.mark_sent(
                session=session, message_id=m.id or 0, now=NOW, provider_id=f"p{m.id}"
            )
        for m in rows[10:13]:
            outbox.mark_failed(
                session=session, message_id=m.id or 0, now=NOW, code="400", reason="bad"
            )
        outbox.mark_failed(
            session=session,
            message_id=rows[13].id or 0,
            now=NOW,
            code="63016-local",
            reason="no template",
            status="needs_template",
        )
        gone = session.get(Contact, rows[10].contact_id)
        assert gone is not None
        gone.unreachable = True
        session.add(gone)
    with session_scope(any_engine) as session:
        found = db.stats(session=session, broadcast_id=broadcast_id)
        assert found.by_status == {
            "sent": 10,
            "failed": 3,
            "needs_template": 1,
            "pending": len(rows) - 14,
        }
        assert ("failed", "400", "bad", 3) in found.reasons
        assert found.processed == 14 and found.waiting == len(rows) - 14
        b2 = db.get_broadcast(session=session, broadcast_id=broadcast_id)
        assert b2 is not None
        queued, skipped = db.retry_failed(session=session, broadcast=b2, bodies=BODIES, now=NOW)
        assert (queued, skipped) == (3, {"unreachable": 1})
        again = db.retry_failed(session=session, broadcast=b2, bodies=BODIES, now=NOW)
        assert again == (0, {"unreachable": 1})
        withdrawn = db.cancel_pending(session=session, broadcast_id=broadcast_id, now=NOW)
        assert withdrawn == len(rows) - 14 + 3
        after = db.stats(session=session, broadcast_id=broadcast_id)
        assert after.waiting == 0 and after.by_status["cancelled"] == withdrawn
        keys = [
            k for k in session.exec(select(OutboxMessage.idempotency_key)) if k.endswith(":r1")
        ]
        assert len(keys) == 3


def test_release_in_flight_only_touches_that_broadcast_and_channel(any_engine: Engine) -> None:
    """Leased console messages of the broadcast become due again; nothing else changes."""
    seed(any_engine, 10, channel_of=lambda i: "console")
    with session_scope(any_engine) as session:
        b = draft(session)
        db.materialise(session=session, broadcast=b, audience=db.Audience(), now=NOW)
        broadcast_id = b.id or 0
    queue_all(any_engine, broadcast_id)
    with session_scope(any_engine) as session:
        outbox.enqueue(
            session=session,
            idempotency_key="other",
            urn="console:x",
            channel="console",
            body={"text": "x"},
            now=NOW,
        )
        leased = outbox.claim_due(session=session, channel="console", now=NOW, limit=5)
        assert len(leased) == 5
    with session_scope(any_engine) as session:
        assert (
            db.release_in_flight(
                session=session, broadcast_id=broadcast_id, channel="console", now=NOW
            )
            == 5
        )
        statuses = {m.status for m in session.exec(select(OutboxMessage))}
    assert statuses == {"pending"}


def test_materialising_ten_thousand_recipients_is_fast(any_engine: Engine) -> None:
    """One INSERT … SELECT writes 10,000 recipients well within 2 seconds."""
    seed(any_engine, 10_000)
    with session_scope(any_engine) as session:
        b = draft(session)
        started = time.perf_counter()
        total, _excluded = db.materialise(
            session=session, broadcast=b, audience=db.Audience(), now=NOW
        )
        elapsed = time.perf_counter() - started
    assert total == 10_000
    assert elapsed < 2.0, elapsed


def test_feature_adapters_degrade_without_their_modules(
    any_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a feature's storage module the adapters say "unavailable" (None)."""
    import importlib

    real = importlib.import_module

    def missing(name: str, package: str | None = None) -> Any:
        if name in ("storage.donations", "storage.webinars"):
            raise ModuleNotFoundError(name=name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", missing)
    with session_scope(any_engine) as session:
        assert staff_db.open_request_contacts(session=session) is None
        assert staff_db.webinar_registrants(session=session, webinar_id=1) is None
        assert staff_db.donations_summary(session=session) is None
        assert staff_db.webinars_summary(session=session) is None
