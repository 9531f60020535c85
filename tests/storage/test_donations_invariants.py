"""Property: random sequences of donation operations keep every line's quantities consistent.

After each operation, whether it succeeded or was refused, for every request line
0 ≤ delivered ≤ shipped ≤ pledged ≤ requested, and each roll-up equals the rows it sums
(storage.donations.check_invariants). A refused operation changes no row at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from storage import donations as store
from storage.db import create_all, make_engine
from storage.donations import (
    DonationError,
    LineInput,
    MatchStatus,
    PledgeStatus,
    RequestStatus,
    ShipmentStatus,
)
from storage.donations_models import DonationMatch, DonationShipment, DonationShipmentLine

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
GROUPS = (("surgical_mask", "medical_mask"), ("gloves", "gloves"))

index = st.integers(min_value=0, max_value=5)
amount = st.one_of(st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=160))
SHIPPING = st.one_of(
    st.tuples(st.just("link"), index, index, amount),
    st.tuples(st.just("ship"), index, amount),
    st.tuples(st.just("event"), index, st.sampled_from(list(ShipmentStatus))),
)
OPERATIONS = st.one_of(
    SHIPPING,
    SHIPPING,
    st.tuples(st.just("pledge"), st.integers(0, 1), amount),
    st.tuples(st.just("link"), index, index, amount),
    st.tuples(st.just("propose"), index, index, amount),
    st.tuples(st.just("confirm"), index, st.one_of(st.none(), amount)),
    st.tuples(st.just("reject"), index),
    st.tuples(st.just("ship"), index, amount),
    st.tuples(st.just("event"), index, st.sampled_from(list(ShipmentStatus))),
    st.tuples(st.just("deliver"), index, amount),
    st.tuples(st.just("pledge_status"), index, st.sampled_from(list(PledgeStatus))),
    st.tuples(st.just("request_status"), index, st.sampled_from(list(RequestStatus))),
    st.tuples(st.just("line_quantity"), index, amount),
)


@pytest.fixture(scope="module")
def memory() -> Iterator[Engine]:
    """One in-memory database; each example empties the donation tables."""
    engine = make_engine("sqlite://")
    create_all(engine)
    yield engine
    engine.dispose()


def _pick(rows: list[Any], i: int) -> Any:
    """The i-th row modulo the count, or None."""
    return rows[i % len(rows)] if rows else None


def _dump(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every donation row."""
    session.flush()
    return {
        name: [tuple(r) for r in session.execute(select(table).order_by(table.c.id)).all()]
        for name, table in SQLModel.metadata.tables.items()
        if name.startswith("donation_")
    }


