"""Storage contract: behaviour SQLite and PostgreSQL must share (run with `any_engine`)."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import Session, SQLModel

from storage import audit, contacts, inbox, outbox, surveys
from storage.db import session_scope
from storage.models import Contact, OutboxMessage, SurveyRun

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=2)
T = TypeVar("T")


# --- helpers -------------------------------------------------------------------------------------


def in_tx(engine: Engine, work: Callable[[Session], T]) -> T:
    """Run `work` in its own transaction and return its result."""
    with session_scope(engine) as session:
        return work(session)


def new_contact(engine: Engine, urn: str) -> int:
    """Create a contact for `urn` in its own transaction and return its id."""
    with session_scope(engine) as session:
        contact, _ = contacts.get_or_create_contact(session=session, urn=urn, now=NOW)
        assert contact.id is not None
        return contact.id


def read_contact(engine: Engine, contact_id: int) -> Contact:
    """Read a contact back in a fresh transaction."""
    with session_scope(engine) as session:
        contact = contacts.get_contact(session=session, contact_id=contact_id)
        assert contact is not None
        return contact


def read_message(engine: Engine, message_id: int) -> OutboxMessage:
    """Read an outbox row back in a fresh transaction."""
    with session_scope(engine) as session:
        row = outbox.get_message(session=session, message_id=message_id)
        assert row is not None
        return row


def enqueue(
    engine: Engine,
    key: str,
    *,
    channel: str = "telegram",
    urn: str | None = None,
    now: datetime = NOW,
    contact_id: int | None = None,
    not_before: datetime | None = None,
) -> int:
    """Enqueue one message (to its own URN unless given) in a transaction; return its id."""
    with session_scope(engine) as session:
        message_id = outbox.enqueue(
            session=session,
            idempotency_key=key,
            urn=urn or f"{channel}:{key}",
            channel=channel,
            body={"text": key},
            now=now,
            contact_id=contact_id,
            not_before=not_before,
        )
        assert isinstance(message_id, int)
        return message_id


def claim(
    engine: Engine, now: datetime, *, channel: str = "telegram", limit: int = 50
) -> list[int]:
    """Claim due messages in their own transaction and return their ids."""
    with session_scope(engine) as session:
        rows = outbox.claim_due(
            session=session, channel=channel, now=now, limit=limit, lease=LEASE
        )
        return [row.id for row in rows if row.id is not None]


def sent_message(engine: Engine, key: str, provider_id: str) -> int:
    """Enqueue, claim and hand over one message; return its id."""
    message_id = enqueue(engine, key)
    assert claim(engine, NOW) == [message_id]
    with session_scope(engine) as session:
        outbox.mark_sent(session=session, message_id=message_id, now=NOW, provider_id=provider_id)
    return message_id


def callback(
    engine: Engine,
    provider_id: str,
    status: str,
    *,
    now: datetime = NOW,
    error_code: str | None = None,
) -> bool:
    """Apply one provider status callback in its own transaction."""
    with session_scope(engine) as session:
        return outbox.apply_status(
            session=session, provider_id=provider_id, status=status, now=now, error_code=error_code
        )


def store(
    session: Session,
    external_id: str,
    *,
    urn: str = "telegram:1",
    channel: str = "telegram",
    payload: dict[str, Any] | None = None,
    at: datetime = NOW,
) -> int | None:
    """Store an inbox event and return its id (None for a duplicate)."""
    return inbox.store_event(
        session=session,
        channel=channel,
        external_id=external_id,
        urn=urn,
        payload=payload if payload is not None else {"text": external_id},
        received_at=at,
    )


def pin(session: Session, digest: str = "d1", survey_id: str = "city_profile") -> int:
    """Pin a small survey definition; return its id."""
    return surveys.pin_definition(
        session=session,
        survey_id=survey_id,
        version=1,
        digest=digest,
        body={"questions": [{"id": "q1"}]},
        now=NOW,
    )


def start(
    session: Session, contact_id: int, *, expires_at: datetime = NOW + timedelta(days=1)
) -> SurveyRun:
    """Start a run of the pinned definition for a contact."""
    return surveys.start_run(
        session=session,
        contact_id=contact_id,
        survey_id="city_profile",
        definition_id=pin(session),
        now=NOW,
        expires_at=expires_at,
    )


def run_threads(n: int, work: Callable[[threading.Barrier], T]) -> list[T]:
    """Run `work` in `n` threads released together by a barrier; return their results."""
    barrier = threading.Barrier(n, timeout=10)
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(work, barrier) for _ in range(n)]
        return [future.result(timeout=30) for future in futures]


def assert_utc(value: datetime | None) -> None:
    """A stored timestamp reads back aware, in UTC."""
    assert value is not None
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)
    assert value.tzinfo == UTC


def datetimes_of(row: SQLModel | inbox.PendingEvent) -> dict[str, datetime]:
    """Every non-null datetime field of a row (a table model or a pending inbox event)."""
    fields = row.model_dump() if isinstance(row, SQLModel) else dataclasses.asdict(row)
    return {k: v for k, v in fields.items() if isinstance(v, datetime)}


# --- contacts ------------------------------------------------------------------------------------


def test_get_or_create_contact_creates_once_per_urn(any_engine: Engine) -> None:
    """A URN gets one contact; later calls (same or later transaction) return it, not created."""
    with session_scope(any_engine) as session:
        first, created = contacts.get_or_create_contact(session=session, urn="telegram:1", now=NOW)
        again, created_again = contacts.get_or_create_contact(
            session=session, urn="telegram:1", now=NOW
        )
        assert created is True and created_again is False
        assert again.id == first.id
    with session_scope(any_engine) as session:
        later, created_later = contacts.get_or_create_contact(
            session=session, urn="telegram:1", now=NOW + timedelta(hours=1)
        )
        assert created_later is False
        assert later.id == first.id
        assert later.created_at == NOW
        other, created_other = contacts.get_or_create_contact(
            session=session, urn="telegram:2", now=NOW
        )
        assert created_other is True and other.id != first.id


def test_contact_holds_several_urns_add_urn_idempotent(any_engine: Engine) -> None:
    """add_urn attaches more addresses to one contact; adding one twice keeps one."""
    contact_id = new_contact(any_engine, "telegram:1")
    for _ in range(2):
        with session_scope(any_engine) as session:
            contacts.add_urn(session=session, contact_id=contact_id, urn="whatsapp:+23276000000")
            contacts.add_urn(session=session, contact_id=contact_id, urn="whatsapp:+23276000000")
    with session_scope(any_engine) as session:
        assert contacts.urns_of(session=session, contact_id=contact_id) == [
            "telegram:1",
            "whatsapp:+23276000000",
        ]
        by_wa = contacts.get_contact_by_urn(session=session, urn="whatsapp:+23276000000")
        assert by_wa is not None and by_wa.id == contact_id
        found, created = contacts.get_or_create_contact(
            session=session, urn="whatsapp:+23276000000", now=NOW
        )
        assert created is False and found.id == contact_id


def test_contact_with_active_run_reads_both_in_one_query(any_engine: Engine) -> None:
    """The message path's read: contact and active run, typed, tracked, held objects win."""
    me = new_contact(any_engine, "telegram:1")
    assert in_tx(any_engine, lambda s: contacts.contact_with_active_run(session=s, urn="x:9")) == (
        None,
        None,
    )
    with session_scope(any_engine) as session:
        contact, run = contacts.contact_with_active_run(session=session, urn="telegram:1")
        assert contact is not None and contact.id == me and run is None
        assert contact.created_at == NOW and contact.created_at.tzinfo is not None
        run = start(session, me)
        run.answers = {"city": {"name": "Koidu", "alt": ["Sefadu"]}, "n": 200000}
        surveys.save_run(session=session, run=run)
    with session_scope(any_engine) as session:
        contact, found = contacts.contact_with_active_run(session=session, urn="telegram:1")
        assert contact is not None and found is not None and found.id == run.id
        assert found.answers == run.answers and found.expires_at == NOW + timedelta(days=1)
        assert found.contact_id == me and found.status == "active"
        contact.name = "Amina"  # a change to the attached object is flushed like any other
        contact.prompt_data = {"offer": [1, 2]}
        again, same_run = contacts.contact_with_active_run(session=session, urn="telegram:1")
        assert again is contact and same_run is found and again.name == "Amina"
    stored = read_contact(any_engine, me)
    assert (stored.name, stored.prompt_data) == ("Amina", {"offer": [1, 2]})
    with session_scope(any_engine) as session:  # a run ended is no longer the active one
        _, found = contacts.contact_with_active_run(session=session, urn="telegram:1")
        assert found is not None
        surveys.end_run(session=session, run=found, status="submitted", now=NOW)
    _, ended = in_tx(
        any_engine, lambda s: contacts.contact_with_active_run(session=s, urn="telegram:1")
    )
    assert ended is None


