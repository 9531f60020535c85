"""`citybot donations …`: staff work on requests, pledges and shipments from the command line.

    citybot donations requests [--status submitted]      the review queue (or any status)
    citybot donations show R-7K3F                        one request with lines and notes
    citybot donations approve R-7K3F
    citybot donations decline R-7K3F --reason "…"
    citybot donations ask R-7K3F --question "…"
    citybot donations donor "Henan Provincial Government" --country CN --kind government
    citybot donations donors
    citybot donations pledge D3 surgical_mask=10000 [--request R-7K3F] [--logistics]
    citybot donations matches [--confirm ID [--quantity N] | --reject ID]
    citybot donations ship P-4HXM [--part MATCH=QTY …]
    citybot donations track S-9QZC arrived [--at 2026-11-02T10:00] [--note …] [--photo …]
                                           [--delivered LINE=QTY …]
    citybot donations impact [--since 2020-01] [--until 2021-12] [--by city]
                             [--trace country=GM [--item surgical_mask]] [--csv FILE]
    citybot donations demo                                the 2020–2021 deliveries as records
    citybot donations check                               quantity invariants

Every staff action is audited (actor: the CLI); officials are told through the outbox, which
`citybot serve` drains.
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from bot.settings import Settings

COMMANDS = ("donations",)


def _out(text: str) -> None:
    """Write one line to standard output."""
    sys.stdout.write(f"{text}\n")


def register(sub: Any) -> None:
    """Add `donations` and its actions to the CLI."""
    parser = sub.add_parser("donations", help="donation requests, pledges, shipments, impact")
    actions = parser.add_subparsers(dest="donations_action", required=True)
    listing = actions.add_parser("requests", help="requests waiting for review (or by status)")
    listing.add_argument("--status", action="append")
    actions.add_parser("show", help="one request").add_argument("ref")
    actions.add_parser("approve", help="approve a request").add_argument("ref")
    decline = actions.add_parser("decline", help="decline a request with a reason")
    decline.add_argument("ref")
    decline.add_argument("--reason", required=True)
    ask = actions.add_parser("ask", help="ask the requesting official for information")
    ask.add_argument("ref")
    ask.add_argument("--question", required=True)
    donor = actions.add_parser("donor", help="record a donor partner")
    donor.add_argument("name")
    donor.add_argument("--country")
    donor.add_argument("--kind", default="other")
    actions.add_parser("donors", help="list donor partners")
    pledge = actions.add_parser("pledge", help="record a pledge: DONOR ITEM=QTY …")
    pledge.add_argument("donor")
    pledge.add_argument("items", nargs="+", metavar="ITEM=QTY")
    pledge.add_argument("--request")
    pledge.add_argument("--logistics", action="store_true")
    pledge.add_argument("--note")
    matches = actions.add_parser("matches", help="propose, confirm or reject matches")
    matches.add_argument("--confirm", type=int)
    matches.add_argument("--quantity", type=int)
    matches.add_argument("--reject", type=int)
    ship = actions.add_parser("ship", help="ship a pledge's confirmed matches")
    ship.add_argument("pledge")
    ship.add_argument("--part", action="append", default=[], metavar="MATCH=QTY")
    ship.add_argument("--carrier")
    track = actions.add_parser("track", help="record a shipment status event")
    track.add_argument("shipment")
    track.add_argument("status")
    track.add_argument("--at")
    track.add_argument("--note")
    track.add_argument("--photo")
    track.add_argument("--delivered", action="append", default=[], metavar="LINE=QTY")
    impact = actions.add_parser("impact", help="the impact report from shipment records")
    impact.add_argument("--since", help="first month, YYYY-MM")
    impact.add_argument("--until", help="last month, YYYY-MM")
    impact.add_argument(
        "--by", action="append", choices=("item", "country", "city", "donor", "year", "month")
    )
    impact.add_argument("--trace", metavar="DIMENSION=KEY", help="list the shipments of a figure")
    impact.add_argument("--item", help="with --trace: one item only")
    impact.add_argument("--csv", help="write every figure to this CSV file")
    actions.add_parser("demo", help="load the 2020–2021 deliveries described in the seeds")
    actions.add_parser("check", help="check the quantity invariants")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one donations action; 0 on success, 1 when refused, 2 on bad input."""
    from bot.cli import prepare_database
    from bot.clock import SystemClock
    from storage.db import session_scope
    from storage.donations import DonationError

    engine = prepare_database(settings)
    now = SystemClock().now()
    action = args.donations_action.replace("-", "_")
    try:
        with session_scope(engine) as session:
            return int(ACTIONS[action](session, args, now))
    except DonationError as error:
        from handlers.donations_service import error_text

        sys.stderr.write(f"refused: {error_text(error, 'en')}\n")
        return 1
    except ValueError as error:
        sys.stderr.write(f"citybot donations: {error}\n")
        return 2


