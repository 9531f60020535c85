"""Shipments (chat and CLI): ship, track, delivery updates, receipts and problems.

A delivery update's outbox key is `ship:<event id>:<contact id>`, so recording or notifying the
same shipment event twice tells each official once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from handlers.donations_catalogue import item_name, quantity_text
from handlers.donations_notify import Build, audit_action, tell
from handlers.donations_text import city_label, show_date, status_label
from handlers.i18n import t, words_for
from handlers.messages import Attachment, Choice, Outgoing
from storage import donations as store
from storage.donations import DonationError, MatchStatus, ShipmentStatus
from storage.donations_models import (
    DonationNote,
    DonationPledge,
    DonationRequest,
    DonationShipment,
    DonationShipmentEvent,
)
from storage.models import Contact

logger = logging.getLogger(__name__)


def ship(
    session: Session,
    pledge: DonationPledge,
    now: datetime,
    actor: int | None,
    *,
    parts: Sequence[tuple[int, int]] | None = None,
    carrier_ref: str | None = None,
    source: str = "staff",
    notify: bool = True,
) -> list[DonationShipment]:
    """Ship a pledge's confirmed, unshipped matches (or the parts given): one shipment a city."""
    if parts is None:
        confirmed = store.matches(
            session=session, statuses=[MatchStatus.CONFIRMED], pledge_id=pledge.id
        )
        parts = [(m.id or 0, m.quantity - m.quantity_shipped) for m in confirmed]
        parts = [(m, q) for m, q in parts if q > 0]
    if not parts:
        raise DonationError("don_err_nothing_to_ship", ref=pledge.ref or "?")
    by_city: dict[tuple[str | None, str | None], list[tuple[int, int]]] = {}
    for match_id, quantity in parts:
        match = store.get_match(session=session, match_id=match_id)
        if match is None:
            raise DonationError("don_err_match_state", id=match_id)
        rline = store.get_request_line(session=session, line_id=match.request_line_id)
        assert rline is not None
        request = store.get_request(session=session, request_id=rline.request_id)
        assert request is not None
        by_city.setdefault((request.country_code, request.city_name), []).append(
            (match_id, quantity)
        )
    shipments = []
    for city_parts in by_city.values():
        shipment = store.create_shipment(
            session=session, pledge=pledge, parts=city_parts, now=now, carrier_ref=carrier_ref,
            actor_contact_id=actor, source=source,
        )  # fmt: skip
        audit_action(session, "ship", now, actor, shipment.ref or "", pledge=pledge.ref)
        shipments.append(shipment)
        if notify:
            for event in store.shipment_events(session=session, shipment_id=shipment.id or 0):
                notify_event(session, event, now)
    return shipments


def track(
    session: Session,
    shipment: DonationShipment,
    status: ShipmentStatus,
    now: datetime,
    actor: int | None,
    *,
    at: datetime | None = None,
    note: str | None = None,
    photo: str | None = None,
    delivered: dict[int, int] | None = None,
    source: str = "staff",
    notify: bool = True,
) -> tuple[DonationShipmentEvent, bool]:
    """Record a shipment status event and queue the delivery updates (once per event)."""
    event, created = store.record_event(
        session=session, shipment=shipment, status=status, now=now, at=at, note=note,
        photo=photo, actor_contact_id=actor, source=source, delivered=delivered,
    )  # fmt: skip
    if created:
        audit_action(session, "track", now, actor, shipment.ref or "", status=str(status))
    if notify:
        notify_event(session, event, now)
    return event, created


def notify_event(session: Session, event: DonationShipmentEvent, now: datetime) -> int:
    """Queue a delivery update for every official whose request the shipment serves."""
    shipment = store.get_shipment(session=session, shipment_id=event.shipment_id)
    assert shipment is not None
    queued = 0
    for request in store.requests_of_shipment(session=session, shipment_id=shipment.id or 0):
        if request.contact_id is None or request.contact_id == event.actor_contact_id:
            continue
        message = delivery_update(session, event, shipment, request)
        queued += (
            tell(
                session,
                request.contact_id,
                f"ship:{event.id}:{request.contact_id}",
                now,
                message,
                kind="delivery_update",
            )
            is not None
        )
    if event.notified_at is None:
        store.mark_notified(session=session, event=event, now=now)
    logger.info("delivery update event=%s queued=%d", event.id, queued)
    return queued


