"""Donors, pledges and matches (chat and CLI): record them, audit them, tell the officials."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlmodel import Session

from handlers.donations_catalogue import catalogue, item_name, quantity_text
from handlers.donations_notify import audit_action, tell
from handlers.i18n import t
from handlers.messages import Outgoing
from storage import donations as store
from storage.donations import DonationError, LineInput, PledgeStatus, RequestStatus
from storage.donations_models import DonationDonor, DonationMatch, DonationPledge, DonationRequest
from storage.models import Contact


def add_donor(
    session: Session,
    name: str,
    now: datetime,
    actor: int | None,
    *,
    kind: str = "other",
    country_code: str | None = None,
) -> DonationDonor:
    """Record a donor partner (or return the one of that name)."""
    donor = store.ensure_donor(
        session=session, name=name, now=now, kind=kind, country_code=country_code
    )
    audit_action(session, "donor", now, actor, f"D{donor.id}")
    return donor


def item_lines(
    items: Sequence[tuple[str, int]], description: str | None = None
) -> list[LineInput]:
    """Turn (item id or name, quantity) pairs into lines; unknown items are refused."""
    found: list[LineInput] = []
    for text, quantity in items:
        item = catalogue().find(text)
        if item is None:
            raise DonationError("don_err_unknown_item", item=text)
        found.append(
            LineInput(
                item_id=item.id,
                item_group=item.group,
                quantity=quantity,
                description=description if item.id == "other" else None,
            )
        )
    return found


def add_pledge(
    session: Session,
    donor: DonationDonor,
    items: Sequence[tuple[str, int]],
    now: datetime,
    actor: int | None,
    *,
    request: DonationRequest | None = None,
    logistics_covered: bool = False,
    available_on: date | None = None,
    note: str | None = None,
) -> DonationPledge:
    """Record a pledge; with a request, its lines are pledged to that request's lines at once."""
    lines = item_lines(items)
    if request is not None and request.status != RequestStatus.APPROVED:
        raise DonationError("don_err_request_not_approved", ref=request.ref or "?")
    pledge = store.create_pledge(
        session=session, donor_id=donor.id or 0, lines=lines, now=now,
        logistics_covered=logistics_covered, available_on=available_on, note=note,
        recorded_by=actor,
    )  # fmt: skip
    audit_action(session, "pledge", now, actor, pledge.ref or "", donor=donor.id)
    if request is not None:
        wanted = store.request_lines(session=session, request_id=request.id or 0)
        linked = 0
        for pline in store.pledge_lines(session=session, pledge_id=pledge.id or 0):
            for rline in wanted:
                left = min(
                    pline.quantity - pline.quantity_matched,
                    rline.quantity - rline.quantity_pledged,
                )
                if rline.item_group == pline.item_group and left > 0:
                    match = store.link(
                        session=session, request_line_id=rline.id or 0,
                        pledge_line_id=pline.id or 0, quantity=left, now=now,
                        actor_contact_id=actor,
                    )  # fmt: skip
                    tell_pledged(session, match, now)
                    linked += 1
        if not linked:
            raise DonationError("don_err_item_mismatch", wanted=request.ref or "?",
                                offered=", ".join(i for i, _ in items))  # fmt: skip
    return pledge


def tell_pledged(session: Session, match: DonationMatch, now: datetime) -> None:
    """Tell the official a partner pledged part of their request."""
    rline = store.get_request_line(session=session, line_id=match.request_line_id)
    pline = store.get_pledge_line(session=session, line_id=match.pledge_line_id)
    assert rline is not None and pline is not None
    request = store.get_request(session=session, request_id=rline.request_id)
    pledge = store.get_pledge(session=session, pledge_id=pline.pledge_id)
    assert request is not None and pledge is not None
    donor = store.get_donor(session=session, donor_id=pledge.donor_id)

    def build(lang: str, contact: Contact) -> Outgoing:
        return Outgoing(
            text=t(
                "don_pledged",
                lang,
                ref=request.ref,
                donor=donor.name if donor else "?",
                quantity=quantity_text(match.quantity, rline.item_id, lang),
                item=item_name(rline.item_id, lang, rline.description),
            ),  # fmt: skip
            meta={"ref": request.ref},
        )

    tell(session, request.contact_id, f"don:pledged:{match.id}", now, build)


def confirm_match(
    session: Session,
    match: DonationMatch,
    now: datetime,
    actor: int | None,
    quantity: int | None = None,
) -> DonationMatch:
    """Confirm a proposed match and tell the official."""
    store.confirm_match(
        session=session, match=match, now=now, quantity=quantity, actor_contact_id=actor
    )
    audit_action(session, "match_confirm", now, actor, f"M{match.id}", quantity=match.quantity)
    tell_pledged(session, match, now)
    return match


def reject_match(session: Session, match: DonationMatch, now: datetime, actor: int | None) -> None:
    """Reject a proposed match (it is not proposed again)."""
    store.reject_match(session=session, match=match, now=now, actor_contact_id=actor)
    audit_action(session, "match_reject", now, actor, f"M{match.id}")


def withdraw(session: Session, pledge: DonationPledge, now: datetime, actor: int | None) -> None:
    """Record a donor withdrawing (what was not shipped goes back to the requests)."""
    store.set_pledge_status(session=session, pledge=pledge, status=PledgeStatus.WITHDRAWN, now=now)
    audit_action(session, "withdraw", now, actor, pledge.ref or "")
