"""Broadcasts: audiences evaluated in SQL, recipients materialised, outbox rows queued in batches.

An `Audience` is ANDed across its fields and ORed within each. Recipients are written with one
`INSERT … SELECT` (per chunk of an id filter) that also settles each contact's preferred
channel address, the language of the text they get and, for the opted-out, unreachable or
unaddressable, why they are excluded. Queueing writes outbox rows keyed
`bc:<broadcast>:<contact>` (`…:r<n>` for the n-th retry) in batches, each batch in the caller's
transaction together with the recipients' outbox ids, so a crash resumes without duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, String, bindparam, case, literal, null
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select

from storage.models import Contact, ContactURN, OutboxMessage, SurveyResponse
from storage.staff_models import Broadcast, BroadcastRecipient
from storage.types import UTCDateTime

ID_CHUNK = 5000  # contact ids per IN list when an id filter applies
FAILED = ("failed", "undelivered", "needs_template")
WAITING = ("pending", "sending")
STATUSES = ("draft", "scheduled", "sending", "done", "cancelled")


@dataclass(frozen=True, slots=True)
class Audience:
    """Who a broadcast goes to: every field must hold (AND), any value within one (OR).

    `country_groups` holds one tuple of country codes per country-like filter (countries,
    regions); `contact_sets` one set of contact ids per id-like filter (cities, focus areas,
    webinar registrants, open donation requests). An empty group or set matches nobody.
    """

    country_groups: tuple[tuple[str, ...], ...] = ()
    roles: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    contact_sets: tuple[frozenset[int], ...] = ()

    def ids(self) -> frozenset[int] | None:
        """The contacts every id filter allows (None when there is no id filter)."""
        if not self.contact_sets:
            return None
        found = self.contact_sets[0]
        for more in self.contact_sets[1:]:
            found &= more
        return found


@dataclass(frozen=True, slots=True)
class AudienceRow:
    """A group of an audience preview: how many contacts share these properties."""

    channel: str | None
    language: str
    wanted: str | None
    fallback: bool
    excluded: str | None
    in_window: bool
    count: int


@dataclass(slots=True)
class BroadcastStats:
    """Where a broadcast's recipients stand (outbox statuses as stored)."""

    recipients: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    unqueued: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_channel: dict[str, int] = field(default_factory=dict)
    reasons: list[tuple[str, str, str, int]] = field(default_factory=list)

    @property
    def to_send(self) -> int:
        """Recipients not excluded."""
        return self.recipients - sum(self.excluded.values())

    @property
    def waiting(self) -> int:
        """Messages not yet attempted to the end (unqueued, pending or in flight)."""
        return self.unqueued + sum(self.by_status.get(s, 0) for s in WAITING)

    @property
    def processed(self) -> int:
        """Messages with an outcome (sent, delivered, read, failed, cancelled …)."""
        return self.to_send - self.waiting


# -- broadcasts ----------------------------------------------------------------------------------