def test_direct_statement_errors_are_sqlalchemy_errors(any_engine: Engine) -> None:
    """A constraint broken on the driver's cursor raises SQLAlchemy's IntegrityError."""
    new_contact(any_engine, "telegram:1")
    with pytest.raises(IntegrityError), session_scope(any_engine) as session:
        contacts.create_contact(session=session, urn="telegram:1", now=NOW)


def test_channel_of_rejects_urn_without_scheme(any_engine: Engine) -> None:
    """channel_of needs `scheme:address`; get_or_create_contact stores nothing for a bad URN."""
    assert contacts.channel_of("whatsapp:+232:1") == "whatsapp"
    for urn in ("12345", ":12345", ""):
        with pytest.raises(ValueError):
            contacts.channel_of(urn)
        with pytest.raises(ValueError), session_scope(any_engine) as session:
            contacts.get_or_create_contact(session=session, urn=urn, now=NOW)
        with session_scope(any_engine) as session:
            assert contacts.get_contact_by_urn(session=session, urn=urn) is None


def test_erase_contact_blanks_personal_fields_and_removes_urns(any_engine: Engine) -> None:
    """Erasure clears every personal field, stamps erased_at and detaches all URNs."""
    contact_id = new_contact(any_engine, "telegram:1")
    with session_scope(any_engine) as session:
        contacts.add_urn(session=session, contact_id=contact_id, urn="whatsapp:+23276000000")
        contact = contacts.get_contact(session=session, contact_id=contact_id)
        assert contact is not None
        contacts.update_contact(
            session=session,
            contact=contact,
            name="Amina Kamara",
            role="official",
            organisation="Koidu City Council",
            city_name="Koidu",
            city_geonameid=2407790,
            country_code="SL",
            timezone="Africa/Freetown",
            consent_version="v1",
            consent_at=NOW,
            consent_refused_at=NOW,
            last_inbound_at=NOW,
        )
    with session_scope(any_engine) as session:
        contact = contacts.get_contact(session=session, contact_id=contact_id)
        assert contact is not None
        contacts.erase_contact(session=session, contact=contact, now=NOW + timedelta(minutes=5))
    erased = read_contact(any_engine, contact_id)
    for field in (
        *contacts.PROFILE_FIELDS,
        "consent_version",
        "consent_at",
        "consent_refused_at",
    ):
        assert getattr(erased, field) is None, field
    assert erased.erased_at == NOW + timedelta(minutes=5)
    with session_scope(any_engine) as session:
        assert contacts.urns_of(session=session, contact_id=contact_id) == []
        assert contacts.get_contact_by_urn(session=session, urn="telegram:1") is None
        assert contacts.get_contact_by_urn(session=session, urn="whatsapp:+23276000000") is None
        fresh, created = contacts.get_or_create_contact(session=session, urn="telegram:1", now=NOW)
        assert created is True and fresh.id != contact_id


