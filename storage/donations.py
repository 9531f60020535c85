"""Donation requests, pledges, matches and shipments: state machines and consistent quantities.

Every status change goes through an explicit transition table; a forbidden one raises
`DonationError` (a UI string key and its values) before anything is written. Quantities per
request line hold, after every operation (a property test checks it):

    0 ≤ delivered ≤ shipped ≤ pledged ≤ requested

where pledged is the sum of the line's confirmed matches (a pledge never covers more than was
asked: the rest of it stays available for other lines), shipped the sum of its quantities in
shipments not cancelled, and delivered what arrived. Pledge lines hold shipped ≤ matched ≤
quantity the same way. Each operation runs in a savepoint, so an error leaves nothing behind.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, distinct, exists, func, literal
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, delete, select

from storage.donations_models import (
    DonationDonor,
    DonationMatch,
    DonationNote,
    DonationPledge,
    DonationPledgeLine,
    DonationRequest,
    DonationRequestLine,
    DonationShipment,
    DonationShipmentEvent,
    DonationShipmentLine,
)
from storage.models import Contact, SurveyResponse


class DonationError(Exception):
    """A refused operation: `key` is a UI string (handlers/strings.yaml), `values` fill it."""

    def __init__(self, key: str, **values: Any) -> None:
        """Keep the key and its values."""
        super().__init__(key)
        self.key = key
        self.values = values


class RequestStatus(StrEnum):
    """Where a request stands in its workflow."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    INFO_REQUESTED = "info_requested"
    APPROVED = "approved"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class PledgeStatus(StrEnum):
    """Where a pledge stands."""

    OFFERED = "offered"
    ACCEPTED = "accepted"
    FULFILLED = "fulfilled"
    WITHDRAWN = "withdrawn"


class MatchStatus(StrEnum):
    """A proposed or decided link between a pledge line and a request line."""

    PROPOSED = "proposed"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    RELEASED = "released"


class ShipmentStatus(StrEnum):
    """Where a shipment stands; each status is reached once at most."""

    PREPARING = "preparing"
    DISPATCHED = "dispatched"
    IN_TRANSIT = "in_transit"
    CUSTOMS = "customs"
    ARRIVED = "arrived"
    HANDED_OVER = "handed_over"
    CANCELLED = "cancelled"


R, P, M, S = RequestStatus, PledgeStatus, MatchStatus, ShipmentStatus

REQUEST_TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    R.DRAFT: frozenset({R.SUBMITTED, R.CANCELLED}),
    R.SUBMITTED: frozenset({R.APPROVED, R.DECLINED, R.INFO_REQUESTED, R.CANCELLED}),
    R.INFO_REQUESTED: frozenset({R.SUBMITTED, R.APPROVED, R.DECLINED, R.CANCELLED}),
    R.APPROVED: frozenset({R.COMPLETED, R.CANCELLED}),
    R.DECLINED: frozenset(),
    R.CANCELLED: frozenset(),
    R.COMPLETED: frozenset(),
}
PLEDGE_TRANSITIONS: dict[PledgeStatus, frozenset[PledgeStatus]] = {
    P.OFFERED: frozenset({P.ACCEPTED, P.WITHDRAWN}),
    P.ACCEPTED: frozenset({P.FULFILLED, P.WITHDRAWN}),
    P.FULFILLED: frozenset(),
    P.WITHDRAWN: frozenset(),
}
MATCH_TRANSITIONS: dict[MatchStatus, frozenset[MatchStatus]] = {
    M.PROPOSED: frozenset({M.CONFIRMED, M.REJECTED}),
    M.CONFIRMED: frozenset({M.RELEASED}),
    M.REJECTED: frozenset(),
    M.RELEASED: frozenset(),
}
SHIPMENT_TRANSITIONS: dict[ShipmentStatus, frozenset[ShipmentStatus]] = {
    S.PREPARING: frozenset({S.DISPATCHED, S.CANCELLED}),
    S.DISPATCHED: frozenset({S.IN_TRANSIT, S.CUSTOMS, S.ARRIVED, S.CANCELLED}),
    S.IN_TRANSIT: frozenset({S.CUSTOMS, S.ARRIVED, S.CANCELLED}),
    S.CUSTOMS: frozenset({S.ARRIVED, S.CANCELLED}),
    S.ARRIVED: frozenset({S.HANDED_OVER}),
    S.HANDED_OVER: frozenset(),
    S.CANCELLED: frozenset(),
}

OPEN_REQUEST = frozenset({R.SUBMITTED, R.INFO_REQUESTED, R.APPROVED})
CLOSED_REQUEST = frozenset({R.DECLINED, R.CANCELLED, R.COMPLETED})
EDITABLE_REQUEST = frozenset({R.DRAFT, R.SUBMITTED, R.INFO_REQUESTED})
OPEN_PLEDGE = frozenset({P.OFFERED, P.ACCEPTED})
DELIVERED = frozenset({S.ARRIVED, S.HANDED_OVER})
UNDER_WAY = frozenset({S.PREPARING, S.DISPATCHED, S.IN_TRANSIT, S.CUSTOMS})
URGENCIES = ("critical", "high", "medium", "low")

# -- references ---------------------------------------------------------------------------------

_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: nothing to mistake
_BASE = len(_ALPHABET)
_SCRAMBLE = {"R": (7_368_787, 3_511), "P": (5_112_373, 77_017), "S": (6_324_521, 401_221)}
_REF = re.compile(r"^\s*([RPS])[\s\-_.#]*([2-9A-HJ-KM-NP-Z]{4,6})\s*$", re.IGNORECASE)


def make_ref(prefix: str, number: int) -> str:
    """Return the short reference of row `number` (R-7K3F): unique, scrambled, 4+ symbols."""
    multiplier, offset = _SCRAMBLE[prefix]
    width = 4
    while number >= _BASE**width:
        width += 1
    space = _BASE**width
    value = (number * multiplier + offset) % space
    symbols = []
    for _ in range(width):
        value, digit = divmod(value, _BASE)
        symbols.append(_ALPHABET[digit])
    return f"{prefix}-{''.join(reversed(symbols))}"


def parse_ref(text: str) -> str | None:
    """Read a typed reference (`r7k3f`, `R 7K3F`, `R-7K3F`) into its canonical form, or None."""
    match = _REF.match(text)
    if match is None:
        return None
    return f"{match.group(1).upper()}-{match.group(2).upper()}"


# -- plumbing -----------------------------------------------------------------------------------


def _models(*models: type[Any]) -> tuple[Any, ...]:
    """Table models as untyped handles, for core SQL expressions mypy cannot follow."""
    return models


@contextmanager
def _atomic(session: Session) -> Iterator[None]:
    """Run an operation in a savepoint: an error undoes every write it made."""
    with session.begin_nested():
        yield
    session.flush()


def _check(
    kind: str, ref: str | None, table: Mapping[Any, frozenset[Any]], now: Any, to: Any
) -> None:
    """Refuse a transition the table does not allow."""
    if to not in table.get(now, frozenset()):
        raise DonationError(
            "don_err_transition", kind=kind, ref=ref or "?", current=str(now), target=str(to)
        )


def _positive(quantity: int) -> int:
    """Refuse quantities below one."""
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise DonationError("don_err_quantity")
    return quantity


