"""The outbox dispatcher: leases due messages per channel, sends them, records what happened.

Senders (one per channel) raise `SendError` with a kind that decides what happens next:
`retry` (backoff with jitter, up to `max_attempts`), `blocked` (contact unreachable),
`opted_out`, `needs_template`, or `fatal` (failed with the reason).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.clock import Clock
from bot.lanes import Lane
from bot.metrics import Registry, send_latency
from storage import contacts, outbox
from storage.db import session_scope

logger = logging.getLogger(__name__)

# Pauses between attempts to record a send while the database is away: about 63 s in all,
# well inside the lease, so the message is not claimed (and sent) again meanwhile.
RECORD_RETRY_PAUSES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


@dataclass(frozen=True, slots=True)
class Job:
    """A leased outbox message, detached from the database."""

    id: int
    urn: str
    channel: str
    kind: str
    language: str
    body: dict[str, Any]
    attempts: int
    contact_id: int | None
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class Sent:
    """What the platform answered: its message id and our status for it."""

    provider_id: str | None
    status: str = "sent"


class SendError(Exception):
    """A failed send, classified by what to do about it."""

    def __init__(
        self, kind: str, code: str, reason: str, retry_after: float | None = None
    ) -> None:
        """Record the kind (`retry`, `blocked`, `opted_out`, `needs_template`, `fatal`)."""
        super().__init__(f"{kind} {code}: {reason}")
        self.kind = kind
        self.code = code
        self.reason = reason
        self.retry_after = retry_after


class Sender(Protocol):
    """A channel's way out."""

    channel: str

    async def send(self, job: Job) -> Sent:
        """Send one message or raise SendError."""