def test_set_staff_roles_creates_and_updates_contacts(any_engine: Engine) -> None:
    """set_staff_roles gives each URN's contact its role, creating missing contacts."""
    existing = new_contact(any_engine, "telegram:1")
    roles = {"telegram:1": "admin", "whatsapp:+23276000000": "viewer"}
    assert in_tx(
        any_engine, lambda s: contacts.set_staff_roles(session=s, urns=roles, now=NOW)
    ) == len(roles)
    assert read_contact(any_engine, existing).staff_role == "admin"
    with session_scope(any_engine) as session:
        new = contacts.get_contact_by_urn(session=session, urn="whatsapp:+23276000000")
        assert new is not None and new.staff_role == "viewer" and new.id != existing
    in_tx(
        any_engine,
        lambda s: contacts.set_staff_roles(session=s, urns={"telegram:1": "viewer"}, now=NOW),
    )
    assert read_contact(any_engine, existing).staff_role == "viewer"


# --- inbox ---------------------------------------------------------------------------------------


def test_store_event_dedupes_per_channel_and_keeps_first_row(any_engine: Engine) -> None:
    """A repeated (channel, external_id) is refused now and later; other channels are fine."""
    with session_scope(any_engine) as session:
        first = store(session, "m1", payload={"text": "first"})
        assert first is not None
        assert store(session, "m1", urn="telegram:2", payload={"text": "same tx"}) is None
        store(session, "m2")  # the transaction is still usable after a duplicate
    with session_scope(any_engine) as session:
        later = NOW + timedelta(minutes=1)
        assert store(session, "m1", urn="telegram:3", payload={"text": "later"}, at=later) is None
    with session_scope(any_engine) as session:
        events = inbox.pending_batch(session=session)
        assert [(e.external_id, e.urn) for e in events] == [
            ("m1", "telegram:1"),
            ("m2", "telegram:1"),
        ]
        assert events[0].id == first
        assert events[0].payload == {"text": "first"}
        assert events[0].received_at == NOW
    with session_scope(any_engine) as session:  # deduplication is per channel
        other = store(session, "m1", channel="whatsapp", urn="whatsapp:+1")
        assert other is not None and other != first
    with session_scope(any_engine) as session:
        assert [e.channel for e in inbox.pending_batch(session=session, urn="whatsapp:+1")] == [
            "whatsapp"
        ]


def test_pending_batch_oldest_first_per_urn_and_mark_processed(any_engine: Engine) -> None:
    """Unprocessed events come oldest first, optionally per URN; processed ones drop out."""
    with session_scope(any_engine) as session:
        for i, urn in enumerate(["telegram:1", "telegram:2", "telegram:1", "telegram:2"]):
            store(session, f"e{i}", urn=urn, at=NOW + timedelta(seconds=i))
    with session_scope(any_engine) as session:
        assert [e.external_id for e in inbox.pending_batch(session=session)] == [
            "e0",
            "e1",
            "e2",
            "e3",
        ]
        assert [e.external_id for e in inbox.pending_batch(session=session, limit=2)] == [
            "e0",
            "e1",
        ]
        others = inbox.pending_batch(session=session, skip_urns={"telegram:1"}, limit=2)
        assert [e.external_id for e in others] == ["e1", "e3"]  # a URN in hand is skipped
        mine = inbox.pending_batch(session=session, urn="telegram:1")
        assert [e.external_id for e in mine] == ["e0", "e2"]
        inbox.mark_processed(
            session=session, event_id=mine[0].id or 0, now=NOW + timedelta(minutes=1)
        )
        inbox.mark_processed(
            session=session, event_id=mine[1].id or 0, now=NOW, error="bad payload"
        )
    with session_scope(any_engine) as session:
        assert inbox.pending_batch(session=session, urn="telegram:1") == []
        assert [e.external_id for e in inbox.pending_batch(session=session)] == ["e1", "e3"]


def test_direct_statements_follow_the_session_into_each_new_transaction(
    any_engine: Engine,
) -> None:
    """The driver connection is looked up once a transaction, never reused after it ends."""
    with Session(any_engine, expire_on_commit=False) as session:
        store(session, "kept-out")
        assert [e.external_id for e in inbox.pending_batch(session=session)] == ["kept-out"]
        session.rollback()  # the next statement runs in a new transaction
        assert inbox.pending_batch(session=session) == []
        store(session, "kept")
        session.commit()
        store(session, "also kept")
        session.commit()
    with session_scope(any_engine) as session:
        assert [e.external_id for e in inbox.pending_batch(session=session)] == [
            "kept",
            "also kept",
        ]