def _locked(session: Session, model: type[Any], row_id: int) -> Any:
    """Read a row again, locked for update on PostgreSQL (SQLite has one writer anyway)."""
    session.flush()
    row = session.get(model, row_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise DonationError("don_err_not_found", ref=str(row_id))
    return row


@dataclass(frozen=True, slots=True)
class LineInput:
    """An item and a quantity for a new request or pledge line."""

    item_id: str
    item_group: str
    quantity: int
    description: str | None = None


# -- requests -----------------------------------------------------------------------------------


def create_request(
    *,
    session: Session,
    now: datetime,
    lines: Sequence[LineInput],
    contact_id: int | None = None,
    status: RequestStatus = R.DRAFT,
    source: str = "chat",
    city_name: str | None = None,
    city_geonameid: int | None = None,
    country_code: str | None = None,
    institution: str | None = None,
    delivery_address: str | None = None,
    urgency: str = "medium",
    needed_by: date | None = None,
    purpose: str | None = None,
    language: str = "en",
    survey_response_id: int | None = None,
    checks: dict[str, Any] | None = None,
) -> DonationRequest:
    """Store a request (draft or submitted) with its lines and give it its reference."""
    if status not in (R.DRAFT, R.SUBMITTED):
        raise DonationError(
            "don_err_transition", kind="request", ref="-", current="-", target=status
        )
    if not lines:
        raise DonationError("don_err_no_lines")
    if urgency not in URGENCIES:
        raise DonationError("don_err_urgency", urgency=urgency)
    for line in lines:
        _positive(line.quantity)
    with _atomic(session):
        request = DonationRequest(
            contact_id=contact_id,
            status=status,
            source=source,
            city_name=city_name,
            city_geonameid=city_geonameid,
            country_code=country_code,
            institution=institution,
            delivery_address=delivery_address,
            urgency=urgency,
            needed_by=needed_by,
            purpose=purpose,
            language=language,
            survey_response_id=survey_response_id,
            checks=checks or {},
            created_at=now,
            submitted_at=now if status == R.SUBMITTED else None,
            updated_at=now,
        )
        session.add(request)
        session.flush()
        assert request.id is not None
        request.ref = make_ref("R", request.id)
        for line in lines:
            session.add(
                DonationRequestLine(
                    request_id=request.id,
                    item_id=line.item_id,
                    item_group=line.item_group,
                    description=line.description,
                    quantity=line.quantity,
                )
            )
    return request


def get_request(*, session: Session, request_id: int) -> DonationRequest | None:
    """Return a request by id."""
    return session.get(DonationRequest, request_id)


def request_by_ref(*, session: Session, ref: str) -> DonationRequest | None:
    """Return the request a typed reference names."""
    canonical = parse_ref(ref)
    if canonical is None or not canonical.startswith("R-"):
        return None
    return session.exec(select(DonationRequest).where(DonationRequest.ref == canonical)).first()


def request_lines(*, session: Session, request_id: int) -> list[DonationRequestLine]:
    """Return a request's lines in the order they were given."""
    stmt = (
        select(DonationRequestLine)
        .where(DonationRequestLine.request_id == request_id)
        .order_by(col(DonationRequestLine.id))
    )
    return list(session.exec(stmt))


def get_request_line(*, session: Session, line_id: int) -> DonationRequestLine | None:
    """Return a request line by id."""
    return session.get(DonationRequestLine, line_id)


def requests_of_contact(
    *, session: Session, contact_id: int, limit: int = 10
) -> list[DonationRequest]:
    """Return a contact's requests (drafts left out), newest first."""
    stmt = (
        select(DonationRequest)
        .where(DonationRequest.contact_id == contact_id, DonationRequest.status != R.DRAFT)
        .order_by(col(DonationRequest.id).desc())
        .limit(limit)
    )
    return list(session.exec(stmt))


def requests_by_status(
    *, session: Session, statuses: Sequence[str], limit: int = 20
) -> list[DonationRequest]:
    """Return requests in some statuses, oldest first (a review queue)."""
    stmt = (
        select(DonationRequest)
        .where(col(DonationRequest.status).in_(list(statuses)))
        .order_by(col(DonationRequest.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


def latest_draft(*, session: Session, contact_id: int) -> DonationRequest | None:
    """Return the contact's newest draft request (one being checked), if any."""
    stmt = (
        select(DonationRequest)
        .where(DonationRequest.contact_id == contact_id, DonationRequest.status == R.DRAFT)
        .order_by(col(DonationRequest.id).desc())
    )
    return session.exec(stmt).first()


def open_requests_for_city(
    *,
    session: Session,
    country_code: str | None,
    city_name: str | None,
    city_geonameid: int | None,
    groups: Sequence[str],
    exclude_id: int | None = None,
) -> list[DonationRequest]:
    """Return open requests of the same city asking for any of these item groups."""
    same_city: Any
    if city_geonameid is not None:
        same_city = col(DonationRequest.city_geonameid) == city_geonameid
    elif city_name and country_code:
        same_city = and_(
            col(DonationRequest.country_code) == country_code,
            func.lower(col(DonationRequest.city_name)) == city_name.lower(),
        )
    else:
        return []
    overlapping = exists().where(
        col(DonationRequestLine.request_id) == col(DonationRequest.id),
        col(DonationRequestLine.item_group).in_(list(groups)),
    )
    stmt = (
        select(DonationRequest)
        .where(same_city, col(DonationRequest.status).in_(list(OPEN_REQUEST)), overlapping)
        .order_by(col(DonationRequest.id))
    )
    if exclude_id is not None:
        stmt = stmt.where(DonationRequest.id != exclude_id)
    return list(session.exec(stmt))


def update_request(
    *, session: Session, request: DonationRequest, now: datetime, **fields: Any
) -> None:
    """Change descriptive fields of a request (not its status: see set_request_status)."""
    allowed = {"institution", "delivery_address", "urgency", "needed_by", "purpose", "checks"}
    unknown = set(fields) - allowed
    if unknown:
        raise AttributeError(f"not editable: {sorted(unknown)}")
    if "urgency" in fields and fields["urgency"] not in URGENCIES:
        raise DonationError("don_err_urgency", urgency=fields["urgency"])
    for key, value in fields.items():
        setattr(request, key, value)
    request.updated_at = now
    session.add(request)
    session.flush()


def set_line_quantity(
    *, session: Session, line: DonationRequestLine, quantity: int, now: datetime
) -> None:
    """Correct a line's requested quantity while its request is still being reviewed."""
    _positive(quantity)
    request = session.get(DonationRequest, line.request_id)
    assert request is not None
    if request.status not in EDITABLE_REQUEST:
        raise DonationError("don_err_not_editable", ref=request.ref or "?")
    with _atomic(session):
        locked: DonationRequestLine = _locked(session, DonationRequestLine, line.id or 0)
        if quantity < locked.quantity_pledged:
            raise DonationError("don_err_below_pledged", pledged=locked.quantity_pledged)
        locked.quantity = quantity
        request.updated_at = now
        session.add_all([locked, request])


def set_request_status(
    *,
    session: Session,
    request: DonationRequest,
    status: RequestStatus,
    now: datetime,
    reason: str | None = None,
) -> DonationRequest:
    """Move a request along its workflow (see REQUEST_TRANSITIONS); guards say why not."""
    current = RequestStatus(request.status)
    _check("request", request.ref, REQUEST_TRANSITIONS, current, status)
    lines = request_lines(session=session, request_id=request.id or 0)
    if status == R.CANCELLED and any(line.quantity_shipped for line in lines):
        raise DonationError("don_err_has_shipments", ref=request.ref or "?")
    if status == R.COMPLETED and _under_way_for_request(session, request.id or 0):
        raise DonationError("don_err_in_transit", ref=request.ref or "?")
    with _atomic(session):
        if status in (R.CANCELLED, R.COMPLETED):
            for line in lines:
                for match in _confirmed_matches(session, request_line_id=line.id):
                    _release(session, match, now)
        request.status = status
        request.updated_at = now
        if status == R.SUBMITTED and request.submitted_at is None:
            request.submitted_at = now
        if status in (R.APPROVED, R.DECLINED):
            request.decided_at = now
        if status == R.DECLINED:
            request.decline_reason = reason
        if status in CLOSED_REQUEST:
            request.closed_at = now
        session.add(request)
    return request


def _under_way_for_request(session: Session, request_id: int) -> bool:
    """Say whether a shipment for this request has not arrived (nor been cancelled) yet."""
    stmt = (
        select(DonationShipmentLine.id)
        .join(
            DonationRequestLine,
            col(DonationRequestLine.id) == DonationShipmentLine.request_line_id,
        )
        .join(DonationShipment, col(DonationShipment.id) == DonationShipmentLine.shipment_id)
        .where(
            DonationRequestLine.request_id == request_id,
            col(DonationShipment.status).in_(list(UNDER_WAY)),
        )
        .limit(1)
    )
    return session.exec(stmt).first() is not None


def _maybe_complete(session: Session, request_id: int, now: datetime) -> bool:
    """Complete an approved request once every line was delivered in full."""
    request = session.get(DonationRequest, request_id)
    if request is None or request.status != R.APPROVED:
        return False
    lines = request_lines(session=session, request_id=request_id)
    if lines and all(line.quantity_delivered >= line.quantity for line in lines):
        set_request_status(session=session, request=request, status=R.COMPLETED, now=now)
        return True
    return False


# -- notes (questions, answers, reasons, receipts, problems) ------------------------------------


def add_note(
    *,
    session: Session,
    request_id: int,
    kind: str,
    now: datetime,
    text: str | None = None,
    author_contact_id: int | None = None,
    shipment_id: int | None = None,
    reply_to: int | None = None,
) -> DonationNote:
    """Record something said about a request."""
    note = DonationNote(
        request_id=request_id,
        kind=kind,
        text=(text or "")[:1000] or None,
        author_contact_id=author_contact_id,
        shipment_id=shipment_id,
        reply_to=reply_to,
        created_at=now,
    )
    session.add(note)
    session.flush()
    return note


def get_note(*, session: Session, note_id: int) -> DonationNote | None:
    """Return a note by id."""
    return session.get(DonationNote, note_id)


def notes_of(*, session: Session, request_id: int) -> list[DonationNote]:
    """Return a request's notes, oldest first."""
    stmt = (
        select(DonationNote)
        .where(DonationNote.request_id == request_id)
        .order_by(col(DonationNote.id))
    )
    return list(session.exec(stmt))


def open_question(*, session: Session, contact_id: int) -> DonationNote | None:
    """Return the newest unanswered staff question on one of the contact's requests."""
    stmt = (
        select(DonationNote)
        .join(DonationRequest, col(DonationRequest.id) == DonationNote.request_id)
        .where(
            DonationRequest.contact_id == contact_id,
            DonationRequest.status == R.INFO_REQUESTED,
            DonationNote.kind == "question",
            col(DonationNote.answered_at).is_(None),
        )
        .order_by(col(DonationNote.id).desc())
    )
    return session.exec(stmt).first()


def mark_answered(*, session: Session, note: DonationNote, now: datetime) -> None:
    """Mark a staff question answered."""
    note.answered_at = now
    session.add(note)
    session.flush()


# -- donors and pledges -------------------------------------------------------------------------


def ensure_donor(
    *,
    session: Session,
    name: str,
    now: datetime,
    kind: str = "other",
    country_code: str | None = None,
    note: str | None = None,
) -> DonationDonor:
    """Return the donor with this name (any case), recording it the first time."""
    cleaned = " ".join(name.split())[:200]
    if not cleaned:
        raise DonationError("don_err_donor_name")
    stmt = select(DonationDonor).where(func.lower(col(DonationDonor.name)) == cleaned.lower())
    found = session.exec(stmt).first()
    if found is not None:
        return found
    donor = DonationDonor(
        name=cleaned,
        kind=kind,
        country_code=(country_code or "").upper()[:2] or None,
        note=note,
        created_at=now,
    )
    session.add(donor)
    session.flush()
    return donor


def find_donor(*, session: Session, text: str) -> DonationDonor | None:
    """Find a donor by id (`D3`, `3`), exact name, or a name part only one donor has."""
    cleaned = text.strip()
    digits = cleaned[1:] if cleaned[:1] in ("D", "d") else cleaned
    if digits.isdecimal():
        return session.get(DonationDonor, int(digits))
    exact = session.exec(
        select(DonationDonor).where(func.lower(col(DonationDonor.name)) == cleaned.lower())
    ).first()
    if exact is not None:
        return exact
    like = f"%{cleaned.lower()}%"
    found = list(
        session.exec(
            select(DonationDonor).where(func.lower(col(DonationDonor.name)).like(like)).limit(2)
        )
    )
    return found[0] if len(found) == 1 else None


def donors(*, session: Session) -> list[DonationDonor]:
    """Return every donor, by name."""
    return list(session.exec(select(DonationDonor).order_by(col(DonationDonor.name))))


def get_donor(*, session: Session, donor_id: int) -> DonationDonor | None:
    """Return a donor by id."""
    return session.get(DonationDonor, donor_id)


def create_pledge(
    *,
    session: Session,
    donor_id: int,
    lines: Sequence[LineInput],
    now: datetime,
    logistics_covered: bool = False,
    available_on: date | None = None,
    note: str | None = None,
    recorded_by: int | None = None,
) -> DonationPledge:
    """Record a pledge (offered) with its lines and give it its reference."""
    if session.get(DonationDonor, donor_id) is None:
        raise DonationError("don_err_not_found", ref=f"D{donor_id}")
    if not lines:
        raise DonationError("don_err_no_lines")
    for line in lines:
        _positive(line.quantity)
    with _atomic(session):
        pledge = DonationPledge(
            donor_id=donor_id,
            logistics_covered=logistics_covered,
            available_on=available_on,
            note=note,
            recorded_by=recorded_by,
            created_at=now,
            updated_at=now,
        )
        session.add(pledge)
        session.flush()
        assert pledge.id is not None
        pledge.ref = make_ref("P", pledge.id)
        for line in lines:
            session.add(
                DonationPledgeLine(
                    pledge_id=pledge.id,
                    item_id=line.item_id,
                    item_group=line.item_group,
                    quantity=line.quantity,
                )
            )
    return pledge


def pledge_by_ref(*, session: Session, ref: str) -> DonationPledge | None:
    """Return the pledge a typed reference names."""
    canonical = parse_ref(ref)
    if canonical is None or not canonical.startswith("P-"):
        return None
    return session.exec(select(DonationPledge).where(DonationPledge.ref == canonical)).first()


def get_pledge(*, session: Session, pledge_id: int) -> DonationPledge | None:
    """Return a pledge by id."""
    return session.get(DonationPledge, pledge_id)


def pledge_lines(*, session: Session, pledge_id: int) -> list[DonationPledgeLine]:
    """Return a pledge's lines."""
    stmt = (
        select(DonationPledgeLine)
        .where(DonationPledgeLine.pledge_id == pledge_id)
        .order_by(col(DonationPledgeLine.id))
    )
    return list(session.exec(stmt))


def get_pledge_line(*, session: Session, line_id: int) -> DonationPledgeLine | None:
    """Return a pledge line by id."""
    return session.get(DonationPledgeLine, line_id)


def pledges(*, session: Session, statuses: Sequence[str] | None = None) -> list[DonationPledge]:
    """Return pledges (in some statuses), oldest first."""
    stmt = select(DonationPledge).order_by(col(DonationPledge.id))
    if statuses is not None:
        stmt = stmt.where(col(DonationPledge.status).in_(list(statuses)))
    return list(session.exec(stmt))


def set_pledge_status(
    *, session: Session, pledge: DonationPledge, status: PledgeStatus, now: datetime
) -> DonationPledge:
    """Move a pledge along (see PLEDGE_TRANSITIONS); closing it releases what was not shipped."""
    _check("pledge", pledge.ref, PLEDGE_TRANSITIONS, PledgeStatus(pledge.status), status)
    if status in (P.WITHDRAWN, P.FULFILLED) and _preparing_for_pledge(session, pledge.id or 0):
        raise DonationError("don_err_preparing", ref=pledge.ref or "?")
    with _atomic(session):
        if status in (P.WITHDRAWN, P.FULFILLED):
            for line in pledge_lines(session=session, pledge_id=pledge.id or 0):
                for match in _confirmed_matches(session, pledge_line_id=line.id):
                    _release(session, match, now)
                for match in _matches_in(session, line.id or 0, M.PROPOSED):
                    match.status = M.REJECTED
                    match.decided_at = now
                    session.add(match)
        pledge.status = status
        pledge.updated_at = now
        session.add(pledge)
    return pledge


def _preparing_for_pledge(session: Session, pledge_id: int) -> bool:
    """Say whether a shipment of this pledge is still being prepared."""
    stmt = select(DonationShipment.id).where(
        DonationShipment.pledge_id == pledge_id, DonationShipment.status == S.PREPARING
    )
    return session.exec(stmt.limit(1)).first() is not None


def _maybe_fulfil(session: Session, pledge_id: int, now: datetime) -> bool:
    """Mark an accepted pledge fulfilled once all of it was shipped and nothing is under way."""
    pledge = session.get(DonationPledge, pledge_id)
    if pledge is None or pledge.status != P.ACCEPTED:
        return False
    lines = pledge_lines(session=session, pledge_id=pledge_id)
    if not all(line.quantity_shipped >= line.quantity for line in lines):
        return False
    stmt = select(DonationShipment.id).where(
        DonationShipment.pledge_id == pledge_id,
        col(DonationShipment.status).in_(list(UNDER_WAY)),
    )
    if session.exec(stmt.limit(1)).first() is not None:
        return False
    set_pledge_status(session=session, pledge=pledge, status=P.FULFILLED, now=now)
    return True


# -- matches ------------------------------------------------------------------------------------


def _confirmed_matches(
    session: Session, *, request_line_id: int | None = None, pledge_line_id: int | None = None
) -> list[DonationMatch]:
    """Return the confirmed matches of a request line or of a pledge line."""
    stmt = select(DonationMatch).where(DonationMatch.status == M.CONFIRMED)
    if request_line_id is not None:
        stmt = stmt.where(DonationMatch.request_line_id == request_line_id)
    if pledge_line_id is not None:
        stmt = stmt.where(DonationMatch.pledge_line_id == pledge_line_id)
    return list(session.exec(stmt.order_by(col(DonationMatch.id))))


def _matches_in(session: Session, pledge_line_id: int, status: MatchStatus) -> list[DonationMatch]:
    """Return a pledge line's matches in one status."""
    stmt = select(DonationMatch).where(
        DonationMatch.pledge_line_id == pledge_line_id, DonationMatch.status == status
    )
    return list(session.exec(stmt))


def _release(session: Session, match: DonationMatch, now: datetime) -> None:
    """Give back the unshipped part of a confirmed match to its request and pledge lines."""
    unshipped = match.quantity - match.quantity_shipped
    if unshipped <= 0:
        return
    request_line: DonationRequestLine = _locked(
        session, DonationRequestLine, match.request_line_id
    )
    pledge_line: DonationPledgeLine = _locked(session, DonationPledgeLine, match.pledge_line_id)
    request_line.quantity_pledged -= unshipped
    pledge_line.quantity_matched -= unshipped
    match.quantity = match.quantity_shipped
    if match.quantity == 0:
        match.status = M.RELEASED
    match.decided_at = now
    session.add_all([request_line, pledge_line, match])


def get_match(*, session: Session, match_id: int) -> DonationMatch | None:
    """Return a match by id."""
    return session.get(DonationMatch, match_id)


def matches(
    *,
    session: Session,
    statuses: Sequence[str] | None = None,
    pledge_id: int | None = None,
    request_id: int | None = None,
) -> list[DonationMatch]:
    """Return matches, optionally of one pledge or one request, oldest first."""
    stmt = select(DonationMatch).order_by(col(DonationMatch.id))
    if statuses is not None:
        stmt = stmt.where(col(DonationMatch.status).in_(list(statuses)))
    if pledge_id is not None:
        stmt = stmt.join(
            DonationPledgeLine, col(DonationPledgeLine.id) == DonationMatch.pledge_line_id
        ).where(DonationPledgeLine.pledge_id == pledge_id)
    if request_id is not None:
        stmt = stmt.join(
            DonationRequestLine, col(DonationRequestLine.id) == DonationMatch.request_line_id
        ).where(DonationRequestLine.request_id == request_id)
    return list(session.exec(stmt))


def _check_match(
    session: Session, request_line: DonationRequestLine, pledge_line: DonationPledgeLine
) -> tuple[DonationRequest, DonationPledge]:
    """Refuse a match between lines of different items, a closed pledge or an unapproved need."""
    if request_line.item_group != pledge_line.item_group:
        raise DonationError(
            "don_err_item_mismatch", wanted=request_line.item_id, offered=pledge_line.item_id
        )
    request = session.get(DonationRequest, request_line.request_id)
    pledge = session.get(DonationPledge, pledge_line.pledge_id)
    assert request is not None and pledge is not None
    if request.status != R.APPROVED:
        raise DonationError("don_err_request_not_approved", ref=request.ref or "?")
    if pledge.status not in OPEN_PLEDGE:
        raise DonationError("don_err_pledge_closed", ref=pledge.ref or "?")
    return request, pledge


def propose_match(
    *,
    session: Session,
    request_line_id: int,
    pledge_line_id: int,
    quantity: int,
    now: datetime,
    score: float = 0.0,
) -> DonationMatch:
    """Store a proposal (or refresh the one already proposed for the same two lines)."""
    _positive(quantity)
    request_line = session.get(DonationRequestLine, request_line_id)
    pledge_line = session.get(DonationPledgeLine, pledge_line_id)
    if request_line is None or pledge_line is None:
        raise DonationError("don_err_not_found", ref=f"{request_line_id}/{pledge_line_id}")
    _check_match(session, request_line, pledge_line)
    stmt = select(DonationMatch).where(
        DonationMatch.request_line_id == request_line_id,
        DonationMatch.pledge_line_id == pledge_line_id,
        DonationMatch.status == M.PROPOSED,
    )
    match = session.exec(stmt).first()
    if match is None:
        match = DonationMatch(
            request_line_id=request_line_id,
            pledge_line_id=pledge_line_id,
            created_at=now,
        )
    match.quantity = quantity
    match.score = score
    session.add(match)
    session.flush()
    return match


def drop_proposals(*, session: Session, keep: Sequence[int] = ()) -> int:
    """Delete proposals not in `keep` (they are suggestions, recomputed on demand)."""
    stmt = delete(DonationMatch).where(col(DonationMatch.status) == M.PROPOSED)
    if keep:
        stmt = stmt.where(col(DonationMatch.id).not_in(list(keep)))
    result = session.exec(stmt)
    return int(result.rowcount or 0)


def confirm_match(
    *,
    session: Session,
    match: DonationMatch,
    now: datetime,
    quantity: int | None = None,
    actor_contact_id: int | None = None,
) -> DonationMatch:
    """Confirm a proposal: its quantity becomes pledged to the request line."""
    _check("match", str(match.id), MATCH_TRANSITIONS, MatchStatus(match.status), M.CONFIRMED)
    amount = _positive(quantity if quantity is not None else match.quantity)
    with _atomic(session):
        request_line: DonationRequestLine = _locked(
            session, DonationRequestLine, match.request_line_id
        )
        pledge_line: DonationPledgeLine = _locked(
            session, DonationPledgeLine, match.pledge_line_id
        )
        _, pledge = _check_match(session, request_line, pledge_line)
        remaining = request_line.quantity - request_line.quantity_pledged
        available = pledge_line.quantity - pledge_line.quantity_matched
        if amount > remaining:
            raise DonationError("don_err_over_request", remaining=remaining)
        if amount > available:
            raise DonationError("don_err_over_pledge", available=available)
        request_line.quantity_pledged += amount
        pledge_line.quantity_matched += amount
        match.quantity = amount
        match.status = M.CONFIRMED
        match.decided_at = now
        match.decided_by = actor_contact_id
        session.add_all([request_line, pledge_line, match])
        if pledge.status == P.OFFERED:
            set_pledge_status(session=session, pledge=pledge, status=P.ACCEPTED, now=now)
    return match


def reject_match(
    *, session: Session, match: DonationMatch, now: datetime, actor_contact_id: int | None = None
) -> DonationMatch:
    """Reject a proposal: the same two lines are not proposed again."""
    _check("match", str(match.id), MATCH_TRANSITIONS, MatchStatus(match.status), M.REJECTED)
    match.status = M.REJECTED
    match.decided_at = now
    match.decided_by = actor_contact_id
    session.add(match)
    session.flush()
    return match


def link(
    *,
    session: Session,
    request_line_id: int,
    pledge_line_id: int,
    quantity: int,
    now: datetime,
    actor_contact_id: int | None = None,
) -> DonationMatch:
    """Pledge part of a pledge line to a request line directly (a proposal confirmed at once)."""
    with _atomic(session):
        match = DonationMatch(
            request_line_id=request_line_id,
            pledge_line_id=pledge_line_id,
            quantity=_positive(quantity),
            created_at=now,
        )
        session.add(match)
        session.flush()
        confirm_match(session=session, match=match, now=now, actor_contact_id=actor_contact_id)
    return match


@dataclass(frozen=True, slots=True)
class Candidate:
    """An open request line and a pledge line that could cover it (same item group)."""

    request_line_id: int
    request_id: int
    request_ref: str
    request_item: str
    remaining: int
    urgency: str
    needed_by: date | None
    request_country: str | None
    requested_at: datetime
    pledge_line_id: int
    pledge_id: int
    pledge_ref: str
    pledge_item: str
    available: int
    logistics_covered: bool
    donor_name: str
    donor_country: str | None


def match_candidates(*, session: Session) -> list[Candidate]:
    """Pairs of approved request lines still short and open pledge lines with some left."""
    rl, r = _models(DonationRequestLine, DonationRequest)
    pl, p, d = _models(DonationPledgeLine, DonationPledge, DonationDonor)
    rejected = exists().where(
        col(DonationMatch.request_line_id) == rl.id,
        col(DonationMatch.pledge_line_id) == pl.id,
        col(DonationMatch.status) == M.REJECTED,
    )
    stmt = (
        sa_select(
            rl.id,
            r.id,
            r.ref,
            rl.item_id,
            rl.quantity - rl.quantity_pledged,
            r.urgency,
            r.needed_by,
            r.country_code,
            r.created_at,
            pl.id,
            p.id,
            p.ref,
            pl.item_id,
            pl.quantity - pl.quantity_matched,
            p.logistics_covered,
            d.name,
            d.country_code,
        )  # fmt: skip
        .select_from(rl)
        .join(r, col(r.id) == rl.request_id)
        .join(pl, col(pl.item_group) == rl.item_group)
        .join(p, col(p.id) == pl.pledge_id)
        .join(d, col(d.id) == p.donor_id)
        .where(
            r.status == R.APPROVED,
            col(rl.quantity) > col(rl.quantity_pledged),
            col(p.status).in_(list(OPEN_PLEDGE)),
            col(pl.quantity) > col(pl.quantity_matched),
            rl.item_group != "other",
            ~rejected,
        )
        .order_by(col(rl.id), col(pl.id))
    )
    return [Candidate(*row) for row in session.execute(stmt)]


# -- shipments ----------------------------------------------------------------------------------


def create_shipment(
    *,
    session: Session,
    pledge: DonationPledge,
    parts: Sequence[tuple[int, int]],
    now: datetime,
    carrier_ref: str | None = None,
    actor_contact_id: int | None = None,
    source: str = "staff",
) -> DonationShipment:
    """Put confirmed matches (match id, quantity) of one pledge for one city into a shipment."""
    if not parts:
        raise DonationError("don_err_nothing_to_ship", ref=pledge.ref or "?")
    if pledge.status not in OPEN_PLEDGE:
        raise DonationError("don_err_pledge_closed", ref=pledge.ref or "?")
    with _atomic(session):
        shipment = DonationShipment(
            pledge_id=pledge.id or 0,
            donor_id=pledge.donor_id,
            carrier_ref=carrier_ref,
            created_at=now,
            updated_at=now,
        )
        city: tuple[str | None, str | None] | None = None
        session.add(shipment)
        session.flush()
        assert shipment.id is not None
        shipment.ref = make_ref("S", shipment.id)
        for match_id, quantity in parts:
            _positive(quantity)
            match: DonationMatch = _locked(session, DonationMatch, match_id)
            pledge_line: DonationPledgeLine = _locked(
                session, DonationPledgeLine, match.pledge_line_id
            )
            if match.status != M.CONFIRMED or pledge_line.pledge_id != pledge.id:
                raise DonationError("don_err_match_state", id=match_id)
            request_line: DonationRequestLine = _locked(
                session, DonationRequestLine, match.request_line_id
            )
            request = session.get(DonationRequest, request_line.request_id)
            assert request is not None
            if request.status != R.APPROVED:
                raise DonationError("don_err_request_not_approved", ref=request.ref or "?")
            here = (request.country_code, request.city_name)
            if city is not None and here != city:
                raise DonationError("don_err_several_cities")
            city = here
            available = match.quantity - match.quantity_shipped
            if quantity > available:
                raise DonationError("don_err_over_match", available=available)
            match.quantity_shipped += quantity
            pledge_line.quantity_shipped += quantity
            request_line.quantity_shipped += quantity
            session.add_all([match, pledge_line, request_line])
            session.add(
                DonationShipmentLine(
                    shipment_id=shipment.id,
                    match_id=match_id,
                    request_line_id=request_line.id or 0,
                    pledge_line_id=pledge_line.id or 0,
                    item_id=pledge_line.item_id,
                    quantity=quantity,
                    donor_id=pledge.donor_id,
                    country_code=request.country_code,
                    city_name=request.city_name,
                )
            )
        assert city is not None
        shipment.country_code, shipment.city_name = city
        session.add(shipment)
        session.add(
            DonationShipmentEvent(
                shipment_id=shipment.id,
                status=S.PREPARING,
                at=now,
                actor_contact_id=actor_contact_id,
                source=source,
                created_at=now,
            )
        )
    return shipment


def shipment_by_ref(*, session: Session, ref: str) -> DonationShipment | None:
    """Return the shipment a typed reference names."""
    canonical = parse_ref(ref)
    if canonical is None or not canonical.startswith("S-"):
        return None
    return session.exec(select(DonationShipment).where(DonationShipment.ref == canonical)).first()


def get_shipment(*, session: Session, shipment_id: int) -> DonationShipment | None:
    """Return a shipment by id."""
    return session.get(DonationShipment, shipment_id)


def shipment_lines(*, session: Session, shipment_id: int) -> list[DonationShipmentLine]:
    """Return a shipment's lines."""
    stmt = (
        select(DonationShipmentLine)
        .where(DonationShipmentLine.shipment_id == shipment_id)
        .order_by(col(DonationShipmentLine.id))
    )
    return list(session.exec(stmt))


def shipment_events(*, session: Session, shipment_id: int) -> list[DonationShipmentEvent]:
    """Return a shipment's events in the order they were recorded."""
    stmt = (
        select(DonationShipmentEvent)
        .where(DonationShipmentEvent.shipment_id == shipment_id)
        .order_by(col(DonationShipmentEvent.id))
    )
    return list(session.exec(stmt))


def get_event(*, session: Session, event_id: int) -> DonationShipmentEvent | None:
    """Return a shipment event by id."""
    return session.get(DonationShipmentEvent, event_id)


def shipments_of_request(*, session: Session, request_id: int) -> list[DonationShipment]:
    """Return the shipments carrying some of a request, oldest first."""
    stmt = (
        select(DonationShipment)
        .where(
            col(DonationShipment.id).in_(
                select(DonationShipmentLine.shipment_id)
                .join(
                    DonationRequestLine,
                    col(DonationRequestLine.id) == DonationShipmentLine.request_line_id,
                )
                .where(DonationRequestLine.request_id == request_id)
            )
        )
        .order_by(col(DonationShipment.id))
    )
    return list(session.exec(stmt))


def requests_of_shipment(*, session: Session, shipment_id: int) -> list[DonationRequest]:
    """Return the requests a shipment carries supplies for."""
    stmt = (
        select(DonationRequest)
        .where(
            col(DonationRequest.id).in_(
                select(DonationRequestLine.request_id)
                .join(
                    DonationShipmentLine,
                    col(DonationShipmentLine.request_line_id) == DonationRequestLine.id,
                )
                .where(DonationShipmentLine.shipment_id == shipment_id)
            )
        )
        .order_by(col(DonationRequest.id))
    )
    return list(session.exec(stmt))


def record_event(
    *,
    session: Session,
    shipment: DonationShipment,
    status: ShipmentStatus,
    now: datetime,
    at: datetime | None = None,
    note: str | None = None,
    photo: str | None = None,
    actor_contact_id: int | None = None,
    source: str = "staff",
    delivered: Mapping[int, int] | None = None,
) -> tuple[DonationShipmentEvent, bool]:
    """Record a shipment reaching a status; the same status again returns the first event.

    Returns the event and whether it is new. Arrival sets each line's delivered quantity (all
    of it unless `delivered` maps line ids to less); cancellation gives the quantities back.
    """
    current = ShipmentStatus(shipment.status)
    if status == current:
        stmt = select(DonationShipmentEvent).where(
            DonationShipmentEvent.shipment_id == shipment.id,
            DonationShipmentEvent.status == status,
        )
        existing = session.exec(stmt).first()
        if existing is not None:
            return existing, False
    _check("shipment", shipment.ref, SHIPMENT_TRANSITIONS, current, status)
    when = at or now
    lines = shipment_lines(session=session, shipment_id=shipment.id or 0)
    if delivered:
        known = {line.id: line.quantity for line in lines}
        for line_id, quantity in delivered.items():
            if line_id not in known or not 0 <= quantity <= known[line_id]:
                raise DonationError("don_err_over_shipped", shipped=known.get(line_id, 0))
    with _atomic(session):
        if status == S.CANCELLED:
            for line in lines:
                _unship(session, line)
        if status == S.ARRIVED:
            month = when.strftime("%Y-%m")
            for line in lines:
                line.delivered_month = month
                amount = (delivered or {}).get(line.id or 0, line.quantity)
                _deliver(session, line, amount)
            shipment.arrived_at = when
            shipment.delivered_month = month
        if status == S.DISPATCHED:
            shipment.dispatched_at = when
        if status == S.HANDED_OVER:
            shipment.handed_over_at = when
        shipment.status = status
        shipment.updated_at = now
        session.add(shipment)
        event = DonationShipmentEvent(
            shipment_id=shipment.id or 0,
            status=status,
            at=when,
            note=(note or "")[:500] or None,
            photo=(photo or "")[:300] or None,
            actor_contact_id=actor_contact_id,
            source=source,
            created_at=now,
        )
        session.add(event)
        session.flush()
        if status in (S.ARRIVED, S.CANCELLED):
            for request_id in {line.request_line_id for line in lines}:
                row = session.get(DonationRequestLine, request_id)
                if row is not None:
                    _maybe_complete(session, row.request_id, now)
            _maybe_fulfil(session, shipment.pledge_id, now)
    return event, True


def _unship(session: Session, line: DonationShipmentLine) -> None:
    """Give a cancelled shipment line's quantity back to its match and lines."""
    match: DonationMatch = _locked(session, DonationMatch, line.match_id)
    pledge_line: DonationPledgeLine = _locked(session, DonationPledgeLine, line.pledge_line_id)
    request_line: DonationRequestLine = _locked(session, DonationRequestLine, line.request_line_id)
    match.quantity_shipped -= line.quantity
    pledge_line.quantity_shipped -= line.quantity
    request_line.quantity_shipped -= line.quantity
    session.add_all([match, pledge_line, request_line])


def _deliver(session: Session, line: DonationShipmentLine, amount: int) -> None:
    """Set a shipment line's delivered quantity and move its request line's roll-up with it."""
    request_line: DonationRequestLine = _locked(session, DonationRequestLine, line.request_line_id)
    request_line.quantity_delivered += amount - line.quantity_delivered
    line.quantity_delivered = amount
    session.add_all([request_line, line])


def set_delivered(
    *, session: Session, line: DonationShipmentLine, quantity: int, now: datetime
) -> None:
    """Correct what arrived of a shipment line (a damaged or short delivery)."""
    shipment = session.get(DonationShipment, line.shipment_id)
    assert shipment is not None
    if shipment.status not in DELIVERED:
        raise DonationError("don_err_not_arrived", ref=shipment.ref or "?")
    if not 0 <= quantity <= line.quantity:
        raise DonationError("don_err_over_shipped", shipped=line.quantity)
    with _atomic(session):
        _deliver(session, line, quantity)
        shipment.updated_at = now
        session.add(shipment)


def confirm_receipt(
    *, session: Session, shipment: DonationShipment, contact_id: int | None, now: datetime
) -> bool:
    """Record the city's confirmation that the shipment arrived; False when already confirmed."""
    if shipment.receipt_confirmed_at is not None:
        return False
    shipment.receipt_confirmed_at = now
    shipment.receipt_contact_id = contact_id
    shipment.updated_at = now
    session.add(shipment)
    session.flush()
    return True


def mark_problem(*, session: Session, shipment: DonationShipment, now: datetime) -> None:
    """Flag a shipment the city reported a problem with."""
    shipment.problem_reported_at = now
    shipment.updated_at = now
    session.add(shipment)
    session.flush()


def unnotified_events(*, session: Session, limit: int = 200) -> list[DonationShipmentEvent]:
    """Return shipment events the cities have not been told of yet, oldest first."""
    stmt = (
        select(DonationShipmentEvent)
        .where(col(DonationShipmentEvent.notified_at).is_(None))
        .order_by(col(DonationShipmentEvent.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


def mark_notified(*, session: Session, event: DonationShipmentEvent, now: datetime) -> None:
    """Record that an event's delivery updates were queued."""
    event.notified_at = now
    session.add(event)
    session.flush()


# -- people -------------------------------------------------------------------------------------


def staff_contact_ids(*, session: Session) -> list[int]:
    """Return the ids of staff and admins who can be messaged."""
    stmt = (
        select(Contact.id)
        .where(
            col(Contact.staff_role).in_(("staff", "admin")),
            col(Contact.opted_out).is_(False),
            col(Contact.erased_at).is_(None),
        )
        .order_by(col(Contact.id))
    )
    return [int(i) for i in session.exec(stmt) if i is not None]


def contacts_with_open_requests(*, session: Session) -> list[int]:
    """Return the contacts with a request filed and not yet closed (drafts are not filed)."""
    stmt = (
        select(DonationRequest.contact_id)
        .where(
            col(DonationRequest.contact_id).is_not(None),
            col(DonationRequest.status).in_(list(OPEN_REQUEST)),
        )
        .distinct()
        .order_by(col(DonationRequest.contact_id))
    )
    return [int(i) for i in session.exec(stmt) if i is not None]


# -- reports ------------------------------------------------------------------------------------

DIMENSIONS = ("item", "country", "city", "donor", "year", "month")


@dataclass(frozen=True, slots=True)
class Figure:
    """One total of a report: a dimension's key (country code, city …), an item, a quantity."""

    key: str
    item_id: str
    quantity: int
    shipments: int


@dataclass(slots=True)
class Impact:
    """What the shipment records say: delivered totals by dimension, and what is under way."""

    since: str | None
    until: str | None
    by: dict[str, list[Figure]] = field(default_factory=dict)
    under_way: list[Figure] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    cities: int = 0
    shipments: int = 0
    donors: int = 0
    donor_names: dict[str, str] = field(default_factory=dict)


def _dimension(name: str) -> Any:
    """The shipment-line expression a report dimension groups by."""
    (sl,) = _models(DonationShipmentLine)
    if name == "item":
        return literal("all")
    if name == "country":
        return func.coalesce(sl.country_code, "")
    if name == "city":
        return func.coalesce(sl.country_code, "") + "/" + func.coalesce(sl.city_name, "")
    if name == "donor":
        return sl.donor_id
    if name == "year":
        return func.substr(sl.delivered_month, 1, 4)
    if name == "month":
        return sl.delivered_month
    raise ValueError(f"unknown dimension {name!r}")


def _delivered_filter(since: str | None, until: str | None) -> list[Any]:
    """Delivered shipment lines (arrived or handed over) in the months given (inclusive)."""
    (sl,) = _models(DonationShipmentLine)
    found: list[Any] = [sl.delivered_month.is_not(None), sl.quantity_delivered > 0]
    if since:
        found.append(sl.delivered_month >= since)
    if until:
        found.append(sl.delivered_month <= until)
    return found


def _grouped(session: Session, keys: Sequence[Any], where: list[Any]) -> list[tuple[Any, ...]]:
    """Delivered quantity and shipment count per (keys…, item): one GROUP BY on one table."""
    (sl,) = _models(DonationShipmentLine)
    stmt = (
        sa_select(
            *keys,
            sl.item_id,
            func.sum(sl.quantity_delivered),
            func.count(distinct(sl.shipment_id)),
        )
        .where(*where)
        .group_by(*keys, sl.item_id)
    )
    return [tuple(row) for row in session.connection().execute(stmt)]


def _rollup(rows: list[tuple[Any, ...]], key: Callable[[tuple[Any, ...]], str]) -> list[Figure]:
    """Add up finer figures into coarser ones (each shipment has one city and one month)."""
    totals: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        quantity, shipments = int(row[-2] or 0), int(row[-1])
        entry = totals.setdefault((key(row), str(row[-3])), [0, 0])
        entry[0] += quantity
        entry[1] += shipments
    return [Figure(k, item, q, n) for (k, item), (q, n) in sorted(totals.items())]


def impact(
    *,
    session: Session,
    since: str | None = None,
    until: str | None = None,
    dimensions: Sequence[str] = ("item", "country", "city", "donor", "year"),
) -> Impact:
    """Delivered totals by item and by each dimension, from shipment records (SQL GROUP BY).

    Three grouped queries on the shipment lines: by city, by donor, by month (each with the
    item). Countries and item totals add up the city figures and years the month figures:
    a shipment goes to one city and arrives in one month, so shipment counts add up too.
    """
    sl, s = _models(DonationShipmentLine, DonationShipment)
    where = _delivered_filter(since, until)
    report = Impact(since=since, until=until)
    cities = _grouped(session, [sl.country_code, sl.city_name], where)
    by_city: Callable[[tuple[Any, ...]], str] = lambda r: f"{r[0] or ''}/{r[1] or ''}"  # noqa: E731
    rollups: dict[str, tuple[list[tuple[Any, ...]], Callable[[tuple[Any, ...]], str]]] = {
        "item": (cities, lambda r: "all"),
        "country": (cities, lambda r: str(r[0] or "")),
        "city": (cities, by_city),
    }
    if {"year", "month"} & set(dimensions):
        months = _grouped(session, [sl.delivered_month], where)
        rollups["year"] = (months, lambda r: str(r[0])[:4])
        rollups["month"] = (months, lambda r: str(r[0]))
    if "donor" in dimensions:
        rollups["donor"] = (_grouped(session, [sl.donor_id], where), lambda r: str(r[0]))
    for name in dimensions:
        rows, key = rollups[name]
        report.by[name] = _rollup(rows, key)
    report.countries = sorted({str(r[0]) for r in cities if r[0]})
    report.cities = len({by_city(r) for r in cities})
    report.shipments = int(
        session.execute(sa_select(func.count(distinct(sl.shipment_id))).where(*where)).scalar_one()
    )
    if "donor" in dimensions:
        report.donors = len({f.key for f in report.by["donor"]})
    else:
        donors = sa_select(func.count(distinct(sl.donor_id))).where(*where)
        report.donors = int(session.execute(donors).scalar_one())
    pipeline = (
        sa_select(sl.item_id, func.sum(sl.quantity), func.count(distinct(s.id)))
        .select_from(sl)
        .join(s, s.id == sl.shipment_id)
        .where(s.status.in_(list(UNDER_WAY)))
        .group_by(sl.item_id)
        .order_by(sl.item_id)
    )
    report.under_way = [
        Figure("under_way", str(i), int(q or 0), int(n)) for i, q, n in session.execute(pipeline)
    ]
    if "donor" in dimensions:
        ids = {int(f.key) for f in report.by["donor"] if f.key.isdecimal()}
        if ids:
            names = sa_select(col(DonationDonor.id), col(DonationDonor.name)).where(
                col(DonationDonor.id).in_(ids)
            )
            report.donor_names = {str(i): str(n) for i, n in session.execute(names)}
    return report


@dataclass(frozen=True, slots=True)
class ShipmentRow:
    """A shipment line behind a figure: which shipment, when, from whom, to where, how many."""

    shipment_ref: str
    delivered_month: str | None
    arrived_at: datetime | None
    donor: str
    country_code: str | None
    city_name: str | None
    item_id: str
    quantity: int


def figure_shipments(
    *,
    session: Session,
    dimension: str,
    key: str,
    item_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 1000,
) -> list[ShipmentRow]:
    """List the shipment lines a report figure adds up (the same filters, one key)."""
    sl, s, d = _models(DonationShipmentLine, DonationShipment, DonationDonor)
    stmt = (
        sa_select(
            s.ref,
            sl.delivered_month,
            s.arrived_at,
            d.name,
            sl.country_code,
            sl.city_name,
            sl.item_id,
            sl.quantity_delivered,
        )  # fmt: skip
        .select_from(sl)
        .join(s, s.id == sl.shipment_id)
        .join(d, d.id == sl.donor_id)
        .where(*_delivered_filter(since, until))
        .order_by(s.arrived_at, s.id, sl.id)
        .limit(limit)
    )
    if dimension != "item":
        stmt = stmt.where(_dimension(dimension) == (int(key) if dimension == "donor" else key))
    if item_id is not None:
        stmt = stmt.where(sl.item_id == item_id)
    return [ShipmentRow(*row) for row in session.execute(stmt)]


def summary(*, session: Session) -> dict[str, Any]:
    """Counts and totals for staff reports: requests, pledges, shipments, quantities, reach."""
    r, rl = _models(DonationRequest, DonationRequestLine)
    requests = {
        str(k): int(n)
        for k, n in session.execute(sa_select(r.status, func.count()).group_by(r.status))
    }
    pledge_counts = {
        str(k): int(n)
        for k, n in session.execute(
            sa_select(col(DonationPledge.status), func.count()).group_by(
                col(DonationPledge.status)
            )
        )
    }
    shipment_counts = {
        str(k): int(n)
        for k, n in session.execute(
            sa_select(col(DonationShipment.status), func.count()).group_by(
                col(DonationShipment.status)
            )
        )
    }
    filed = col(r.status) != R.DRAFT
    totals = session.execute(
        sa_select(
            func.count(col(rl.id)),
            func.coalesce(func.sum(col(rl.quantity)), 0),
            func.coalesce(func.sum(col(rl.quantity_pledged)), 0),
            func.coalesce(func.sum(col(rl.quantity_shipped)), 0),
            func.coalesce(func.sum(col(rl.quantity_delivered)), 0),
        )
        .select_from(rl)
        .join(r, col(r.id) == rl.request_id)
        .where(filed)
    ).one()
    reach = impact(session=session, dimensions=("item",))
    donor_count = session.execute(sa_select(func.count(col(DonationDonor.id)))).scalar_one()
    return {
        "requests": requests,
        "requests_open": sum(requests.get(s, 0) for s in OPEN_REQUEST),
        "request_lines": int(totals[0]),
        "pledges": pledge_counts,
        "shipments": shipment_counts,
        "donors": int(donor_count),
        "quantities": {
            "requested": int(totals[1]),
            "pledged": int(totals[2]),
            "shipped": int(totals[3]),
            "delivered": int(totals[4]),
        },
        "delivered_by_item": {f.item_id: f.quantity for f in reach.by["item"]},
        "countries_benefited": len(reach.countries),
        "cities_benefited": reach.cities,
        "shipments_delivered": reach.shipments,
    }


# -- invariants (tests and `citybot donations check`) -------------------------------------------


def check_invariants(*, session: Session) -> list[str]:
    """Return every broken quantity rule (an empty list when all hold)."""
    problems: list[str] = []
    confirmed: Counter[int] = Counter()
    by_pledge_line: Counter[int] = Counter()
    match_shipped: Counter[int] = Counter()
    for match in session.exec(select(DonationMatch)):
        if match.status == M.CONFIRMED:
            confirmed[match.request_line_id] += match.quantity
            by_pledge_line[match.pledge_line_id] += match.quantity
            match_shipped[match.pledge_line_id] += match.quantity_shipped
        if match.status in (M.RELEASED, M.PROPOSED, M.REJECTED) and match.quantity_shipped:
            problems.append(f"match {match.id}: {match.status} yet shipped")
        if not 0 <= match.quantity_shipped <= match.quantity:
            problems.append(
                f"match {match.id}: shipped {match.quantity_shipped} > {match.quantity}"
            )
    statuses = {sh.id: sh.status for sh in session.exec(select(DonationShipment))}
    shipped: Counter[int] = Counter()
    delivered: Counter[int] = Counter()
    per_match: Counter[int] = Counter()
    shipments_by_id = {sh.id: sh for sh in session.exec(select(DonationShipment))}
    for line in session.exec(select(DonationShipmentLine)):
        status = statuses[line.shipment_id]
        parent = shipments_by_id[line.shipment_id]
        copies = (line.donor_id, line.country_code, line.city_name, line.delivered_month)
        if copies != (
            parent.donor_id,
            parent.country_code,
            parent.city_name,
            parent.delivered_month,
        ):
            problems.append(f"shipment line {line.id}: report copies differ from its shipment")
        if status != S.CANCELLED:
            shipped[line.request_line_id] += line.quantity
            per_match[line.match_id] += line.quantity
        if status in DELIVERED:
            delivered[line.request_line_id] += line.quantity_delivered
        elif line.quantity_delivered:
            problems.append(f"shipment line {line.id}: delivered before arrival")
        if not 0 <= line.quantity_delivered <= line.quantity:
            problems.append(f"shipment line {line.id}: delivered > shipped")
    for match in session.exec(select(DonationMatch)):
        if per_match[match.id or 0] != match.quantity_shipped:
            problems.append(f"match {match.id}: shipped {match.quantity_shipped} ≠ lines")
    for rline in session.exec(select(DonationRequestLine)):
        rid = rline.id or 0
        if rline.quantity_pledged != confirmed[rid]:
            problems.append(f"request line {rid}: pledged {rline.quantity_pledged} ≠ matches")
        if rline.quantity_shipped != shipped[rid]:
            problems.append(f"request line {rid}: shipped {rline.quantity_shipped} ≠ shipments")
        if rline.quantity_delivered != delivered[rid]:
            problems.append(f"request line {rid}: delivered {rline.quantity_delivered} ≠ arrivals")
        chain = (rline.quantity_delivered, rline.quantity_shipped, rline.quantity_pledged)
        if not 0 <= chain[0] <= chain[1] <= chain[2] <= rline.quantity:
            problems.append(f"request line {rid}: 0 ≤ delivered ≤ shipped ≤ pledged ≤ requested")
    for pline in session.exec(select(DonationPledgeLine)):
        pid = pline.id or 0
        if pline.quantity_matched != by_pledge_line[pid]:
            problems.append(f"pledge line {pid}: matched ≠ confirmed matches")
        if pline.quantity_shipped != match_shipped[pid]:
            problems.append(f"pledge line {pid}: shipped ≠ matches shipped")
        if not 0 <= pline.quantity_shipped <= pline.quantity_matched <= pline.quantity:
            problems.append(f"pledge line {pid}: 0 ≤ shipped ≤ matched ≤ quantity")
    return problems


# -- links to surveys and delivery updates ------------------------------------------------------


def latest_unconverted_survey(
    *, session: Session, contact_id: int, survey_id: str
) -> SurveyResponse | None:
    """Return the contact's newest response to a survey no request was made from yet."""
    used = select(DonationRequest.survey_response_id).where(
        col(DonationRequest.survey_response_id).is_not(None),
        col(DonationRequest.status) != R.CANCELLED,
    )
    stmt = (
        select(SurveyResponse)
        .where(
            SurveyResponse.contact_id == contact_id,
            SurveyResponse.survey_id == survey_id,
            col(SurveyResponse.id).not_in(used),
        )
        .order_by(col(SurveyResponse.id).desc())
    )
    return session.exec(stmt).first()


def get_survey_response(*, session: Session, response_id: int) -> SurveyResponse | None:
    """Return a survey response by id."""
    return session.get(SurveyResponse, response_id)


def latest_event_for_contact(
    *, session: Session, contact_id: int, unconfirmed: bool = False
) -> DonationShipmentEvent | None:
    """Return the newest event of a shipment (on its way or arrived) for the contact's requests."""
    mine = (
        select(DonationShipmentLine.shipment_id)
        .join(
            DonationRequestLine,
            col(DonationRequestLine.id) == DonationShipmentLine.request_line_id,
        )
        .join(DonationRequest, col(DonationRequest.id) == DonationRequestLine.request_id)
        .where(DonationRequest.contact_id == contact_id)
    )
    stmt = (
        select(DonationShipmentEvent)
        .join(DonationShipment, col(DonationShipment.id) == DonationShipmentEvent.shipment_id)
        .where(
            col(DonationShipmentEvent.shipment_id).in_(mine),
            col(DonationShipment.status).not_in([S.PREPARING, S.CANCELLED]),
        )
        .order_by(col(DonationShipmentEvent.id).desc())
    )
    if unconfirmed:
        stmt = stmt.where(col(DonationShipment.receipt_confirmed_at).is_(None))
    return session.exec(stmt).first()
