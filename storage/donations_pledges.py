"""Donors and their pledges: recording, lookups and the pledge workflow."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.donations_models import (
    DonationDonor,
    DonationPledge,
    DonationPledgeLine,
    DonationShipment,
)
from storage.donations_plumbing import LineInput, _atomic
from storage.donations_refs import make_ref, parse_ref
from storage.donations_release import _confirmed_matches, _matches_in, _release
from storage.donations_states import (
    PLEDGE_TRANSITIONS,
    UNDER_WAY,
    DonationError,
    M,
    P,
    PledgeStatus,
    S,
    _check,
    _positive,
)


def ensure_donor(
    *,
    session: Session,
    name: str,
    now: datetime,
    kind: str = "other",
    country_code: str | None = None,
    note: str | None = None,
) -> DonationDonor:
    """Return the donor with this name (any case), recording it the first time."""
    cleaned = " ".join(name.split())[:200]
    if not cleaned:
        raise DonationError("don_err_donor_name")
    stmt = select(DonationDonor).where(func.lower(col(DonationDonor.name)) == cleaned.lower())
    found = session.exec(stmt).first()
    if found is not None:
        return found
    donor = DonationDonor(
        name=cleaned,
        kind=kind,
        country_code=(country_code or "").upper()[:2] or None,
        note=note,
        created_at=now,
    )
    session.add(donor)
    session.flush()
    return donor


def find_donor(*, session: Session, text: str) -> DonationDonor | None:
    """Find a donor by id (`D3`, `3`), exact name, or a name part only one donor has."""
    cleaned = text.strip()
    digits = cleaned[1:] if cleaned[:1] in ("D", "d") else cleaned
    if digits.isdecimal():
        return session.get(DonationDonor, int(digits))
    exact = session.exec(
        select(DonationDonor).where(func.lower(col(DonationDonor.name)) == cleaned.lower())
    ).first()
    if exact is not None:
        return exact
    like = f"%{cleaned.lower()}%"
    found = list(
        session.exec(
            select(DonationDonor).where(func.lower(col(DonationDonor.name)).like(like)).limit(2)
        )
    )
    return found[0] if len(found) == 1 else None


def donors(*, session: Session) -> list[DonationDonor]:
    """Return every donor, by name."""
    return list(session.exec(select(DonationDonor).order_by(col(DonationDonor.name))))


def get_donor(*, session: Session, donor_id: int) -> DonationDonor | None:
    """Return a donor by id."""
    return session.get(DonationDonor, donor_id)


def create_pledge(
    *,
    session: Session,
    donor_id: int,
    lines: Sequence[LineInput],
    now: datetime,
    logistics_covered: bool = False,
    available_on: date | None = None,
    note: str | None = None,
    recorded_by: int | None = None,
) -> DonationPledge:
    """Record a pledge (offered) with its lines and give it its reference."""
    if session.get(DonationDonor, donor_id) is None:
        raise DonationError("don_err_not_found", ref=f"D{donor_id}")
    if not lines:
        raise DonationError("don_err_no_lines")
    for line in lines:
        _positive(line.quantity)
    with _atomic(session):
        pledge = DonationPledge(
            donor_id=donor_id,
            logistics_covered=logistics_covered,
            available_on=available_on,
            note=note,
            recorded_by=recorded_by,
            created_at=now,
            updated_at=now,
        )
        session.add(pledge)
        session.flush()
        assert pledge.id is not None
        pledge.ref = make_ref("P", pledge.id)
        for line in lines:
            session.add(
                DonationPledgeLine(
                    pledge_id=pledge.id,
                    item_id=line.item_id,
                    item_group=line.item_group,
                    quantity=line.quantity,
                )
            )
    return pledge


def pledge_by_ref(*, session: Session, ref: str) -> DonationPledge | None:
    """Return the pledge a typed reference names."""
    canonical = parse_ref(ref)
    if canonical is None or not canonical.startswith("P-"):
        return None
    return session.exec(select(DonationPledge).where(DonationPledge.ref == canonical)).first()


def get_pledge(*, session: Session, pledge_id: int) -> DonationPledge | None:
    """Return a pledge by id."""
    return session.get(DonationPledge, pledge_id)


def pledge_lines(*, session: Session, pledge_id: int) -> list[DonationPledgeLine]:
    """Return a pledge's lines."""
    stmt = (
        select(DonationPledgeLine)
        .where(DonationPledgeLine.pledge_id == pledge_id)
        .order_by(col(DonationPledgeLine.id))
    )
    return list(session.exec(stmt))


def get_pledge_line(*, session: Session, line_id: int) -> DonationPledgeLine | None:
    """Return a pledge line by id."""
    return session.get(DonationPledgeLine, line_id)


def pledges(*, session: Session, statuses: Sequence[str] | None = None) -> list[DonationPledge]:
    """Return pledges (in some statuses), oldest first."""
    stmt = select(DonationPledge).order_by(col(DonationPledge.id))
    if statuses is not None:
        stmt = stmt.where(col(DonationPledge.status).in_(list(statuses)))
    return list(session.exec(stmt))


def set_pledge_status(
    *, session: Session, pledge: DonationPledge, status: PledgeStatus, now: datetime
) -> DonationPledge:
    """Move a pledge along (see PLEDGE_TRANSITIONS); closing it releases what was not shipped."""
    _check("pledge", pledge.ref, PLEDGE_TRANSITIONS, PledgeStatus(pledge.status), status)
    if status in (P.WITHDRAWN, P.FULFILLED) and _preparing_for_pledge(session, pledge.id or 0):
        raise DonationError("don_err_preparing", ref=pledge.ref or "?")
    with _atomic(session):
        if status in (P.WITHDRAWN, P.FULFILLED):
            for line in pledge_lines(session=session, pledge_id=pledge.id or 0):
                for match in _confirmed_matches(session, pledge_line_id=line.id):
                    _release(session, match, now)
                for match in _matches_in(session, line.id or 0, M.PROPOSED):
                    match.status = M.REJECTED
                    match.decided_at = now
                    session.add(match)
        pledge.status = status
        pledge.updated_at = now
        session.add(pledge)
    return pledge


def _preparing_for_pledge(session: Session, pledge_id: int) -> bool:
    """Say whether a shipment of this pledge is still being prepared."""
    stmt = select(DonationShipment.id).where(
        DonationShipment.pledge_id == pledge_id, DonationShipment.status == S.PREPARING
    )
    return session.exec(stmt.limit(1)).first() is not None


def _maybe_fulfil(session: Session, pledge_id: int, now: datetime) -> bool:
    """Mark an accepted pledge fulfilled once all of it was shipped and nothing is under way."""
    pledge = session.get(DonationPledge, pledge_id)
    if pledge is None or pledge.status != P.ACCEPTED:
        return False
    lines = pledge_lines(session=session, pledge_id=pledge_id)
    if not all(line.quantity_shipped >= line.quantity for line in lines):
        return False
    stmt = select(DonationShipment.id).where(
        DonationShipment.pledge_id == pledge_id,
        col(DonationShipment.status).in_(list(UNDER_WAY)),
    )
    if session.exec(stmt.limit(1)).first() is not None:
        return False
    set_pledge_status(session=session, pledge=pledge, status=P.FULFILLED, now=now)
    return True
