"""Storage contract, outbox: idempotency, claims, leases, per-URN order, provider statuses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from storage import outbox
from storage.db import session_scope
from tests.storage.contract_cases import (
    LEASE,
    NOW,
    callback,
    claim,
    enqueue,
    in_tx,
    new_contact,
    read_message,
    sent_message,
)

pytestmark = pytest.mark.postgres


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