def test_redact_events_blanks_payload_and_urn(any_engine: Engine) -> None:
    """redact_events empties the payload and replaces the URN of the given URNs' events only."""
    with session_scope(any_engine) as session:
        store(session, "e1", urn="telegram:1", payload={"text": "my name is Amina"})
        store(session, "e2", urn="whatsapp:+1", payload={"text": "hi"})
        store(session, "e3", urn="telegram:2", payload={"text": "keep me"})
        assert inbox.redact_events(session=session, urns=[]) == 0
    n = in_tx(
        any_engine, lambda s: inbox.redact_events(session=s, urns=["telegram:1", "whatsapp:+1"])
    )
    assert n == 2
    with session_scope(any_engine) as session:
        events = {e.external_id: e for e in inbox.pending_batch(session=session)}
        assert (events["e1"].urn, events["e1"].payload) == ("erased", {})
        assert (events["e2"].urn, events["e2"].payload) == ("erased", {})
        assert (events["e3"].urn, events["e3"].payload) == ("telegram:2", {"text": "keep me"})
        assert inbox.pending_batch(session=session, urn="telegram:1") == []


# --- outbox --------------------------------------------------------------------------------------


def test_enqueue_same_idempotency_key_gives_one_row(any_engine: Engine) -> None:
    """A second enqueue with the same key returns None, in the same or a later transaction."""
    with session_scope(any_engine) as session:
        first = outbox.enqueue(
            session=session,
            idempotency_key="k1",
            urn="telegram:1",
            channel="telegram",
            body={"text": "first"},
            now=NOW,
        )
        assert isinstance(first, int)
        again = outbox.enqueue(
            session=session,
            idempotency_key="k1",
            urn="telegram:1",
            channel="telegram",
            body={"text": "again"},
            now=NOW,
        )
        assert again is None
    with session_scope(any_engine) as session:
        later = outbox.enqueue(
            session=session,
            idempotency_key="k1",
            urn="telegram:2",
            channel="telegram",
            body={"text": "later"},
            now=NOW,
        )
        assert later is None
        rows = outbox.messages_for(session=session, urn="telegram:1")
        assert [(r.id, r.body) for r in rows] == [(first, {"text": "first"})]
        assert outbox.count_by_status(session=session) == {"pending": 1}


def test_claim_due_leases_oldest_due_messages_of_one_channel(any_engine: Engine) -> None:
    """claim_due takes due pending messages of one channel, oldest first, and leases them."""
    ids = [enqueue(any_engine, f"k{i}", now=NOW - timedelta(minutes=3 - i)) for i in range(3)]
    enqueue(any_engine, "wa", channel="whatsapp")
    enqueue(any_engine, "later", not_before=NOW + timedelta(hours=1))
    with session_scope(any_engine) as session:
        rows = outbox.claim_due(session=session, channel="telegram", now=NOW, lease=LEASE)
        assert [r.id for r in rows] == ids
        for row in rows:
            assert row.status == "sending"
            assert row.attempts == 1
            assert row.next_attempt_at == NOW + LEASE
    for message_id in ids:
        row = read_message(any_engine, message_id)
        assert (row.status, row.attempts) == ("sending", 1)
        assert row.next_attempt_at > NOW
        assert row.updated_at == NOW
    assert claim(any_engine, NOW) == []
    with session_scope(any_engine) as session:
        assert outbox.count_by_status(session=session, channel="whatsapp") == {"pending": 1}


def test_claim_due_respects_limit_in_age_order(any_engine: Engine) -> None:
    """With a limit, the oldest messages are claimed first and the rest on the next claim."""
    ids = [enqueue(any_engine, f"k{i}") for i in range(5)]
    assert claim(any_engine, NOW, limit=2) == ids[:2]
    assert claim(any_engine, NOW, limit=2) == ids[2:4]
    assert claim(any_engine, NOW, limit=2) == ids[4:]


def test_claim_due_reclaims_after_lease_expires(any_engine: Engine) -> None:
    """A leased message is not claimed during its lease and is claimed again once it runs out."""
    message_id = enqueue(any_engine, "k1")
    assert claim(any_engine, NOW) == [message_id]
    assert claim(any_engine, NOW + LEASE - timedelta(seconds=1)) == []
    assert claim(any_engine, NOW + LEASE) == [message_id]
    row = read_message(any_engine, message_id)
    assert (row.status, row.attempts) == ("sending", 2)
    assert row.next_attempt_at == NOW + 2 * LEASE


def test_claim_due_skips_not_before_in_future(any_engine: Engine) -> None:
    """A message with not_before in the future is claimed only once that time comes."""
    message_id = enqueue(any_engine, "k1", not_before=NOW + timedelta(hours=1))
    assert claim(any_engine, NOW) == []
    assert claim(any_engine, NOW + timedelta(minutes=59)) == []
    assert claim(any_engine, NOW + timedelta(hours=1)) == [message_id]


def test_claim_due_keeps_order_per_urn(any_engine: Engine) -> None:
    """One message per URN is in flight: a later one waits while an earlier is pending/sending."""
    x1, x2, x3 = (enqueue(any_engine, f"x{i}", urn="telegram:x") for i in range(1, 4))
    y1 = enqueue(any_engine, "y1", urn="telegram:y")
    assert claim(any_engine, NOW) == [x1, y1]
    assert claim(any_engine, NOW) == []  # x2 waits for x1 (sending)
    with session_scope(any_engine) as session:
        outbox.mark_sent(session=session, message_id=x1, now=NOW, provider_id="p1")
        outbox.mark_sent(session=session, message_id=y1, now=NOW, provider_id="p2")
    assert claim(any_engine, NOW) == [x2]
    retry_at = NOW + timedelta(minutes=10)
    with session_scope(any_engine) as session:
        outbox.mark_retry(
            session=session, message_id=x2, now=NOW, at=retry_at, code="429", reason="slow down"
        )
    assert claim(any_engine, NOW + timedelta(minutes=1)) == []  # x3 waits for retrying x2
    assert claim(any_engine, retry_at) == [x2]
    with session_scope(any_engine) as session:
        outbox.mark_failed(session=session, message_id=x2, now=retry_at, code="400", reason="")
    assert claim(any_engine, retry_at) == [x3]


