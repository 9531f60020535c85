"""`citybot donations requests | show | approve | decline | ask`: reviewing requests."""

from __future__ import annotations

import argparse
from datetime import datetime

from sqlmodel import Session

from bot.cli_donations_io import find_request, out


def list_requests(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Print the review queue."""
    from storage import donations as store

    statuses = args.status or ["submitted", "info_requested"]
    for request in store.requests_by_status(session=session, statuses=statuses, limit=200):
        lines = store.request_lines(session=session, request_id=request.id or 0)
        items = ", ".join(f"{line.item_id}={line.quantity}" for line in lines)
        out(
            f"{request.ref}\t{request.status}\t{request.country_code or '-'}\t"
            f"{request.city_name or '-'}\t{request.urgency}\t{items}"
        )
    return 0


def show(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Print one request with its lines, shipments and notes."""
    from storage import donations as store

    request = find_request(session, args.ref)
    out(f"{request.ref}  {request.status}  {request.city_name}, {request.country_code}")
    out(f"institution: {request.institution}\naddress: {request.delivery_address}")
    out(f"urgency: {request.urgency}  needed by: {request.needed_by}  purpose: {request.purpose}")
    for line in store.request_lines(session=session, request_id=request.id or 0):
        out(
            f"  line {line.id}: {line.item_id} requested {line.quantity} pledged "
            f"{line.quantity_pledged} shipped {line.quantity_shipped} delivered "
            f"{line.quantity_delivered}"
        )
    for shipment in store.shipments_of_request(session=session, request_id=request.id or 0):
        out(f"  shipment {shipment.ref}: {shipment.status}")
    for note in store.notes_of(session=session, request_id=request.id or 0):
        out(f"  {note.created_at:%Y-%m-%d} {note.kind}: {note.text or ''}")
    return 0


def approve(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Approve a request."""
    from handlers import donations_review

    request = find_request(session, args.ref)
    donations_review.approve(session, request, now, None)
    out(f"{request.ref} approved")
    return 0


def decline(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Decline a request with a reason."""
    from handlers import donations_review

    request = find_request(session, args.ref)
    donations_review.decline(session, request, args.reason, now, None)
    out(f"{request.ref} declined")
    return 0


def ask(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Ask the official a question."""
    from handlers import donations_review

    request = find_request(session, args.ref)
    note = donations_review.ask(session, request, args.question, now, None)
    out(f"{request.ref}: question {note.id} sent")
    return 0
