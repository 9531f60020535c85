"""Delivery updates with the cities: receipts, problems, events to tell, a contact's latest."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from storage.donations_models import (
    DonationRequest,
    DonationRequestLine,
    DonationShipment,
    DonationShipmentEvent,
    DonationShipmentLine,
)
from storage.donations_states import S


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