def test_claim_due_scheduled_message_does_not_block_due_ones(any_engine: Engine) -> None:
    """A message scheduled for later does not hold back a due message to the same person."""
    tomorrow = NOW + timedelta(days=1)
    scheduled = enqueue(any_engine, "reminder", urn="telegram:x", not_before=tomorrow)
    reply = enqueue(any_engine, "reply", urn="telegram:x")
    assert claim(any_engine, NOW) == [reply]
    assert claim(any_engine, tomorrow) == [scheduled]


def test_mark_sent_retry_and_failed(any_engine: Engine) -> None:
    """mark_retry requeues for later, mark_sent records the hand-over, mark_failed ends it."""
    a = enqueue(any_engine, "a")
    b = enqueue(any_engine, "b")
    assert claim(any_engine, NOW) == [a, b]
    retry_at = NOW + timedelta(minutes=10)
    with session_scope(any_engine) as session:
        outbox.mark_retry(
            session=session, message_id=a, now=NOW, at=retry_at, code="429", reason="x" * 400
        )
        outbox.mark_failed(
            session=session, message_id=b, now=NOW, code="400", reason="blocked by user"
        )
        outbox.mark_retry(session=session, message_id=999_999, now=NOW, at=NOW, code="", reason="")
    row = read_message(any_engine, a)
    assert (row.status, row.next_attempt_at, row.error_code) == ("pending", retry_at, "429")
    assert row.error_reason == "x" * 300
    failed = read_message(any_engine, b)
    assert (failed.status, failed.error_code, failed.error_reason) == (
        "failed",
        "400",
        "blocked by user",
    )
    assert claim(any_engine, retry_at - timedelta(seconds=1)) == []
    assert claim(any_engine, retry_at) == [a]  # the failed one is never claimed again
    sent_at = retry_at + timedelta(seconds=3)
    with session_scope(any_engine) as session:
        outbox.mark_sent(session=session, message_id=a, now=sent_at, provider_id="p-a")
    row = read_message(any_engine, a)
    assert (row.status, row.provider_id, row.sent_at) == ("sent", "p-a", sent_at)
    assert (row.error_code, row.error_reason, row.attempts) == (None, None, 2)
    assert claim(any_engine, NOW + timedelta(days=1)) == []


def test_apply_status_moves_forward_only(any_engine: Engine) -> None:
    """queued < sent < delivered < read: forward moves apply, regressions return False."""
    message_id = enqueue(any_engine, "k1")
    claim(any_engine, NOW)
    with session_scope(any_engine) as session:
        outbox.mark_sent(
            session=session, message_id=message_id, now=NOW, provider_id="p1", status="queued"
        )
    steps = [
        ("sent", True, "sent"),
        ("queued", False, "sent"),
        ("sent", False, "sent"),
        ("delivered", True, "delivered"),
        ("sent", False, "delivered"),
        ("read", True, "read"),
        ("delivered", False, "read"),
        ("failed", False, "read"),
    ]
    for i, (status, applied, expected) in enumerate(steps, start=1):
        result = callback(any_engine, "p1", status, now=NOW + timedelta(minutes=i))
        assert result is applied, (status, expected)
        assert read_message(any_engine, message_id).status == expected
    assert read_message(any_engine, message_id).updated_at == NOW + timedelta(minutes=6)


def test_apply_status_failure_is_terminal_and_unknown_ids_ignored(any_engine: Engine) -> None:
    """After failed/undelivered nothing changes status or error code; unknown ids give False."""
    for terminal in ("failed", "undelivered"):
        provider_id = f"p-{terminal}"
        message_id = sent_message(any_engine, terminal, provider_id)
        assert callback(any_engine, provider_id, terminal, error_code="30008")
        for status in ("delivered", "read", "failed", "undelivered", "sent"):
            assert not callback(any_engine, provider_id, status, error_code="99999"), status
        row = read_message(any_engine, message_id)
        assert (row.status, row.error_code) == (terminal, "30008")
    assert not callback(any_engine, "nope", "delivered")
    with session_scope(any_engine) as session:
        assert outbox.count_by_status(session=session) == {"failed": 1, "undelivered": 1}


def test_count_by_status_overall_and_per_channel(any_engine: Engine) -> None:
    """count_by_status groups by status, optionally for one channel."""
    sent_message(any_engine, "t1", "p1")
    enqueue(any_engine, "t2")
    enqueue(any_engine, "t3")
    enqueue(any_engine, "w1", channel="whatsapp")
    with session_scope(any_engine) as session:
        assert outbox.count_by_status(session=session) == {"sent": 1, "pending": 3}
        assert outbox.count_by_status(session=session, channel="telegram") == {
            "sent": 1,
            "pending": 2,
        }
        assert outbox.count_by_status(session=session, channel="whatsapp") == {"pending": 1}
        assert outbox.count_by_status(session=session, channel="console") == {}


