"""Matches of pledge lines to request lines: proposals, decisions, direct links, candidates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import exists
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, delete, select

from storage.donations_models import (
    DonationDonor,
    DonationMatch,
    DonationPledge,
    DonationPledgeLine,
    DonationRequest,
    DonationRequestLine,
)
from storage.donations_pledges import set_pledge_status
from storage.donations_plumbing import _atomic, _locked, _models
from storage.donations_states import (
    MATCH_TRANSITIONS,
    OPEN_PLEDGE,
    DonationError,
    M,
    MatchStatus,
    P,
    R,
    _check,
    _positive,
)


def get_match(*, session: Session, match_id: int) -> DonationMatch | None:
    """Return a match by id."""
    return session.get(DonationMatch, match_id)


def matches(
    *,
    session: Session,
    statuses: Sequence[str] | None = None,
    pledge_id: int | None = None,
    request_id: int | None = None,
) -> list[DonationMatch]:
    """Return matches, optionally of one pledge or one request, oldest first."""
    stmt = select(DonationMatch).order_by(col(DonationMatch.id))
    if statuses is not None:
        stmt = stmt.where(col(DonationMatch.status).in_(list(statuses)))
    if pledge_id is not None:
        stmt = stmt.join(
            DonationPledgeLine, col(DonationPledgeLine.id) == DonationMatch.pledge_line_id
        ).where(DonationPledgeLine.pledge_id == pledge_id)
    if request_id is not None:
        stmt = stmt.join(
            DonationRequestLine, col(DonationRequestLine.id) == DonationMatch.request_line_id
        ).where(DonationRequestLine.request_id == request_id)
    return list(session.exec(stmt))


def _check_match(
    session: Session, request_line: DonationRequestLine, pledge_line: DonationPledgeLine
) -> tuple[DonationRequest, DonationPledge]:
    """Refuse a match between lines of different items, a closed pledge or an unapproved need."""
    if request_line.item_group != pledge_line.item_group:
        raise DonationError(
            "don_err_item_mismatch", wanted=request_line.item_id, offered=pledge_line.item_id
        )
    request = session.get(DonationRequest, request_line.request_id)
    pledge = session.get(DonationPledge, pledge_line.pledge_id)
    assert request is not None and pledge is not None
    if request.status != R.APPROVED:
        raise DonationError("don_err_request_not_approved", ref=request.ref or "?")
    if pledge.status not in OPEN_PLEDGE:
        raise DonationError("don_err_pledge_closed", ref=pledge.ref or "?")
    return request, pledge


def propose_match(
    *,
    session: Session,
    request_line_id: int,
    pledge_line_id: int,
    quantity: int,
    now: datetime,
    score: float = 0.0,
) -> DonationMatch:
    """Store a proposal (or refresh the one already proposed for the same two lines)."""
    _positive(quantity)
    request_line = session.get(DonationRequestLine, request_line_id)
    pledge_line = session.get(DonationPledgeLine, pledge_line_id)
    if request_line is None or pledge_line is None:
        raise DonationError("don_err_not_found", ref=f"{request_line_id}/{pledge_line_id}")
    _check_match(session, request_line, pledge_line)
    stmt = select(DonationMatch).where(
        DonationMatch.request_line_id == request_line_id,
        DonationMatch.pledge_line_id == pledge_line_id,
        DonationMatch.status == M.PROPOSED,
    )
    match = session.exec(stmt).first()
    if match is None:
        match = DonationMatch(
            request_line_id=request_line_id,
            pledge_line_id=pledge_line_id,
            created_at=now,
        )
    match.quantity = quantity
    match.score = score
    session.add(match)
    session.flush()
    return match


def drop_proposals(*, session: Session, keep: Sequence[int] = ()) -> int:
    """Delete proposals not in `keep` (they are suggestions, recomputed on demand)."""
    stmt = delete(DonationMatch).where(col(DonationMatch.status) == M.PROPOSED)
    if keep:
        stmt = stmt.where(col(DonationMatch.id).not_in(list(keep)))
    result = session.exec(stmt)
    return int(result.rowcount or 0)


def confirm_match(
    *,
    session: Session,
    match: DonationMatch,
    now: datetime,
    quantity: int | None = None,
    actor_contact_id: int | None = None,
) -> DonationMatch:
    """Confirm a proposal: its quantity becomes pledged to the request line."""
    _check("match", str(match.id), MATCH_TRANSITIONS, MatchStatus(match.status), M.CONFIRMED)
    amount = _positive(quantity if quantity is not None else match.quantity)
    with _atomic(session):
        request_line: DonationRequestLine = _locked(
            session, DonationRequestLine, match.request_line_id
        )
        pledge_line: DonationPledgeLine = _locked(
            session, DonationPledgeLine, match.pledge_line_id
        )
        _, pledge = _check_match(session, request_line, pledge_line)
        remaining = request_line.quantity - request_line.quantity_pledged
        available = pledge_line.quantity - pledge_line.quantity_matched
        if amount > remaining:
            raise DonationError("don_err_over_request", remaining=remaining)
        if amount > available:
            raise DonationError("don_err_over_pledge", available=available)
        request_line.quantity_pledged += amount
        pledge_line.quantity_matched += amount
        match.quantity = amount
        match.status = M.CONFIRMED
        match.decided_at = now
        match.decided_by = actor_contact_id
        session.add_all([request_line, pledge_line, match])
        if pledge.status == P.OFFERED:
            set_pledge_status(session=session, pledge=pledge, status=P.ACCEPTED, now=now)
    return match


def reject_match(
    *, session: Session, match: DonationMatch, now: datetime, actor_contact_id: int | None = None
) -> DonationMatch:
    """Reject a proposal: the same two lines are not proposed again."""
    _check("match", str(match.id), MATCH_TRANSITIONS, MatchStatus(match.status), M.REJECTED)
    match.status = M.REJECTED
    match.decided_at = now
    match.decided_by = actor_contact_id
    session.add(match)
    session.flush()
    return match


def link(
    *,
    session: Session,
    request_line_id: int,
    pledge_line_id: int,
    quantity: int,
    now: datetime,
    actor_contact_id: int | None = None,
) -> DonationMatch:
    """Pledge part of a pledge line to a request line directly (a proposal confirmed at once)."""
    with _atomic(session):
        match = DonationMatch(
            request_line_id=request_line_id,
            pledge_line_id=pledge_line_id,
            quantity=_positive(quantity),
            created_at=now,
        )
        session.add(match)
        session.flush()
        confirm_match(session=session, match=match, now=now, actor_contact_id=actor_contact_id)
    return match


@dataclass(frozen=True, slots=True)
class Candidate:
    """An open request line and a pledge line that could cover it (same item group)."""

    request_line_id: int
    request_id: int
    request_ref: str
    request_item: str
    remaining: int
    urgency: str
    needed_by: date | None
    request_country: str | None
    requested_at: datetime
    pledge_line_id: int
    pledge_id: int
    pledge_ref: str
    pledge_item: str
    available: int
    logistics_covered: bool
    donor_name: str
    donor_country: str | None


def match_candidates(*, session: Session) -> list[Candidate]:
    """Pairs of approved request lines still short and open pledge lines with some left."""
    rl, r = _models(DonationRequestLine, DonationRequest)
    pl, p, d = _models(DonationPledgeLine, DonationPledge, DonationDonor)
    rejected = exists().where(
        col(DonationMatch.request_line_id) == rl.id,
        col(DonationMatch.pledge_line_id) == pl.id,
        col(DonationMatch.status) == M.REJECTED,
    )
    stmt = (
        sa_select(
            rl.id,
            r.id,
            r.ref,
            rl.item_id,
            rl.quantity - rl.quantity_pledged,
            r.urgency,
            r.needed_by,
            r.country_code,
            r.created_at,
            pl.id,
            p.id,
            p.ref,
            pl.item_id,
            pl.quantity - pl.quantity_matched,
            p.logistics_covered,
            d.name,
            d.country_code,
        )  # fmt: skip
        .select_from(rl)
        .join(r, col(r.id) == rl.request_id)
        .join(pl, col(pl.item_group) == rl.item_group)
        .join(p, col(p.id) == pl.pledge_id)
        .join(d, col(d.id) == p.donor_id)
        .where(
            r.status == R.APPROVED,
            col(rl.quantity) > col(rl.quantity_pledged),
            col(p.status).in_(list(OPEN_PLEDGE)),
            col(pl.quantity) > col(pl.quantity_matched),
            rl.item_group != "other",
            ~rejected,
        )
        .order_by(col(rl.id), col(pl.id))
    )
    return [Candidate(*row) for row in session.execute(stmt)]
