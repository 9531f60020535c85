"""The quantity rules of donations checked over every row (tests, `citybot donations check`)."""

from __future__ import annotations

from collections import Counter

from sqlmodel import Session, select

from storage.donations_models import (
    DonationMatch,
    DonationPledgeLine,
    DonationRequestLine,
    DonationShipment,
    DonationShipmentLine,
)
from storage.donations_states import DELIVERED, M, S


def check_invariants(*, session: Session) -> list[str]:
    """Return every broken quantity rule (an empty list when all hold)."""
    problems: list[str] = []
    confirmed: Counter[int] = Counter()
    by_pledge_line: Counter[int] = Counter()
    match_shipped: Counter[int] = Counter()
    for match in session.exec(select(DonationMatch)):
        if match.status == M.CONFIRMED:
            confirmed[match.request_line_id] += match.quantity
            by_pledge_line[match.pledge_line_id] += match.quantity
            match_shipped[match.pledge_line_id] += match.quantity_shipped
        if match.status in (M.RELEASED, M.PROPOSED, M.REJECTED) and match.quantity_shipped:
            problems.append(f"match {match.id}: {match.status} yet shipped")
        if not 0 <= match.quantity_shipped <= match.quantity:
            problems.append(
                f"match {match.id}: shipped {match.quantity_shipped} > {match.quantity}"
            )
    statuses = {sh.id: sh.status for sh in session.exec(select(DonationShipment))}
    shipped: Counter[int] = Counter()
    delivered: Counter[int] = Counter()
    per_match: Counter[int] = Counter()
    shipments_by_id = {sh.id: sh for sh in session.exec(select(DonationShipment))}
    for line in session.exec(select(DonationShipmentLine)):
        status = statuses[line.shipment_id]
        parent = shipments_by_id[line.shipment_id]
        copies = (line.donor_id, line.country_code, line.city_name, line.delivered_month)
        if copies != (
            parent.donor_id,
            parent.country_code,
            parent.city_name,
            parent.delivered_month,
        ):
            problems.append(f"shipment line {line.id}: report copies differ from its shipment")
        if status != S.CANCELLED:
            shipped[line.request_line_id] += line.quantity
            per_match[line.match_id] += line.quantity
        if status in DELIVERED:
            delivered[line.request_line_id] += line.quantity_delivered
        elif line.quantity_delivered:
            problems.append(f"shipment line {line.id}: delivered before arrival")
        if not 0 <= line.quantity_delivered <= line.quantity:
            problems.append(f"shipment line {line.id}: delivered > shipped")
    for match in session.exec(select(DonationMatch)):
        if per_match[match.id or 0] != match.quantity_shipped:
            problems.append(f"match {match.id}: shipped {match.quantity_shipped} ≠ lines")
    for rline in session.exec(select(DonationRequestLine)):
        rid = rline.id or 0
        if rline.quantity_pledged != confirmed[rid]:
            problems.append(f"request line {rid}: pledged {rline.quantity_pledged} ≠ matches")
        if rline.quantity_shipped != shipped[rid]:
            problems.append(f"request line {rid}: shipped {rline.quantity_shipped} ≠ shipments")
        if rline.quantity_delivered != delivered[rid]:
            problems.append(f"request line {rid}: delivered {rline.quantity_delivered} ≠ arrivals")
        chain = (rline.quantity_delivered, rline.quantity_shipped, rline.quantity_pledged)
        if not 0 <= chain[0] <= chain[1] <= chain[2] <= rline.quantity:
            problems.append(f"request line {rid}: 0 ≤ delivered ≤ shipped ≤ pledged ≤ requested")
    for pline in session.exec(select(DonationPledgeLine)):
        pid = pline.id or 0
        if pline.quantity_matched != by_pledge_line[pid]:
            problems.append(f"pledge line {pid}: matched ≠ confirmed matches")
        if pline.quantity_shipped != match_shipped[pid]:
            problems.append(f"pledge line {pid}: shipped ≠ matches shipped")
        if not 0 <= pline.quantity_shipped <= pline.quantity_matched <= pline.quantity:
            problems.append(f"pledge line {pid}: 0 ≤ shipped ≤ matched ≤ quantity")
    return problems
