"""Notes on donation requests: questions, answers, reasons, receipts and problems."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from storage.donations_models import DonationNote, DonationRequest
from storage.donations_states import R


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