def test_redact_messages_leaves_pending_and_sending_alone(any_engine: Engine) -> None:
    """redact_messages blanks a contact's finished messages but not queued ones or keep_id."""
    me = new_contact(any_engine, "telegram:1")
    other = new_contact(any_engine, "telegram:2")
    sending = enqueue(any_engine, "sending", contact_id=me)
    claim(any_engine, NOW)
    pending = enqueue(any_engine, "pending", contact_id=me)
    with session_scope(any_engine) as session:
        done = []
        for key, cid in (("sent", me), ("failed", me), ("kept", me), ("theirs", other)):
            message_id = outbox.enqueue(
                session=session,
                idempotency_key=key,
                urn=f"telegram:{key}",
                channel="telegram",
                body={"text": key},
                now=NOW,
                contact_id=cid,
            )
            assert message_id is not None
            outbox.mark_failed(
                session=session, message_id=message_id, now=NOW, code="x", reason=""
            )
            done.append(message_id)
    sent, failed, kept, theirs = done
    n = in_tx(any_engine, lambda s: outbox.redact_messages(session=s, contact_id=me, keep_id=kept))
    assert n == 2
    for message_id in (sent, failed):
        row = read_message(any_engine, message_id)
        assert (row.urn, row.body) == ("erased", {})
    for message_id, key in ((sending, "sending"), (pending, "pending"), (kept, "kept")):
        row = read_message(any_engine, message_id)
        assert (row.urn, row.body) == (f"telegram:{key}", {"text": key})
    assert read_message(any_engine, theirs).body == {"text": "theirs"}
    assert read_message(any_engine, sending).status == "sending"


# --- surveys -------------------------------------------------------------------------------------


def test_pin_definition_idempotent_per_digest(any_engine: Engine) -> None:
    """The same digest returns the same row; a changed digest stores a new one."""
    first = in_tx(any_engine, lambda s: pin(s, "d1"))
    with session_scope(any_engine) as session:
        assert pin(session, "d1") == first
        assert pin(session, "d1") == first
        changed = pin(session, "d2")
        assert changed != first
        other_survey = pin(session, "d1", survey_id="other")
        assert other_survey not in (first, changed)
    with session_scope(any_engine) as session:
        stored = surveys.get_definition(session=session, definition_id=first)
        assert stored is not None
        assert (stored.digest, stored.body) == ("d1", {"questions": [{"id": "q1"}]})


def test_start_run_cancels_previous_active_run(any_engine: Engine) -> None:
    """Starting a run cancels the contact's active one (same or earlier transaction) only."""
    me = new_contact(any_engine, "telegram:1")
    other = new_contact(any_engine, "telegram:2")
    first = in_tx(any_engine, lambda s: start(s, me))
    theirs = in_tx(any_engine, lambda s: start(s, other))
    second = in_tx(any_engine, lambda s: start(s, me))
    with session_scope(any_engine) as session:
        active = surveys.active_run(session=session, contact_id=me)
        assert active is not None and active.id == second.id
        still = surveys.active_run(session=session, contact_id=other)
        assert still is not None and still.id == theirs.id
        assert surveys.active_run(session=session, contact_id=other + me + 1000) is None
        # only the two runs still active expire: the first run of `me` is no longer active
        far = NOW + timedelta(days=30)
        expired = surveys.expire_runs(session=session, now=far)
        assert {r.id for r in expired} == {second.id, theirs.id}
        assert first.id not in {r.id for r in expired}
    third = new_contact(any_engine, "telegram:3")
    with session_scope(any_engine) as session:  # twice in one transaction: still one active
        a = start(session, third)
        b = start(session, third)
        assert (a.status, a.ended_at) == ("cancelled", NOW)
        active = surveys.active_run(session=session, contact_id=third)
        assert active is not None and active.id == b.id


def test_save_run_round_trips_json_exactly(any_engine: Engine) -> None:
    """Answers and state (nested dicts, lists, unicode, numbers) read back exactly."""
    me = new_contact(any_engine, "telegram:1")
    answers: dict[str, Any] = {
        "name": "Amina Kamara",
        "city": {"name": "Koidu", "geonameid": 2407790, "alt": ["Sefadu", "Koidu-Sefadu"]},
        "priorities": ["water", "roads", {"other": "électricité – 電力 🚰"}],
        "budget": 12.5,
        "count": 0,
        "flag": False,
        "nothing": None,
        "empty": {"list": [], "dict": {}},
    }
    state: dict[str, Any] = {"history": ["q1", "q2"], "pending": {"q3": [1, 2, 3]}, "then": "menu"}
    with session_scope(any_engine) as session:
        run = start(session, me)
        run.answers = answers
        run.state = state
        run.step = "q3"
        run.prompt_seq = 7
        surveys.save_run(session=session, run=run)
    with session_scope(any_engine) as session:
        stored = surveys.active_run(session=session, contact_id=me)
        assert stored is not None
        assert stored.answers == answers and stored.state == state
        assert json.dumps(stored.answers) == json.dumps(answers)
        assert json.dumps(stored.state) == json.dumps(state)
        assert (stored.step, stored.prompt_seq) == ("q3", 7)
        stored.answers = {**stored.answers, "name": "Ami"}
        stored.state = {}
        surveys.save_run(session=session, run=stored)
    with session_scope(any_engine) as session:
        again = surveys.active_run(session=session, contact_id=me)
        assert again is not None
        assert again.answers["name"] == "Ami" and again.state == {}


def test_end_run_closes_run(any_engine: Engine) -> None:
    """end_run sets status and end time; the contact then has no active run."""
    me = new_contact(any_engine, "telegram:1")
    run = in_tx(any_engine, lambda s: start(s, me))
    ended = NOW + timedelta(minutes=3)
    with session_scope(any_engine) as session:
        stored = surveys.active_run(session=session, contact_id=me)
        assert stored is not None and stored.id == run.id
        surveys.end_run(session=session, run=stored, status="submitted", now=ended)
        assert (stored.status, stored.ended_at, stored.updated_at) == ("submitted", ended, ended)
    with session_scope(any_engine) as session:
        assert surveys.active_run(session=session, contact_id=me) is None
        assert surveys.expire_runs(session=session, now=NOW + timedelta(days=30)) == []