def _pairs(values: list[str]) -> list[tuple[str, int]]:
    """Read `key=quantity` arguments."""
    found = []
    for value in values:
        key, sep, quantity = value.partition("=")
        if not sep or not quantity.strip().isdecimal():
            raise ValueError(f"expected KEY=QUANTITY, got {value!r}")
        found.append((key.strip(), int(quantity)))
    return found


def _request(session: Session, ref: str) -> Any:
    """Find a request or fail."""
    from storage import donations as store

    request = store.request_by_ref(session=session, ref=ref)
    if request is None:
        raise ValueError(f"no request {ref}")
    return request


def _requests(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Print the review queue."""
    from storage import donations as store

    statuses = args.status or ["submitted", "info_requested"]
    for request in store.requests_by_status(session=session, statuses=statuses, limit=200):
        lines = store.request_lines(session=session, request_id=request.id or 0)
        items = ", ".join(f"{line.item_id}={line.quantity}" for line in lines)
        _out(
            f"{request.ref}\t{request.status}\t{request.country_code or '-'}\t"
            f"{request.city_name or '-'}\t{request.urgency}\t{items}"
        )
    return 0


def _show(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Print one request with its lines, shipments and notes."""
    from storage import donations as store

    request = _request(session, args.ref)
    _out(f"{request.ref}  {request.status}  {request.city_name}, {request.country_code}")
    _out(f"institution: {request.institution}\naddress: {request.delivery_address}")
    _out(f"urgency: {request.urgency}  needed by: {request.needed_by}  purpose: {request.purpose}")
    for line in store.request_lines(session=session, request_id=request.id or 0):
        _out(
            f"  line {line.id}: {line.item_id} requested {line.quantity} pledged "
            f"{line.quantity_pledged} shipped {line.quantity_shipped} delivered "
            f"{line.quantity_delivered}"
        )
    for shipment in store.shipments_of_request(session=session, request_id=request.id or 0):
        _out(f"  shipment {shipment.ref}: {shipment.status}")
    for note in store.notes_of(session=session, request_id=request.id or 0):
        _out(f"  {note.created_at:%Y-%m-%d} {note.kind}: {note.text or ''}")
    return 0


def _approve(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Approve a request."""
    from handlers import donations_service as service

    request = _request(session, args.ref)
    service.approve(session, request, now, None)
    _out(f"{request.ref} approved")
    return 0


def _decline(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Decline a request with a reason."""
    from handlers import donations_service as service

    request = _request(session, args.ref)
    service.decline(session, request, args.reason, now, None)
    _out(f"{request.ref} declined")
    return 0


def _ask(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Ask the official a question."""
    from handlers import donations_service as service

    request = _request(session, args.ref)
    note = service.ask(session, request, args.question, now, None)
    _out(f"{request.ref}: question {note.id} sent")
    return 0


def _donor(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Record a donor."""
    from handlers import donations_service as service

    donor = service.add_donor(
        session, args.name, now, None, kind=args.kind, country_code=args.country
    )
    _out(f"D{donor.id}\t{donor.name}")
    return 0


def _donors(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """List donors."""
    from storage import donations as store

    for donor in store.donors(session=session):
        _out(f"D{donor.id}\t{donor.country_code or '-'}\t{donor.kind}\t{donor.name}")
    return 0


def _pledge(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Record a pledge (for a request, or unsolicited)."""
    from handlers import donations_service as service
    from storage import donations as store

    donor = store.find_donor(session=session, text=args.donor)
    if donor is None:
        raise ValueError(f"no single donor matches {args.donor!r} (see `donations donors`)")
    request = _request(session, args.request) if args.request else None
    pledge = service.add_pledge(
        session, donor, _pairs(args.items), now, None, request=request,
        logistics_covered=args.logistics, note=args.note,
    )  # fmt: skip
    _out(f"{pledge.ref}\t{donor.name}\t{pledge.status}")
    return 0


def _matches(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Propose matches, or confirm or reject one."""
    from handlers import donations_match
    from handlers import donations_service as service
    from storage import donations as store

    chosen = args.confirm or args.reject
    if chosen is not None:
        match = store.get_match(session=session, match_id=chosen)
        if match is None:
            raise ValueError(f"no match {chosen}")
        if args.confirm is not None:
            service.confirm_match(session, match, now, None, args.quantity)
            _out(f"match {match.id} confirmed: {match.quantity}")
        else:
            service.reject_match(session, match, now, None)
            _out(f"match {match.id} rejected")
        return 0
    for match in donations_match.propose(session=session, now=now):
        rline = store.get_request_line(session=session, line_id=match.request_line_id)
        pline = store.get_pledge_line(session=session, line_id=match.pledge_line_id)
        assert rline is not None and pline is not None
        request = store.get_request(session=session, request_id=rline.request_id)
        pledge = store.get_pledge(session=session, pledge_id=pline.pledge_id)
        assert request is not None and pledge is not None
        _out(
            f"M{match.id}\tscore {match.score}\t{pledge.ref} {pline.item_id} → "
            f"{request.ref} {rline.item_id} ({request.city_name}, {request.country_code})\t"
            f"{match.quantity}"
        )
    return 0


def _ship(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Ship a pledge's confirmed matches."""
    from handlers import donations_service as service
    from storage import donations as store

    pledge = store.pledge_by_ref(session=session, ref=args.pledge)
    if pledge is None:
        raise ValueError(f"no pledge {args.pledge}")
    parts = [(int(m), q) for m, q in _pairs(args.part)] or None
    for shipment in service.ship(
        session, pledge, now, None, parts=parts, carrier_ref=args.carrier
    ):
        _out(f"{shipment.ref}\t{shipment.city_name}, {shipment.country_code}\t{shipment.status}")
    return 0


def _track(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Record a shipment status event (the officials get a delivery update)."""
    from handlers import donations_service as service
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
    delivered = {int(k): q for k, q in _pairs(args.delivered)} or None
    event, created = service.track(
        session, shipment, status, now, None, at=at, note=args.note, photo=args.photo,
        delivered=delivered,
    )  # fmt: skip
    _out(f"{shipment.ref}\t{event.status}\t{'recorded' if created else 'already recorded'}")
    return 0


def _impact(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Print the impact report (or the shipments behind one figure, or a CSV of every figure)."""
    from handlers.donations_catalogue import item_name
    from handlers.donations_report import key_label
    from storage import donations as store

    if args.trace:
        dimension, _, key = args.trace.partition("=")
        if dimension not in store.DIMENSIONS or not key:
            raise ValueError(
                f"--trace DIMENSION=KEY, DIMENSION one of {', '.join(store.DIMENSIONS)}"
            )
        if dimension == "donor" and not key.isdecimal():
            donor = store.find_donor(session=session, text=key)
            key = str(donor.id) if donor else key
        rows = store.figure_shipments(
            session=session, dimension=dimension, key=key, item_id=args.item,
            since=args.since, until=args.until, limit=100_000,
        )  # fmt: skip
        total = 0
        for row in rows:
            total += row.quantity
            _out(
                f"{row.shipment_ref}\t{row.delivered_month}\t{row.donor}\t{row.city_name}\t"
                f"{row.country_code}\t{row.item_id}\t{row.quantity}"
            )
        _out(f"total\t{len(rows)} shipment lines\t{total}")
        return 0
    dimensions = args.by or ["item", "country", "city", "donor", "year"]
    if "item" not in dimensions:
        dimensions = ["item", *dimensions]
    report = store.impact(
        session=session, since=args.since, until=args.until, dimensions=dimensions
    )
    period = f"{args.since or 'start'} – {args.until or 'now'}"
    _out(f"Impact report ({period}), from shipment records (delivered = arrived or handed over)")
    _out(
        f"{report.shipments} shipments from {report.donors} donors reached {report.cities} "
        f"cities in {len(report.countries)} countries: {', '.join(report.countries)}"
    )
    for dimension in dimensions:
        _out(f"\nby {dimension}:")
        for figure in report.by[dimension]:
            label = key_label(dimension, figure.key, report, "en") if dimension != "item" else ""
            _out(
                f"  {label + '  ' if label else ''}{item_name(figure.item_id, 'en')}\t"
                f"{figure.quantity:,}\t({figure.shipments} shipments)"
            )
    if report.under_way:
        _out("\nunder way (not delivered yet):")
        for figure in report.under_way:
            _out(f"  {item_name(figure.item_id, 'en')}\t{figure.quantity:,}\t({figure.shipments})")
    _out("\nEvery figure lists its shipments: citybot donations impact --trace country=GM")
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["dimension", "key", "label", "item", "quantity", "shipments"])
            for dimension in dimensions:
                for figure in report.by[dimension]:
                    writer.writerow(
                        [dimension, figure.key, key_label(dimension, figure.key, report, "en"),
                         figure.item_id, figure.quantity, figure.shipments]
                    )  # fmt: skip
        _out(f"written: {args.csv}")
    return 0


def _demo(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Load the 2020–2021 deliveries, then print the report they give."""
    from handlers import donations_demo

    loaded = donations_demo.load(session)
    session.commit()  # the records stay even if printing the report fails (a closed pipe)
    if loaded.already:
        _out("demo records were loaded before; nothing changed")
    else:
        _out(f"loaded {loaded.requests} deliveries ({loaded.shipments} shipments)")
    impact = argparse.Namespace(
        since=None, until=None, by=["country", "donor", "year"], trace=None, item=None, csv=None
    )
    return _impact(session, impact, now)


def _check(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Print broken quantity rules (none: exit 0)."""
    from storage import donations as store

    problems = store.check_invariants(session=session)
    for problem in problems:
        _out(problem)
    _out("quantities consistent" if not problems else f"{len(problems)} problems")
    return 0 if not problems else 1


ACTIONS = {
    "requests": _requests,
    "show": _show,
    "approve": _approve,
    "decline": _decline,
    "ask": _ask,
    "donor": _donor,
    "donors": _donors,
    "pledge": _pledge,
    "matches": _matches,
    "ship": _ship,
    "track": _track,
    "impact": _impact,
    "demo": _demo,
    "check": _check,
}