def delivery_update(
    session: Session,
    event: DonationShipmentEvent,
    shipment: DonationShipment,
    request: DonationRequest,
) -> Build:
    """Build one official's delivery update, with Received / Problem buttons when they apply."""
    donor = store.get_donor(session=session, donor_id=shipment.donor_id)
    lines = [
        line
        for line in store.shipment_lines(session=session, shipment_id=shipment.id or 0)
        if line.request_line_id
        in {r.id for r in store.request_lines(session=session, request_id=request.id or 0)}
    ]

    def build(lang: str, contact: Contact) -> Outgoing:
        bullets = [
            f"• {item_name(line.item_id, lang)}: "
            f"{quantity_text(line.quantity, line.item_id, lang)}"
            for line in lines
        ]
        text = t(
            f"don_update_{event.status}", lang, ref=request.ref, shipment=shipment.ref,
            donor=donor.name if donor else "?",
            date=show_date(event.at, lang, contact.timezone),
        )  # fmt: skip
        parts = [text, *bullets]
        if event.note:
            parts.append(t("don_update_note", lang, note=event.note))
        attachments: tuple[Attachment, ...] = ()
        if event.photo and event.photo.startswith(("http://", "https://")):
            parts.append(t("don_update_photo", lang, url=event.photo))
        elif event.photo and Path(event.photo).is_file():
            attachments = (Attachment("image", Path(event.photo).name, event.photo),)
        choices: tuple[Choice, ...] = ()
        if event.status not in (ShipmentStatus.PREPARING, ShipmentStatus.CANCELLED):
            choices = (
                Choice(f"dl:{event.id}:ok", t("don_btn_received", lang)),
                Choice(f"dl:{event.id}:problem", t("don_btn_problem", lang)),
            )
            parts.append(
                t(
                    "don_update_footer",
                    lang,
                    received=words_for("don_received", lang)[0],
                    problem=words_for("don_problem", lang)[0],
                )  # fmt: skip
            )
        return Outgoing(
            text="\n".join(parts),
            choices=choices,
            attachments=attachments,
            kind="delivery_update",
            meta={
                "ref": request.ref,
                "shipment": shipment.ref,
                "status": status_label(event.status, lang),
            },
        )

    return build


def receipt(
    session: Session, event: DonationShipmentEvent, contact: Contact, now: datetime
) -> tuple[DonationShipment, bool]:
    """Record the city confirming receipt (it also marks a shipment still on its way arrived)."""
    shipment = store.get_shipment(session=session, shipment_id=event.shipment_id)
    assert shipment is not None
    if shipment.status in (
        ShipmentStatus.DISPATCHED,
        ShipmentStatus.IN_TRANSIT,
        ShipmentStatus.CUSTOMS,
    ):
        track(session, shipment, ShipmentStatus.ARRIVED, now, contact.id, source="city",
              note=None)  # fmt: skip
    new = store.confirm_receipt(session=session, shipment=shipment, contact_id=contact.id, now=now)
    if new:
        for request in store.requests_of_shipment(session=session, shipment_id=shipment.id or 0):
            store.add_note(
                session=session, request_id=request.id or 0, kind="receipt", now=now,
                author_contact_id=contact.id, shipment_id=shipment.id,
            )  # fmt: skip
        logger.info("donation receipt shipment=%s contact=%s", shipment.id, contact.id)
    return shipment, new


def problem(
    session: Session,
    shipment: DonationShipment,
    contact: Contact,
    kind: str,
    details: str | None,
    now: datetime,
) -> DonationNote | None:
    """Record a problem the city reports with a shipment and tell staff."""
    store.mark_problem(session=session, shipment=shipment, now=now)
    note = None
    for request in store.requests_of_shipment(session=session, shipment_id=shipment.id or 0):
        note = store.add_note(
            session=session, request_id=request.id or 0, kind="problem", now=now,
            text=f"{kind}: {details}" if details else kind, author_contact_id=contact.id,
            shipment_id=shipment.id,
        )  # fmt: skip
    if note is None:
        return None
    logger.info("donation problem shipment=%s note=%s", shipment.id, note.id)
    for staff_id in store.staff_contact_ids(session=session):

        def build(lang: str, c: Contact) -> Outgoing:
            return Outgoing(
                text=t(
                    "don_staff_problem",
                    lang,
                    shipment=shipment.ref,
                    city=city_label(shipment, lang),
                    problem=t(f"don_problem_{kind}", lang),
                    details=details or "—",
                )  # fmt: skip
            )

        tell(session, staff_id, f"don:problem:{note.id}:{staff_id}", now, build)
    return note