class Dispatcher:
    """Drains the outbox of each channel through its sender."""

    def __init__(
        self,
        engine: Engine,
        senders: dict[str, Sender],
        clock: Clock,
        *,
        max_attempts: int = 6,
        base_backoff: float = 2.0,
        max_backoff: float = 300.0,
        concurrency: int = 32,
        metrics: Registry | None = None,
        lease: timedelta = timedelta(minutes=2),
    ) -> None:
        """Bind the database, the senders, the retry policy and how many sends run at once.

        `lease` is how long a claimed message stays ours: if this process dies it is sent
        again after that long, so it only needs to exceed the longest send (with its timeout).
        """
        self.lease = lease
        self.metrics = metrics if metrics is not None else Registry()
        self.send_seconds = send_latency(self.metrics)
        self.concurrency = concurrency
        self.engine = engine
        self.senders = senders
        self.clock = clock
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        # its writes wait for the database writer: in a thread of their own they cannot
        # fill the shared pool that the senders and other parts also need
        self.lane = Lane("dispatcher")
        self._outcomes: list[tuple[Job, Sent | SendError, asyncio.Future[None]]] = []
        self._recorder: asyncio.Task[None] | None = None

    def _claim(self, channel: str, limit: int) -> list[Job]:
        """Lease due messages of a channel."""
        with session_scope(self.engine) as session:
            rows = outbox.claim_due(
                session=session,
                channel=channel,
                now=self.clock.now(),
                limit=limit,
                lease=self.lease,
            )
            return [
                Job(
                    r.id or 0,
                    r.urn,
                    r.channel,
                    r.kind,
                    r.language,
                    dict(r.body),
                    r.attempts,
                    r.contact_id,
                    r.idempotency_key,
                )
                for r in rows
            ]

    def backoff(self, attempts: int, retry_after: float | None) -> float:
        """Seconds to wait before the next attempt: the platform's, or exponential with jitter."""
        if retry_after is not None:
            return retry_after
        ceiling = min(self.max_backoff, self.base_backoff * 2 ** max(0, attempts - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security

    def _record(self, job: Job, result: Sent | SendError) -> None:
        """Write the outcome of one send."""
        self._record_all([(job, result)])

    def _record_all(self, outcomes: list[tuple[Job, Sent | SendError]]) -> None:
        """Write the outcomes of several sends in one transaction."""
        now = self.clock.now()
        with session_scope(self.engine) as session:
            for job, result in outcomes:
                self._write_outcome(session, job, result, now)

    def _write_outcome(
        self, session: Session, job: Job, result: Sent | SendError, now: datetime
    ) -> None:
        """Mark one message sent, due again, failed or held, and its contact if it must be."""
        if isinstance(result, Sent):
            outbox.mark_sent(
                session=session,
                message_id=job.id,
                now=now,
                provider_id=result.provider_id,
                status=result.status,
            )
            return
        err = result
        if err.kind == "retry" and job.attempts < self.max_attempts:
            at = now + timedelta(seconds=self.backoff(job.attempts, err.retry_after))
            outbox.mark_retry(
                session=session,
                message_id=job.id,
                now=now,
                at=at,
                code=err.code,
                reason=err.reason,
            )
            return
        status = "needs_template" if err.kind == "needs_template" else "failed"
        outbox.mark_failed(
            session=session,
            message_id=job.id,
            now=now,
            code=err.code,
            reason=err.reason,
            status=status,
        )
        if err.kind in ("blocked", "opted_out") and job.contact_id is not None:
            contact = contacts.get_contact(session=session, contact_id=job.contact_id)
            if contact is not None:
                flag = {"unreachable": True} if err.kind == "blocked" else {"opted_out": True}
                contacts.update_contact(session=session, contact=contact, **flag)
        logger.info(
            "send %s message=%s code=%s attempts=%d",
            result.kind,
            job.id,
            result.code,
            job.attempts,
        )

    async def _send_one(self, sender: Sender, job: Job, gate: asyncio.Semaphore) -> None:
        """Send one job and record the outcome."""
        async with gate:
            began = time.perf_counter()
            try:
                result: Sent | SendError = await sender.send(job)
            except SendError as err:
                result = err
            except Exception as exc:  # a bug or an unclassified failure: retry, bounded
                logger.exception("sender crashed message=%s", job.id)
                result = SendError("retry", "exception", type(exc).__name__)
            self.send_seconds.observe(time.perf_counter() - began, job.channel)
        await self._record_surely(job, result)

    async def _record_surely(self, job: Job, result: Sent | SendError) -> None:
        """Record a send's outcome with those that finish meanwhile (one transaction for all).

        Sends finish one by one; writing each outcome on its own made every send wait for
        the database writer. Outcomes that arrive while a write is under way are written
        together by the next one, as the inbox writer does with inbound messages.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outcomes.append((job, result, done))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_waiting())
        await done

    async def _record_waiting(self) -> None:
        """Write waiting outcomes in batches until none is left."""
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            outcomes = [(job, result) for job, result, _ in batch]
            try:
                await self.lane.run(self._record_all, outcomes)
                errors: list[BaseException | None] = [None] * len(batch)
            except Exception:
                # one outcome the database refuses, or an outage: each retried on its own
                errors = await asyncio.gather(
                    *(self._record_one_surely(job, result) for job, result in outcomes),
                    return_exceptions=True,
                )
            for (_, _, done), error in zip(batch, errors, strict=True):
                if done.done():
                    continue
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)

    async def _record_one_surely(self, job: Job, result: Sent | SendError) -> None:
        """Record one outcome, waiting out a database outage (up to about a minute).

        A send the platform took but we could not record would stay leased and go out again
        when the lease ends; so keep trying, within the lease, then one last time.
        """
        for pause in RECORD_RETRY_PAUSES:
            try:
                await self.lane.run(self._record, job, result)
                return
            except SQLAlchemyError:
                logger.warning("recording message=%s failed; retrying in %.1f s", job.id, pause)
                await asyncio.sleep(pause)
        await self.lane.run(self._record, job, result)

    async def drain(self, channel: str, *, limit: int = 100) -> int:
        """Send one batch of due messages of a channel (one per person, concurrently).

        Return how many were attempted. Rate limits are the sender's: it waits for its turn.
        """
        sender = self.senders[channel]
        jobs = await self.lane.run(self._claim, channel, limit)
        gate = asyncio.Semaphore(self.concurrency)
        await asyncio.gather(*(self._send_one(sender, job, gate) for job in jobs))
        return len(jobs)
