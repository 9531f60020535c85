"""Donation requests and their lines: filing, lookups, edits and the request workflow."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, exists, func
from sqlmodel import Session, col, select

from storage.donations_models import (
    DonationRequest,
    DonationRequestLine,
    DonationShipment,
    DonationShipmentLine,
)
from storage.donations_plumbing import LineInput, _atomic, _locked
from storage.donations_refs import make_ref, parse_ref
from storage.donations_release import _confirmed_matches, _release
from storage.donations_states import (
    CLOSED_REQUEST,
    EDITABLE_REQUEST,
    OPEN_REQUEST,
    REQUEST_TRANSITIONS,
    UNDER_WAY,
    URGENCIES,
    DonationError,
    R,
    RequestStatus,
    _check,
    _positive,
)


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
