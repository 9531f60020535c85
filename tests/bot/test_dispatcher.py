"""The outbox dispatcher: order per person, bounded retries, and what each failure does."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from bot.dispatcher import Dispatcher, Job, SendError, Sent
from storage import contacts, outbox
from storage.db import session_scope


class ScriptedSender:
    """Fails the messages whose text is scripted to fail, records the others."""

    channel = "test"

    def __init__(self, failures: dict[str, list[SendError]]) -> None:
        """`failures` maps a text to the errors its next attempts raise."""
        self.failures = failures
        self.sent: list[tuple[str, str]] = []

    async def send(self, job: Job) -> Sent:
        """Raise the next scripted error for this text, or record it."""
        text = job.body["text"]
        if self.failures.get(text):
            raise self.failures[text].pop(0)
        self.sent.append((job.urn, text))
        return Sent(provider_id=f"p{job.id}")


def queue(engine: Engine, clock: FixedClock, *items: tuple[str, str]) -> None:
    """Queue messages (urn, text) for the test channel, with contacts."""
    with session_scope(engine) as session:
        for index, (urn, text) in enumerate(items):
            contact, _ = contacts.get_or_create_contact(session=session, urn=urn, now=clock.now())
            outbox.enqueue(
                session=session,
                idempotency_key=f"k{urn}{index}",
                urn=urn,
                channel="test",
                body={"text": text},
                now=clock.now(),
                contact_id=contact.id,
            )


def run(dispatcher: Dispatcher) -> int:
    """Drain once."""
    return asyncio.run(dispatcher.drain("test"))


def statuses(engine: Engine, urn: str) -> list[tuple[str, str, str | None]]:
    """(text, status, error code) of a URN's messages."""
    with session_scope(engine) as session:
        return [
            (m.body["text"], m.status, m.error_code)
            for m in outbox.messages_for(session=session, urn=urn)
        ]


def test_a_retry_holds_back_that_persons_later_messages_only(
    engine: Engine, clock: FixedClock
) -> None:
    """A 429 for one chat delays that chat (in order) and nobody else."""
    sender = ScriptedSender(
        {"a1": [SendError("retry", "429", "Too Many Requests", retry_after=30)]}
    )
    dispatcher = Dispatcher(engine, {"test": sender}, clock)
    queue(engine, clock, ("test:a", "a1"), ("test:a", "a2"), ("test:b", "b1"), ("test:b", "b2"))
    while run(dispatcher):
        pass
    assert sender.sent == [("test:b", "b1"), ("test:b", "b2")]
    clock.advance(timedelta(seconds=31))
    while run(dispatcher):
        pass
    assert sender.sent[2:] == [("test:a", "a1"), ("test:a", "a2")]


def test_retries_are_bounded_then_failed_with_the_reason(
    engine: Engine, clock: FixedClock
) -> None:
    """A message that keeps failing ends failed with the last reason; it is not retried forever."""
    errors = [SendError("retry", "502", "Bad Gateway") for _ in range(10)]
    dispatcher = Dispatcher(engine, {"test": ScriptedSender({"x": errors})}, clock, max_attempts=4)
    queue(engine, clock, ("test:x", "x"))
    for _ in range(10):
        run(dispatcher)
        clock.advance(timedelta(minutes=10))
    assert statuses(engine, "test:x") == [("x", "failed", "502")]
    assert len(errors) == 6  # four attempts were made


@pytest.mark.parametrize(
    ("kind", "status", "flag"),
    [
        ("blocked", "failed", "unreachable"),
        ("opted_out", "failed", "opted_out"),
        ("needs_template", "needs_template", None),
        ("fatal", "failed", None),
    ],
)
def test_terminal_failures(
    engine: Engine, clock: FixedClock, kind: str, status: str, flag: str | None
) -> None:
    """Blocked marks the contact unreachable, opted-out opts out, needs_template is held."""
    dispatcher = Dispatcher(
        engine, {"test": ScriptedSender({"m": [SendError(kind, "e1", "why")]})}, clock
    )
    queue(engine, clock, ("test:m", "m"))
    run(dispatcher)
    assert statuses(engine, "test:m") == [("m", status, "e1")]
    with session_scope(engine) as session:
        contact = contacts.get_contact_by_urn(session=session, urn="test:m")
        assert contact is not None
        assert contact.unreachable == (flag == "unreachable")
        assert contact.opted_out == (flag == "opted_out")


def test_a_crashed_dispatchers_lease_runs_out(engine: Engine, clock: FixedClock) -> None:
    """A message leased by a dispatcher that died is sent by another after the lease."""
    queue(engine, clock, ("test:l", "l"))
    with session_scope(engine) as session:
        assert len(outbox.claim_due(session=session, channel="test", now=clock.now())) == 1
    sender = ScriptedSender({})
    dispatcher = Dispatcher(engine, {"test": sender}, clock)
    assert run(dispatcher) == 0
    clock.advance(timedelta(minutes=3))
    assert run(dispatcher) == 1 and sender.sent == [("test:l", "l")]