def test_expire_runs_only_active_runs_due(any_engine: Engine) -> None:
    """expire_runs ends active runs with expires_at <= now, and nothing else."""
    people = [new_contact(any_engine, f"telegram:{i}") for i in range(4)]
    offsets = [timedelta(hours=-1), timedelta(0), timedelta(seconds=1), timedelta(hours=-2)]
    runs: list[SurveyRun] = []
    for contact_id, offset in zip(people, offsets, strict=True):
        with session_scope(any_engine) as session:
            runs.append(start(session, contact_id, expires_at=NOW + offset))
    with session_scope(any_engine) as session:
        done = surveys.active_run(session=session, contact_id=people[3])
        assert done is not None and done.id == runs[3].id
        surveys.end_run(session=session, run=done, status="submitted", now=NOW)
    expired = in_tx(any_engine, lambda s: surveys.expire_runs(session=s, now=NOW))
    assert [r.id for r in expired] == [runs[0].id, runs[1].id]
    assert all(r.status == "expired" and r.ended_at == NOW for r in expired)
    with session_scope(any_engine) as session:
        active = [surveys.active_run(session=session, contact_id=c) for c in people]
        assert [r.id if r else None for r in active] == [None, None, runs[2].id, None]
    assert in_tx(any_engine, lambda s: surveys.expire_runs(session=s, now=NOW)) == []
    later = in_tx(
        any_engine, lambda s: surveys.expire_runs(session=s, now=NOW + timedelta(seconds=1))
    )
    assert [r.id for r in later] == [runs[2].id]


def test_save_response_idempotent_per_run_and_counted(any_engine: Engine) -> None:
    """A run has at most one response; count_responses counts per survey for a contact."""
    me = new_contact(any_engine, "telegram:1")

    def submit(session: Session, run: SurveyRun, answers: dict[str, Any]) -> int | None:
        """Save a response for the run."""
        return surveys.save_response(
            session=session,
            run=run,
            version=1,
            language="fr",
            answers=answers,
            now=NOW,
            contact_id=me,
            country_code="SL",
            city_name="Koidu",
        )

    with session_scope(any_engine) as session:
        run = start(session, me)
        first = submit(session, run, {"q1": "oui"})
        assert submit(session, run, {"q1": "non"}) == first
    with session_scope(any_engine) as session:
        assert submit(session, run, {"q1": "encore"}) == first
        second_run = start(session, me)
        assert submit(session, second_run, {"q1": "deux"}) != first
    with session_scope(any_engine) as session:
        assert surveys.count_responses(session=session, contact_id=me) == {"city_profile": 2}
        stored = surveys.responses(session=session, survey_id="city_profile")
        assert [r.answers for r in stored] == [{"q1": "oui"}, {"q1": "deux"}]
        assert surveys.count_responses(session=session, contact_id=me + 1000) == {}


def test_anonymise_contact_data_unlinks_responses_and_drops_runs(any_engine: Engine) -> None:
    """Responses lose contact and city but keep country; the contact's runs are deleted."""
    me = new_contact(any_engine, "telegram:1")
    other = new_contact(any_engine, "telegram:2")
    run_ids: dict[int, int | None] = {}
    for cid in (me, other):
        with session_scope(any_engine) as session:
            run = start(session, cid)
            run_ids[cid] = run.id
            surveys.save_response(
                session=session,
                run=run,
                version=1,
                language="en",
                answers={"q1": cid},
                now=NOW,
                contact_id=cid,
                country_code="SL",
                city_name="Koidu",
            )
            start(session, cid)  # a second, still active run
    n = in_tx(any_engine, lambda s: surveys.anonymise_contact_data(session=s, contact_id=me))
    assert n == 1
    with session_scope(any_engine) as session:
        by_answer = {r.answers["q1"]: r for r in surveys.responses(session=session)}
        mine, theirs = by_answer[me], by_answer[other]
        assert (mine.contact_id, mine.city_name, mine.country_code) == (None, None, "SL")
        assert (theirs.contact_id, theirs.city_name, theirs.country_code) == (other, "Koidu", "SL")
        assert surveys.count_responses(session=session, contact_id=me) == {}
        assert surveys.active_run(session=session, contact_id=me) is None
        assert surveys.active_run(session=session, contact_id=other) is not None
        # only the other contact's active run is left to expire; `me` has no runs at all
        left = surveys.expire_runs(session=session, now=NOW + timedelta(days=30))
        assert [r.contact_id for r in left] == [other]
        assert run_ids[me] not in {r.id for r in left}


# --- timestamps ----------------------------------------------------------------------------------


