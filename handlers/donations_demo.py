"""Example records: the programme's 2020–2021 PPE deliveries (handlers/data/donations/)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import yaml
from sqlmodel import Session, select

from handlers import donations_shipping
from handlers.donations_catalogue import DATA, catalogue
from storage import donations as store
from storage.donations import LineInput, RequestStatus, ShipmentStatus
from storage.donations_models import DonationRequest

logger = logging.getLogger(__name__)
DEMO_FILE = DATA / "demo_2020_2021.yaml"


@dataclass(frozen=True, slots=True)
class Loaded:
    """What the loader did."""

    requests: int
    shipments: int
    already: bool = False


def _at(value: Any) -> datetime | None:
    """Noon UTC on a YAML date."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    assert isinstance(value, date)
    return datetime.combine(value, time(12), tzinfo=UTC)


def demo_data() -> dict[str, Any]:
    """Read the transcribed deliveries."""
    with DEMO_FILE.open(encoding="utf-8") as handle:
        data: dict[str, Any] = yaml.safe_load(handle)
    return data


def load(session: Session) -> Loaded:
    """Record every delivery of the file (once: a second call changes nothing)."""
    if session.exec(select(DonationRequest.id).where(DonationRequest.source == "demo")).first():
        return Loaded(0, 0, already=True)
    data = demo_data()
    donors = {}
    first = _at(min(d["requested"] for d in data["deliveries"]))
    assert first is not None
    for key, raw in data["donors"].items():
        donors[key] = store.ensure_donor(
            session=session,
            name=raw["name"],
            now=first,
            kind=raw.get("kind", "other"),
            country_code=raw.get("country"),
        )
    shipments = 0
    for raw in data["deliveries"]:
        shipments += _delivery(session, raw, donors[raw["donor"]].id or 0)
    logger.info("demo donations loaded deliveries=%d", len(data["deliveries"]))
    return Loaded(len(data["deliveries"]), shipments)


def _delivery(session: Session, raw: dict[str, Any], donor_id: int) -> int:
    """Record one delivery: request → approval → pledge → shipment → its events."""
    requested, pledged = _at(raw["requested"]), _at(raw["pledged"])
    assert requested is not None and pledged is not None
    lines = [
        LineInput(item_id=item, item_group=catalogue().item(item).group, quantity=int(quantity))
        for item, quantity in raw["items"].items()
    ]
    request = store.create_request(
        session=session,
        now=requested,
        lines=lines,
        status=RequestStatus.SUBMITTED,
        source="demo",
        city_name=raw.get("city"),
        country_code=raw.get("country"),
        institution=raw.get("institution"),
        urgency=raw.get("urgency", "medium"),
        purpose=raw.get("purpose"),
    )
    store.set_request_status(
        session=session, request=request, status=RequestStatus.APPROVED, now=requested
    )
    pledge = store.create_pledge(
        session=session,
        donor_id=donor_id,
        lines=lines,
        now=pledged,
        logistics_covered=bool(raw.get("logistics_covered")),
        note=raw.get("note"),
    )
    request_lines = store.request_lines(session=session, request_id=request.id or 0)
    for rline, pline in zip(
        request_lines, store.pledge_lines(session=session, pledge_id=pledge.id or 0), strict=True
    ):
        store.link(
            session=session,
            request_line_id=rline.id or 0,
            pledge_line_id=pline.id or 0,
            quantity=pline.quantity,
            now=pledged,
        )
    arrived = _at(raw.get("arrived"))
    dispatched = _at(raw.get("dispatched")) or arrived
    made = donations_shipping.ship(
        session, pledge, dispatched or pledged, None, source="demo", notify=False
    )
    for shipment in made:
        steps = [
            (ShipmentStatus.DISPATCHED, dispatched),
            (ShipmentStatus.ARRIVED, arrived),
            (ShipmentStatus.HANDED_OVER, _at(raw.get("handed_over"))),
        ]
        for status, when in steps:
            if when is None:
                continue
            note = raw.get("note") if status == ShipmentStatus.ARRIVED else None
            store.record_event(
                session=session, shipment=shipment, status=status, now=when, at=when, note=note,
                source="demo",
            )  # fmt: skip
        for event in store.shipment_events(session=session, shipment_id=shipment.id or 0):
            store.mark_notified(session=session, event=event, now=event.at)
    return len(made)