def _apply(session: Session, op: tuple[Any, ...], now: datetime) -> None:
    """Run one operation on whatever rows the indexes pick."""
    kind = op[0]
    requests = store.requests_by_status(session=session, statuses=list(RequestStatus), limit=99)
    rlines = [
        line
        for r in requests
        for line in store.request_lines(session=session, request_id=r.id or 0)
    ]
    pledges = store.pledges(session=session)
    plines = [
        line for p in pledges for line in store.pledge_lines(session=session, pledge_id=p.id or 0)
    ]
    shipments = list(session.exec(select(DonationShipment).order_by(DonationShipment.id)))
    if kind == "pledge":
        item, group = GROUPS[op[1]]
        donor = store.find_donor(session=session, text="D")
        assert donor is not None
        store.create_pledge(session=session, donor_id=donor.id or 0,
                            lines=[LineInput(item, group, op[2])], now=now)  # fmt: skip
    elif kind in ("link", "propose") and rlines and plines:
        pline = _pick(plines, op[2])
        same = [line for line in rlines if line.item_group == pline.item_group]
        rline = _pick(same if kind == "link" else rlines, op[1]) or _pick(rlines, op[1])
        move = store.link if kind == "link" else store.propose_match
        room = min(
            rline.quantity - rline.quantity_pledged, pline.quantity - pline.quantity_matched
        )
        quantity = op[3] if op[3] % 4 == 0 else min(op[3], room)  # some too many
        move(session=session, request_line_id=rline.id, pledge_line_id=pline.id,
             quantity=quantity, now=now)  # fmt: skip
    elif kind in ("confirm", "reject"):
        match = _pick(list(session.exec(select(DonationMatch).order_by(DonationMatch.id))), op[1])
        if match is not None and kind == "confirm":
            store.confirm_match(session=session, match=match, now=now, quantity=op[2])
        elif match is not None:
            store.reject_match(session=session, match=match, now=now)
    elif kind == "ship":
        confirmed = list(
            session.exec(
                select(DonationMatch)
                .where(DonationMatch.status == MatchStatus.CONFIRMED)
                .order_by(DonationMatch.id)
            )
        )
        match = _pick(confirmed, op[1])
        if match is not None:
            pline = store.get_pledge_line(session=session, line_id=match.pledge_line_id)
            assert pline is not None
            pledge = store.get_pledge(session=session, pledge_id=pline.pledge_id)
            assert pledge is not None
            available = match.quantity - match.quantity_shipped
            quantity = op[2] if op[2] % 3 == 0 else min(op[2], available)  # some too many
            store.create_shipment(
                session=session, pledge=pledge, parts=[(match.id, quantity)], now=now
            )
    elif kind == "event" and shipments:
        store.record_event(
            session=session, shipment=_pick(shipments, op[1]), status=op[2], now=now
        )
    elif kind == "deliver":
        lines = list(session.exec(select(DonationShipmentLine).order_by(DonationShipmentLine.id)))
        line = _pick(lines, op[1])
        if line is not None:
            store.set_delivered(session=session, line=line, quantity=op[2], now=now)
    elif kind == "pledge_status" and pledges:
        store.set_pledge_status(
            session=session, pledge=_pick(pledges, op[1]), status=op[2], now=now
        )
    elif kind == "request_status" and requests:
        store.set_request_status(
            session=session, request=_pick(requests, op[1]), status=op[2], now=now
        )
    elif kind == "line_quantity" and rlines:
        store.set_line_quantity(
            session=session, line=_pick(rlines, op[1]), quantity=op[2], now=now
        )


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=st.lists(OPERATIONS, min_size=8, max_size=30))
def test_quantities_stay_consistent_under_any_operations(
    memory: Engine, operations: list[tuple[Any, ...]]
) -> None:
    """Whatever happens, the invariants hold, and a refused operation leaves no trace."""
    with Session(memory, expire_on_commit=False) as session:
        for table in reversed(SQLModel.metadata.sorted_tables):
            if table.name.startswith("donation_"):
                session.execute(table.delete())
        for status in (RequestStatus.APPROVED, RequestStatus.APPROVED, RequestStatus.SUBMITTED):
            made = store.create_request(
                session=session, now=NOW, status=RequestStatus.SUBMITTED, city_name="Koidu",
                country_code="SL", lines=[LineInput("surgical_mask", "medical_mask", 100),
                                          LineInput("gloves", "gloves", 60)],
            )  # fmt: skip
            if status == RequestStatus.APPROVED:
                store.set_request_status(session=session, request=made, status=status, now=NOW)
        donor = store.ensure_donor(session=session, name="D", now=NOW)
        for (item, group), quantity in zip(GROUPS, (150, 80), strict=True):
            store.create_pledge(session=session, donor_id=donor.id or 0, now=NOW,
                                lines=[LineInput(item, group, quantity)])  # fmt: skip
        refused = 0
        for step, op in enumerate(operations):
            now = NOW + timedelta(minutes=step)
            before = _dump(session)
            try:
                _apply(session, op, now)
            except DonationError:
                refused += 1
                session.expire_all()
                assert _dump(session) == before, op
            assert store.check_invariants(session=session) == [], op
        session.rollback()