def test_every_datetime_reads_back_aware_utc(any_engine: Engine) -> None:
    """Timestamps given in another zone read back as the same instant, aware, in UTC."""
    local = NOW.astimezone(timezone(timedelta(hours=5, minutes=30)))
    me = new_contact(any_engine, "telegram:1")
    with session_scope(any_engine) as session:
        contact = contacts.get_contact(session=session, contact_id=me)
        assert contact is not None
        contacts.update_contact(
            session=session,
            contact=contact,
            consent_at=local,
            consent_refused_at=local,
            last_inbound_at=local,
            erased_at=local,
        )
        event_id = store(session, "e1", at=local)
        assert event_id is not None
        message_id = outbox.enqueue(
            session=session,
            idempotency_key="k1",
            urn="telegram:1",
            channel="telegram",
            body={},
            now=local,
        )
        assert message_id is not None
        outbox.mark_sent(session=session, message_id=message_id, now=local, provider_id="p1")
        run = start(session, me, expires_at=local)
        surveys.save_response(
            session=session,
            run=run,
            version=1,
            language="en",
            answers={},
            now=local,
            contact_id=me,
            country_code=None,
            city_name=None,
        )
        audit.record(session=session, action="test", now=local)
    with session_scope(any_engine) as session:
        if any_engine.dialect.name == "postgresql":  # read back in a session that is not UTC
            session.connection().exec_driver_sql("SET LOCAL TIME ZONE 'Asia/Kolkata'")
        rows: list[SQLModel | inbox.PendingEvent | None] = [
            contacts.get_contact(session=session, contact_id=me),
            *inbox.pending_batch(session=session),
            outbox.get_message(session=session, message_id=message_id),
            surveys.active_run(session=session, contact_id=me),
            *surveys.responses(session=session),
            surveys.get_definition(session=session, definition_id=pin(session)),
            *audit.entries(session=session),
        ]
        seen = 0
        for stored in rows:
            assert stored is not None
            for name, value in datetimes_of(stored).items():
                assert_utc(value)
                assert value == NOW, (type(stored).__name__, name)
                seen += 1
        assert seen == 16
        assert len(rows) == 7


def test_naive_datetime_is_refused(any_engine: Engine) -> None:
    """Naive datetimes are rejected on write and in queries, and nothing is stored."""
    naive = NOW.replace(tzinfo=None)
    me = new_contact(any_engine, "telegram:1")
    attempts: dict[str, Callable[[Session], object]] = {
        "contact": lambda s: contacts.get_or_create_contact(
            session=s, urn="telegram:2", now=naive
        ),
        "inbox": lambda s: store(s, "e1", at=naive),
        "outbox": lambda s: outbox.enqueue(
            session=s,
            idempotency_key="k1",
            urn="telegram:1",
            channel="telegram",
            body={},
            now=naive,
        ),
        "claim": lambda s: outbox.claim_due(session=s, channel="telegram", now=naive),
        "run": lambda s: start(s, me, expires_at=naive),
        "audit": lambda s: audit.record(session=s, action="naive", now=naive),
    }
    for where, attempt in attempts.items():
        with pytest.raises((ValueError, StatementError)):
            in_tx(any_engine, attempt)
            pytest.fail(f"{where}: a naive datetime was accepted")
    with session_scope(any_engine) as session:
        assert contacts.get_contact_by_urn(session=session, urn="telegram:2") is None
        assert inbox.pending_batch(session=session) == []
        assert outbox.count_by_status(session=session) == {}
        assert surveys.active_run(session=session, contact_id=me) is None
        assert audit.entries(session=session) == []


# --- audit ---------------------------------------------------------------------------------------


def test_audit_record_and_entries(any_engine: Engine) -> None:
    """Audit entries are appended and listed oldest first, optionally by action."""
    staff = new_contact(any_engine, "telegram:staff")
    with session_scope(any_engine) as session:
        audit.record(
            session=session,
            action="export",
            now=NOW,
            actor_contact_id=staff,
            subject="city_profile",
            details={"rows": 12, "format": "csv"},
        )
        audit.record(session=session, action="forget", now=NOW + timedelta(minutes=1))
    with session_scope(any_engine) as session:
        audit.record(session=session, action="export", now=NOW + timedelta(minutes=2))
    with session_scope(any_engine) as session:
        everything = audit.entries(session=session)
        assert [e.action for e in everything] == ["export", "forget", "export"]
        first = everything[0]
        assert (first.actor_contact_id, first.subject) == (staff, "city_profile")
        assert first.details == {"rows": 12, "format": "csv"}
        assert first.at == NOW
        assert everything[1].details == {} and everything[1].actor_contact_id is None
        exports = audit.entries(session=session, action="export")
        assert [e.at for e in exports] == [NOW, NOW + timedelta(minutes=2)]
        assert audit.entries(session=session, action="nothing") == []


# --- concurrency ---------------------------------------------------------------------------------


def test_concurrent_store_event_same_id_stores_one_row(any_engine: Engine) -> None:
    """Threads storing the same (channel, external_id) at once leave exactly one row."""

    def work(barrier: threading.Barrier) -> int | None:
        """Store the shared event, holding the transaction open a moment."""
        barrier.wait()
        with session_scope(any_engine) as session:
            event_id = store(session, "dup", payload={"thread": threading.get_ident()})
            time.sleep(0.02)
            return event_id

    results = run_threads(4, work)
    assert len([r for r in results if r is not None]) == 1
    with session_scope(any_engine) as session:
        assert len(inbox.pending_batch(session=session)) == 1


def test_concurrent_claims_take_each_message_at_most_once(any_engine: Engine) -> None:
    """Dispatchers claiming at once never share a message, miss none, keep per-URN order."""
    ids = [enqueue(any_engine, f"k{i}") for i in range(12)]
    enqueue(any_engine, "wa", channel="whatsapp")
    for i in range(3):  # follow-ups wait for the URN's first message, whoever claims it
        enqueue(any_engine, f"k{i}-next", urn=f"telegram:k{i}")

    def work(barrier: threading.Barrier) -> list[int]:
        """Claim at the shared instant, holding the transaction open a moment."""
        barrier.wait()
        with session_scope(any_engine) as session:
            rows = outbox.claim_due(
                session=session, channel="telegram", now=NOW, limit=5, lease=LEASE
            )
            time.sleep(0.02)
            return [row.id for row in rows if row.id is not None]

    claimed = [message_id for batch in run_threads(4, work) for message_id in batch]
    assert len(claimed) == len(set(claimed))
    assert sorted(claimed) == ids
    for message_id in ids:
        assert read_message(any_engine, message_id).attempts == 1
