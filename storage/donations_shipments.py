"""Shipments of pledged supplies: packing confirmed matches, lookups, status events, deliveries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from storage.donations_models import (
    DonationMatch,
    DonationPledge,
    DonationPledgeLine,
    DonationRequest,
    DonationRequestLine,
    DonationShipment,
    DonationShipmentEvent,
    DonationShipmentLine,
)
from storage.donations_pledges import _maybe_fulfil
from storage.donations_plumbing import _atomic, _locked
from storage.donations_refs import make_ref, parse_ref
from storage.donations_requests import _maybe_complete
from storage.donations_states import (
    DELIVERED,
    OPEN_PLEDGE,
    SHIPMENT_TRANSITIONS,
    DonationError,
    M,
    R,
    S,
    ShipmentStatus,
    _check,
    _positive,
)


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
