"""Confirmed matches of a line, and giving back what a closed request or pledge did not ship."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from storage.donations_models import DonationMatch, DonationPledgeLine, DonationRequestLine
from storage.donations_plumbing import _locked
from storage.donations_states import M, MatchStatus


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
