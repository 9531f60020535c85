"""Broadcast audiences: evaluated in SQL, previewed by group, materialised as recipients.

An `Audience` is ANDed across its fields and ORed within each. Recipients are written with one
`INSERT … SELECT` (per chunk of an id filter) that also settles each contact's preferred
channel address, the language of the text they get and, for the opted-out, unreachable or
unaddressable, why they are excluded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, String, case, literal, null
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select

from storage.broadcasts_records import save_broadcast
from storage.models import Contact, ContactURN, SurveyResponse
from storage.staff_models import Broadcast, BroadcastRecipient
from storage.types import UTCDateTime

ID_CHUNK = 5000  # contact ids per IN list when an id filter applies


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