def create_broadcast(
    *,
    session: Session,
    title: str,
    texts: dict[str, str],
    base_language: str,
    segment: dict[str, Any],
    now: datetime,
    created_by: int | None,
    created_via: str,
    notify_contact_id: int | None = None,
) -> Broadcast:
    """Store a draft broadcast."""
    row = Broadcast(
        title=title[:200],
        texts=dict(texts),
        base_language=base_language,
        segment=dict(segment),
        status="draft",
        created_by=created_by,
        created_via=created_via,
        notify_contact_id=notify_contact_id,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def get_broadcast(
    *, session: Session, broadcast_id: int, for_update: bool = False
) -> Broadcast | None:
    """Return a broadcast, locking its row when `for_update` (PostgreSQL)."""
    stmt = select(Broadcast).where(Broadcast.id == broadcast_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.exec(stmt).first()


def save_broadcast(
    *, session: Session, broadcast: Broadcast, now: datetime, **fields: Any
) -> None:
    """Set fields on a broadcast and write them."""
    for key, value in fields.items():
        if not hasattr(broadcast, key):
            raise AttributeError(f"Broadcast has no field {key}")
        setattr(broadcast, key, value)
    broadcast.updated_at = now
    session.add(broadcast)
    session.flush()


def list_broadcasts(
    *, session: Session, limit: int = 10, statuses: Sequence[str] | None = None
) -> list[Broadcast]:
    """Return the latest broadcasts, newest first."""
    stmt = select(Broadcast).order_by(col(Broadcast.id).desc()).limit(limit)
    if statuses:
        stmt = stmt.where(col(Broadcast.status).in_(list(statuses)))
    return list(session.exec(stmt))


def latest_draft(*, session: Session, created_by: int) -> Broadcast | None:
    """Return the newest draft a contact composed."""
    stmt = (
        select(Broadcast)
        .where(Broadcast.created_by == created_by, Broadcast.status == "draft")
        .order_by(col(Broadcast.id).desc())
    )
    return session.exec(stmt).first()


def due_broadcasts(*, session: Session, now: datetime, limit: int = 10) -> list[Broadcast]:
    """Lock scheduled broadcasts whose time has come (skipping those another process holds)."""
    stmt = (
        select(Broadcast)
        .where(Broadcast.status == "scheduled", col(Broadcast.scheduled_at) <= now)
        .order_by(col(Broadcast.scheduled_at), col(Broadcast.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.exec(stmt))


def sending_broadcasts(*, session: Session, limit: int = 50) -> list[Broadcast]:
    """Return broadcasts being sent (queued or not yet fully)."""
    stmt = (
        select(Broadcast)
        .where(Broadcast.status == "sending")
        .order_by(col(Broadcast.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


# -- audiences -----------------------------------------------------------------------------------


def _preferred(column: str) -> Any:
    """A correlated subquery: a field of the contact's preferred URN (latest inbound first)."""
    urn = aliased(ContactURN)
    return (
        select(getattr(urn, column))
        .where(col(urn.contact_id) == col(Contact.id))
        .order_by(col(urn.last_seen_at).desc().nulls_last(), col(urn.id))
        .limit(1)
        .correlate(Contact)
        .scalar_subquery()
    )


def _columns(
    languages: Sequence[str], base_language: str, window_since: datetime
) -> dict[str, Any]:
    """The per-contact columns of an audience: address, channel, language, exclusion, window."""
    urn, channel = _preferred("urn"), _preferred("channel")
    known = col(Contact.language).in_(list(languages))
    return {
        "contact_id": col(Contact.id),
        "urn": urn,
        "channel": channel,
        "language": case((known, col(Contact.language)), else_=literal(base_language, String)),
        "wanted": col(Contact.language),
        "fallback": case((known, literal(False, Boolean)), else_=literal(True, Boolean)),
        "excluded": case(
            (col(Contact.opted_out).is_(True), literal("opted_out", String)),
            (col(Contact.unreachable).is_(True), literal("unreachable", String)),
            (urn.is_(None), literal("no_channel", String)),
            else_=null(),
        ),
        "in_window": case(
            (col(Contact.last_inbound_at) >= window_since, literal(True, Boolean)),
            else_=literal(False, Boolean),
        ),
    }


def _conditions(audience: Audience, chunk: Sequence[int] | None) -> list[ColumnElement[bool]]:
    """The WHERE clauses of an audience (and of one chunk of its id filter)."""
    found: list[ColumnElement[bool]] = [col(Contact.erased_at).is_(None)]
    for group in audience.country_groups:
        found.append(col(Contact.country_code).in_(list(group)))
    if audience.roles:
        found.append(col(Contact.role).in_(list(audience.roles)))
    if audience.languages:
        found.append(col(Contact.language).in_(list(audience.languages)))
    if audience.channels:
        found.append(_preferred("channel").in_(list(audience.channels)))
    if chunk is not None:
        found.append(col(Contact.id).in_(list(chunk)))
    return found


def _chunks(audience: Audience) -> Iterator[Sequence[int] | None]:
    """The id chunks to evaluate an audience in (one None when there is no id filter)."""
    ids = audience.ids()
    if ids is None:
        yield None
        return
    ordered = sorted(ids)
    for start in range(0, len(ordered), ID_CHUNK):
        yield ordered[start : start + ID_CHUNK]


def preview(
    *,
    session: Session,
    audience: Audience,
    languages: Sequence[str],
    base_language: str,
    now: datetime,
    window: timedelta = timedelta(hours=24),
) -> list[AudienceRow]:
    """Count an audience by channel, language (and fallback), exclusion and WhatsApp window."""
    columns = _columns(languages, base_language, now - window)
    totals: dict[tuple[Any, ...], int] = {}
    names = ("channel", "language", "wanted", "fallback", "excluded", "in_window")
    for chunk in _chunks(audience):
        inner = (
            sa_select(*(columns[n].label(n) for n in names))
            .select_from(Contact)
            .where(*_conditions(audience, chunk))
            .subquery()
        )
        stmt = sa_select(*(inner.c[n] for n in names), func.count()).group_by(
            *(inner.c[n] for n in names)
        )
        for row in session.execute(stmt):
            key = (row[0], row[1], row[2], bool(row[3]), row[4], bool(row[5]))
            totals[key] = totals.get(key, 0) + int(row[6])
    return [
        AudienceRow(
            channel=k[0],
            language=k[1],
            wanted=k[2],
            fallback=k[3],
            excluded=k[4],
            in_window=k[5],
            count=n,
        )
        for k, n in sorted(totals.items(), key=_sort_key)
    ]


def _sort_key(item: tuple[tuple[Any, ...], int]) -> tuple[str, ...]:
    """Order preview rows by channel, language, exclusion."""
    key = item[0]
    return tuple(str(k if k is not None else "") for k in key)


def _insert(session: Session) -> Any:
    """The dialect's INSERT for `broadcast_recipient`."""
    builder = (
        postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )
    return builder(BroadcastRecipient.__table__)  # type: ignore[attr-defined]


def materialise(
    *,
    session: Session,
    broadcast: Broadcast,
    audience: Audience,
    now: datetime,
) -> tuple[int, int]:
    """Write the broadcast's recipients (idempotent); return (recipients, excluded)."""
    assert broadcast.id is not None
    columns = _columns(list(broadcast.texts), broadcast.base_language, now)
    names = ("contact_id", "urn", "channel", "language", "fallback", "excluded")
    for chunk in _chunks(audience):
        chosen = (
            sa_select(
                literal(broadcast.id).label("broadcast_id"),
                *(columns[n].label(n) for n in names),
                literal(0).label("attempt"),
                literal(now, UTCDateTime).label("created_at"),
            )
            .select_from(Contact)
            .where(*_conditions(audience, chunk))
            .order_by(col(Contact.id))
        )
        stmt = (
            _insert(session)
            .from_select(["broadcast_id", *names, "attempt", "created_at"], chosen)
            .on_conflict_do_nothing()
        )
        session.execute(stmt)
    total, excluded = session.execute(
        select(func.count(), func.count(col(BroadcastRecipient.excluded))).where(
            BroadcastRecipient.broadcast_id == broadcast.id
        )
    ).one()
    save_broadcast(
        session=session,
        broadcast=broadcast,
        now=now,
        recipients=int(total),
        excluded=int(excluded),
    )
    return int(total), int(excluded)


def focus_contact_ids(
    *, session: Session, survey_id: str, question: str, values: Iterable[str]
) -> frozenset[int]:
    """Contacts whose latest response to a survey chose any of `values` for `question`."""
    wanted = set(values)
    latest: dict[int, Any] = {}
    stmt = (
        select(SurveyResponse.contact_id, SurveyResponse.answers)
        .where(SurveyResponse.survey_id == survey_id, col(SurveyResponse.contact_id).is_not(None))
        .order_by(col(SurveyResponse.submitted_at), col(SurveyResponse.id))
    )
    for contact_id, answers in session.exec(stmt):
        latest[int(contact_id or 0)] = (answers or {}).get(question)
    found = set()
    for contact_id, answer in latest.items():
        chosen = answer if isinstance(answer, list) else [answer]
        if wanted.intersection(str(a) for a in chosen if a is not None):
            found.add(contact_id)
    return frozenset(found)


def city_contact_ids(
    *, session: Session, names: Iterable[str], key: Callable[[str], str]
) -> frozenset[int]:
    """Contacts whose city name, compared by `key` (a normaliser), is one of `names`."""
    wanted = {key(n) for n in names}
    stmt = select(Contact.id, Contact.city_name).where(
        col(Contact.city_name).is_not(None), col(Contact.erased_at).is_(None)
    )
    return frozenset(int(i or 0) for i, name in session.exec(stmt) if key(name or "") in wanted)


# -- queueing ------------------------------------------------------------------------------------


def _outbox_insert(session: Session) -> Any:
    """INSERT … ON CONFLICT DO NOTHING into the outbox (executemany-friendly, no RETURNING)."""
    builder = (
        postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )
    return builder(OutboxMessage.__table__).on_conflict_do_nothing()  # type: ignore[attr-defined]


def message_key(broadcast_id: int, contact_id: int, attempt: int = 0) -> str:
    """The outbox idempotency key of a recipient's message (its n-th retry for attempt n)."""
    base = f"bc:{broadcast_id}:{contact_id}"
    return base if attempt == 0 else f"{base}:r{attempt}"


def _queued_per_channel(session: Session, broadcast_id: int) -> dict[str, int]:
    """How many recipients of a broadcast were queued so far, per channel."""
    stmt = (
        select(BroadcastRecipient.channel, func.count())
        .where(
            BroadcastRecipient.broadcast_id == broadcast_id,
            col(BroadcastRecipient.queued_at).is_not(None),
        )
        .group_by(BroadcastRecipient.channel)
    )
    return {str(c): int(n) for c, n in session.exec(stmt)}


def _write_batch(
    session: Session,
    rows: list[dict[str, Any]],
    recipients: list[tuple[int, str, str | None, str | None, int]],
    now: datetime,
) -> int:
    """Insert outbox rows (ignoring keys already there) and link each recipient to its row."""
    if not rows:
        return 0
    session.execute(_outbox_insert(session), rows)
    keys = [r["idempotency_key"] for r in rows]
    ids: dict[str, int] = {
        str(key): int(message_id)
        for key, message_id in session.execute(
            sa_select(col(OutboxMessage.idempotency_key), col(OutboxMessage.id)).where(
                col(OutboxMessage.idempotency_key).in_(keys)
            )
        )
    }
    table = BroadcastRecipient.__table__  # type: ignore[attr-defined]
    session.execute(
        sa_update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            outbox_id=bindparam("b_outbox"),
            attempt=bindparam("b_attempt"),
            urn=bindparam("b_urn"),
            channel=bindparam("b_channel"),
            queued_at=now,
        ),
        [
            {
                "b_id": rid,
                "b_outbox": ids[key],
                "b_attempt": attempt,
                "b_urn": urn,
                "b_channel": channel,
            }
            for (rid, key, urn, channel, attempt) in recipients
        ],
    )
    return len(rows)


def _outbox_row(
    *,
    key: str,
    recipient: BroadcastRecipient,
    urn: str,
    channel: str,
    body: dict[str, Any],
    now: datetime,
    at: datetime,
) -> dict[str, Any]:
    """The values of one broadcast outbox row."""
    return {
        "idempotency_key": key,
        "urn": urn,
        "channel": channel,
        "body": body,
        "contact_id": recipient.contact_id,
        "kind": "broadcast",
        "language": recipient.language,
        "status": "pending",
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        "next_attempt_at": at,
    }


def queue_batch(
    *,
    session: Session,
    broadcast: Broadcast,
    bodies: dict[str, dict[str, Any]],
    now: datetime,
    rates: dict[str, float] | None = None,
    limit: int = 500,
    lead: float = 2.0,
) -> int:
    """Queue the next batch of unqueued recipients; return how many (0 when all are queued).

    With `rates` (messages a second per channel) each channel's messages are spread from the
    start of the sending at that rate (the first `lead` seconds' worth due at once, so the
    sender never waits for the next one to fall due), and people chatting with the bot
    meanwhile are not kept waiting behind the whole broadcast. The senders still enforce the
    limits themselves.
    """
    assert broadcast.id is not None
    stmt = (
        select(BroadcastRecipient)
        .where(
            BroadcastRecipient.broadcast_id == broadcast.id,
            col(BroadcastRecipient.excluded).is_(None),
            col(BroadcastRecipient.outbox_id).is_(None),
        )
        .order_by(col(BroadcastRecipient.id))
        .limit(limit)
    )
    batch = list(session.exec(stmt))
    if not batch:
        return 0
    done = _queued_per_channel(session, broadcast.id) if rates else {}
    start = broadcast.started_at or now
    rows: list[dict[str, Any]] = []
    links: list[tuple[int, str, str | None, str | None, int]] = []
    for recipient in batch:
        channel, urn = recipient.channel or "", recipient.urn or ""
        rate = (rates or {}).get(channel, 0.0)
        at = now
        if rate > 0:
            index = done.get(channel, 0)
            done[channel] = index + 1
            at = max(now, start + timedelta(seconds=max(0.0, index - lead * rate) / rate))
        key = message_key(broadcast.id, recipient.contact_id)
        body = bodies.get(recipient.language) or bodies[broadcast.base_language]
        rows.append(
            _outbox_row(
                key=key, recipient=recipient, urn=urn, channel=channel, body=body, now=now, at=at
            )
        )
        links.append((recipient.id or 0, key, recipient.urn, recipient.channel, 0))
    return _write_batch(session, rows, links, now)


def retry_failed(
    *,
    session: Session,
    broadcast: Broadcast,
    bodies: dict[str, dict[str, Any]],
    now: datetime,
    rates: dict[str, float] | None = None,
) -> tuple[int, dict[str, int]]:
    """Queue again the recipients whose message failed; return (queued, skipped by reason).

    Contacts opted out, unreachable or without an address since are skipped. Each retry gets
    its own key (`…:r<n>`), so retrying twice at once still queues one message.
    """
    assert broadcast.id is not None
    stmt = (
        select(BroadcastRecipient, Contact)
        .join(OutboxMessage, col(OutboxMessage.id) == col(BroadcastRecipient.outbox_id))
        .join(Contact, col(Contact.id) == col(BroadcastRecipient.contact_id))
        .where(
            BroadcastRecipient.broadcast_id == broadcast.id,
            col(OutboxMessage.status).in_(FAILED),
        )
        .order_by(col(BroadcastRecipient.id))
    )
    rows: list[dict[str, Any]] = []
    links: list[tuple[int, str, str | None, str | None, int]] = []
    skipped: dict[str, int] = {}
    counts: dict[str, int] = {}
    urn_of = _preferred("urn")
    for recipient, contact in session.exec(stmt).all():
        reason = None
        if contact.opted_out:
            reason = "opted_out"
        elif contact.unreachable:
            reason = "unreachable"
        urn = session.execute(select(urn_of).where(col(Contact.id) == contact.id)).scalar()
        if reason is None and urn is None:
            reason = "no_channel"
        if reason is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        assert isinstance(urn, str)
        channel = urn.partition(":")[0]
        attempt = recipient.attempt + 1
        key = message_key(broadcast.id, recipient.contact_id, attempt)
        rate = (rates or {}).get(channel, 0.0)
        index = counts.get(channel, 0)
        counts[channel] = index + 1
        at = now + timedelta(seconds=index / rate) if rate > 0 else now
        body = bodies.get(recipient.language) or bodies[broadcast.base_language]
        rows.append(
            _outbox_row(
                key=key, recipient=recipient, urn=urn, channel=channel, body=body, now=now, at=at
            )
        )
        links.append((recipient.id or 0, key, urn, channel, attempt))
    queued = 0
    for start in range(0, len(rows), 500):
        queued += _write_batch(session, rows[start : start + 500], links[start : start + 500], now)
    return queued, skipped


def cancel_pending(*, session: Session, broadcast_id: int, now: datetime) -> int:
    """Cancel a broadcast's messages not yet handed to a sender; return how many."""
    queued = select(BroadcastRecipient.outbox_id).where(
        BroadcastRecipient.broadcast_id == broadcast_id,
        col(BroadcastRecipient.outbox_id).is_not(None),
    )
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    result = session.execute(
        sa_update(table)
        .where(table.c.id.in_(queued.scalar_subquery()), table.c.status == "pending")
        .values(status="cancelled", updated_at=now, error_code="cancelled")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def release_in_flight(*, session: Session, broadcast_id: int, channel: str, now: datetime) -> int:
    """Make a broadcast's leased (`sending`) messages on a channel due again; return how many.

    Only for a channel this process alone drains (the CLI's console delivery): the messages
    were in flight when a previous run stopped, so each may have been sent once already.
    """
    queued = select(BroadcastRecipient.outbox_id).where(
        BroadcastRecipient.broadcast_id == broadcast_id,
        col(BroadcastRecipient.outbox_id).is_not(None),
    )
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    result = session.execute(
        sa_update(table)
        .where(
            table.c.id.in_(queued.scalar_subquery()),
            table.c.status == "sending",
            table.c.channel == channel,
        )
        .values(status="pending", next_attempt_at=now, updated_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# -- stats ---------------------------------------------------------------------------------------


def stats(*, session: Session, broadcast_id: int) -> BroadcastStats:
    """Count a broadcast's recipients by exclusion, outbox status, channel and failure reason."""
    found = BroadcastStats()
    r = BroadcastRecipient
    for excluded, queued, n in session.execute(
        select(r.excluded, col(r.outbox_id).is_not(None), func.count())
        .where(r.broadcast_id == broadcast_id)
        .group_by(r.excluded, col(r.outbox_id).is_not(None))
    ):
        found.recipients += int(n)
        if excluded is not None:
            found.excluded[str(excluded)] = found.excluded.get(str(excluded), 0) + int(n)
        elif not queued:
            found.unqueued += int(n)
    joined = (
        select(OutboxMessage.status, OutboxMessage.channel, func.count())
        .join(r, col(r.outbox_id) == col(OutboxMessage.id))
        .where(r.broadcast_id == broadcast_id)
        .group_by(OutboxMessage.status, OutboxMessage.channel)
    )
    for status, channel, n in session.execute(joined):
        found.by_status[str(status)] = found.by_status.get(str(status), 0) + int(n)
        found.by_channel[str(channel)] = found.by_channel.get(str(channel), 0) + int(n)
    reasons = (
        select(
            OutboxMessage.status,
            func.coalesce(OutboxMessage.error_code, ""),
            func.coalesce(OutboxMessage.error_reason, ""),
            func.count(),
        )
        .join(r, col(r.outbox_id) == col(OutboxMessage.id))
        .where(r.broadcast_id == broadcast_id, col(OutboxMessage.status).in_(FAILED))
        .group_by(
            col(OutboxMessage.status),
            col(OutboxMessage.error_code),
            col(OutboxMessage.error_reason),
        )
        .order_by(func.count().desc())
    )
    found.reasons = [
        (str(s), str(c), str(why), int(n)) for s, c, why, n in session.execute(reasons)
    ]
    return found


def recipients_of(*, session: Session, broadcast_id: int) -> list[BroadcastRecipient]:
    """Return a broadcast's recipients, in order."""
    stmt = (
        select(BroadcastRecipient)
        .where(BroadcastRecipient.broadcast_id == broadcast_id)
        .order_by(col(BroadcastRecipient.id))
    )
    return list(session.exec(stmt))


def is_queued(*, session: Session, broadcast_id: int) -> bool:
    """Say whether every recipient to send to has its outbox row."""
    stmt = select(func.count()).where(
        BroadcastRecipient.broadcast_id == broadcast_id,
        col(BroadcastRecipient.excluded).is_(None),
        col(BroadcastRecipient.outbox_id).is_(None),
    )
    return int(session.exec(stmt).one()) == 0
