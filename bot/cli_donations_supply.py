"""`citybot donations donor | donors | pledge | matches | ship | track`: donors to deliveries."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from sqlmodel import Session

from bot.cli_donations_io import find_request, out, pairs


def add_donor(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Record a donor."""
    from handlers import donations_pledging

    donor = donations_pledging.add_donor(
        session, args.name, now, None, kind=args.kind, country_code=args.country
    )
    out(f"D{donor.id}\t{donor.name}")
    return 0


def list_donors(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """List donors."""
    from storage import donations as store

    for donor in store.donors(session=session):
        out(f"D{donor.id}\t{donor.country_code or '-'}\t{donor.kind}\t{donor.name}")
    return 0


def add_pledge(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Record a pledge (for a request, or unsolicited)."""
    from handlers import donations_pledging
    from storage import donations as store

    donor = store.find_donor(session=session, text=args.donor)
    if donor is None:
        raise ValueError(f"no single donor matches {args.donor!r} (see `donations donors`)")
    request = find_request(session, args.request) if args.request else None
    pledge = donations_pledging.add_pledge(
        session, donor, pairs(args.items), now, None, request=request,
        logistics_covered=args.logistics, note=args.note,
    )  # fmt: skip
    out(f"{pledge.ref}\t{donor.name}\t{pledge.status}")
    return 0


def matches(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Propose matches, or confirm or reject one."""
    from handlers import donations_match, donations_pledging
    from storage import donations as store

    chosen = args.confirm or args.reject
    if chosen is not None:
        match = store.get_match(session=session, match_id=chosen)
        if match is None:
            raise ValueError(f"no match {chosen}")
        if args.confirm is not None:
            donations_pledging.confirm_match(session, match, now, None, args.quantity)
            out(f"match {match.id} confirmed: {match.quantity}")
        else:
            donations_pledging.reject_match(session, match, now, None)
            out(f"match {match.id} rejected")
        return 0
    for match in donations_match.propose(session=session, now=now):
        rline = store.get_request_line(session=session, line_id=match.request_line_id)
        pline = store.get_pledge_line(session=session, line_id=match.pledge_line_id)
        assert rline is not None and pline is not None
        request = store.get_request(session=session, request_id=rline.request_id)
        pledge = store.get_pledge(session=session, pledge_id=pline.pledge_id)
        assert request is not None and pledge is not None
        out(
            f"M{match.id}\tscore {match.score}\t{pledge.ref} {pline.item_id} → "
            f"{request.ref} {rline.item_id} ({request.city_name}, {request.country_code})\t"
            f"{match.quantity}"
        )
    return 0


def ship(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Ship a pledge's confirmed matches."""
    from handlers import donations_shipping
    from storage import donations as store

    pledge = store.pledge_by_ref(session=session, ref=args.pledge)
    if pledge is None:
        raise ValueError(f"no pledge {args.pledge}")
    parts = [(int(m), q) for m, q in pairs(args.part)] or None
    for shipment in donations_shipping.ship(
        session, pledge, now, None, parts=parts, carrier_ref=args.carrier
    ):
        out(f"{shipment.ref}\t{shipment.city_name}, {shipment.country_code}\t{shipment.status}")
    return 0


def track(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Record a shipment status event (the officials get a delivery update)."""
    from handlers import donations_shipping
    from storage import donations as store
    from storage.donations import ShipmentStatus

    shipment = store.shipment_by_ref(session=session, ref=args.shipment)
    if shipment is None:
        raise ValueError(f"no shipment {args.shipment}")
    try:
        status = ShipmentStatus(args.status)
    except ValueError as exc:
        raise ValueError(f"status is one of {', '.join(ShipmentStatus)}") from exc
    at = datetime.fromisoformat(args.at) if args.at else None
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    delivered = {int(k): q for k, q in pairs(args.delivered)} or None
    event, created = donations_shipping.track(
        session, shipment, status, now, None, at=at, note=args.note, photo=args.photo,
        delivered=delivered,
    )  # fmt: skip
    out(f"{shipment.ref}\t{event.status}\t{'recorded' if created else 'already recorded'}")
    return 0
