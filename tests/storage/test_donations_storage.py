"""Donation storage on SQLite and PostgreSQL: state machines, quantities, reports, migration."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from storage import contacts
from storage import donations as store
from storage.db import session_scope
from storage.donations import (
    PLEDGE_TRANSITIONS,
    REQUEST_TRANSITIONS,
    SHIPMENT_TRANSITIONS,
    DonationError,
    LineInput,
    PledgeStatus,
    RequestStatus,
    ShipmentStatus,
)
from storage.donations_models import DonationShipmentEvent

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
MASKS = LineInput("surgical_mask", "medical_mask", 1000)
R, P, S = RequestStatus, PledgeStatus, ShipmentStatus


def request(
    session: Session,
    status: RequestStatus = R.APPROVED,
    *,
    lines: tuple[LineInput, ...] = (MASKS,),
    city: str = "Koidu",
    country: str = "SL",
    contact_id: int | None = None,
) -> Any:
    """A request driven to `status` through allowed transitions."""
    made = store.create_request(
        session=session, now=NOW, lines=lines, city_name=city, country_code=country,
        status=R.DRAFT if status in (R.DRAFT, R.CANCELLED) else R.SUBMITTED,
        contact_id=contact_id,
    )  # fmt: skip
    path = {
        R.INFO_REQUESTED: [R.INFO_REQUESTED],
        R.APPROVED: [R.APPROVED],
        R.DECLINED: [R.DECLINED],
        R.CANCELLED: [R.CANCELLED],
        R.COMPLETED: [R.APPROVED, R.COMPLETED],
    }.get(status, [])
    for step in path:
        store.set_request_status(session=session, request=made, status=step, now=NOW)
    return made


def donor(session: Session) -> int:
    """A donor's id."""
    return store.ensure_donor(session=session, name="Henan", now=NOW, country_code="CN").id or 0


def pledge(session: Session, status: PledgeStatus = P.OFFERED, quantity: int = 1000) -> Any:
    """A pledge of masks driven to `status`."""
    made = store.create_pledge(
        session=session,
        donor_id=donor(session),
        lines=[LineInput("surgical_mask", "medical_mask", quantity)],
        now=NOW,
    )
    path = {
        P.ACCEPTED: [P.ACCEPTED],
        P.FULFILLED: [P.ACCEPTED, P.FULFILLED],
        P.WITHDRAWN: [P.WITHDRAWN],
    }.get(status, [])
    for step in path:
        store.set_pledge_status(session=session, pledge=made, status=step, now=NOW)
    return made


def shipment(session: Session, status: ShipmentStatus = S.PREPARING, quantity: int = 600) -> Any:
    """A shipment of masks for an approved request, driven to `status`."""
    need = request(session)
    offer = pledge(session)
    (rline,) = store.request_lines(session=session, request_id=need.id)
    (pline,) = store.pledge_lines(session=session, pledge_id=offer.id)
    match = store.link(
        session=session, request_line_id=rline.id or 0, pledge_line_id=pline.id or 0,
        quantity=1000, now=NOW,
    )  # fmt: skip
    made = store.create_shipment(
        session=session, pledge=offer, parts=[(match.id or 0, quantity)], now=NOW
    )
    path = {
        S.DISPATCHED: [S.DISPATCHED],
        S.IN_TRANSIT: [S.DISPATCHED, S.IN_TRANSIT],
        S.CUSTOMS: [S.DISPATCHED, S.CUSTOMS],
        S.ARRIVED: [S.DISPATCHED, S.ARRIVED],
        S.HANDED_OVER: [S.DISPATCHED, S.ARRIVED, S.HANDED_OVER],
        S.CANCELLED: [S.CANCELLED],
    }.get(status, [])
    for step in path:
        store.record_event(session=session, shipment=made, status=step, now=NOW)
    return made


def snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every donation row, to show that a refused operation changed nothing."""
    session.flush()
    found = {}
    for name, table in SQLModel.metadata.tables.items():
        if name.startswith("donation_"):
            rows = session.execute(select(table).order_by(table.c.id)).all()
            found[name] = [tuple(row) for row in rows]
    return found


def transitions(
    session: Session,
    table: dict[Any, frozenset[Any]],
    make: Callable[[Session, Any], Any],
    move: Callable[[Session, Any, Any], Any],
) -> int:
    """Try every (from, to) pair: allowed ones move, forbidden ones raise and change nothing."""
    tried = 0
    for current in table:
        for target in table:
            row = make(session, current)
            assert row.status == current
            before = snapshot(session)
            if target in table[current]:
                move(session, row, target)
                assert row.status == target, (current, target)
            else:
                with pytest.raises(DonationError) as refused:
                    move(session, row, target)
                assert refused.value.key == "don_err_transition", (current, target)
                assert refused.value.values["current"] == current
                assert refused.value.values["target"] == target
                session.expire_all()
                assert snapshot(session) == before, (current, target)
            tried += 1
    return tried


def test_request_transitions(any_engine: Engine) -> None:
    """Every request transition of REQUEST_TRANSITIONS works; every other one is refused."""
    with session_scope(any_engine) as session:
        tried = transitions(
            session,
            REQUEST_TRANSITIONS,
            lambda s, status: request(s, status),
            lambda s, row, to: store.set_request_status(
                session=s, request=row, status=to, now=NOW
            ),
        )
    assert tried == 49


def test_pledge_transitions(any_engine: Engine) -> None:
    """Every pledge transition of PLEDGE_TRANSITIONS works; every other one is refused."""
    with session_scope(any_engine) as session:
        tried = transitions(
            session,
            PLEDGE_TRANSITIONS,
            lambda s, status: pledge(s, status),
            lambda s, row, to: store.set_pledge_status(session=s, pledge=row, status=to, now=NOW),
        )
    assert tried == 16


def _move_shipment(session: Session, row: Any, to: ShipmentStatus) -> None:
    """Record a shipment event; the current status again is an idempotent no-op, not a move."""
    if to == row.status:
        before = snapshot(session)
        event, created = store.record_event(session=session, shipment=row, status=to, now=NOW)
        assert not created and event.status == to and snapshot(session) == before
        return
    store.record_event(session=session, shipment=row, status=to, now=NOW)


def test_shipment_transitions(any_engine: Engine) -> None:
    """Every shipment transition works; every other one is refused (the same one is a no-op)."""
    table = {k: v | {k} for k, v in SHIPMENT_TRANSITIONS.items()}
    with session_scope(any_engine) as session:
        tried = transitions(session, table, lambda s, status: shipment(s, status), _move_shipment)
    assert tried == 49


def test_guards_refuse_with_a_reason_and_change_nothing(any_engine: Engine) -> None:
    """Cancel with shipments, complete while in transit, withdraw while preparing: refused."""
    with session_scope(any_engine) as session:
        sent = shipment(session, S.DISPATCHED)
        (need,) = store.requests_of_shipment(session=session, shipment_id=sent.id)
        before = snapshot(session)
        for status, key in (
            (R.CANCELLED, "don_err_has_shipments"),
            (R.COMPLETED, "don_err_in_transit"),
        ):
            with pytest.raises(DonationError) as refused:
                store.set_request_status(session=session, request=need, status=status, now=NOW)
            assert refused.value.key == key
        preparing = shipment(session, S.PREPARING)
        offer = store.get_pledge(session=session, pledge_id=preparing.pledge_id)
        assert offer is not None
        mid = snapshot(session)
        with pytest.raises(DonationError) as refused:
            store.set_pledge_status(session=session, pledge=offer, status=P.WITHDRAWN, now=NOW)
        assert refused.value.key == "don_err_preparing"
        session.expire_all()
        assert snapshot(session) == mid
        assert {k: v for k, v in snapshot(session).items()} != before  # the second shipment


def test_quantities_are_refused_beyond_each_bound(any_engine: Engine) -> None:
    """Over-pledging, over-shipping and over-delivering raise and leave nothing behind."""
    with session_scope(any_engine) as session:
        need = request(session)
        offer = pledge(session, quantity=5000)
        (rline,) = store.request_lines(session=session, request_id=need.id)
        (pline,) = store.pledge_lines(session=session, pledge_id=offer.id)
        before = snapshot(session)
        with pytest.raises(DonationError) as refused:
            store.link(session=session, request_line_id=rline.id or 0,
                       pledge_line_id=pline.id or 0, quantity=1001, now=NOW)  # fmt: skip
        assert refused.value.key == "don_err_over_request"
        session.expire_all()
        assert snapshot(session) == before
        match = store.link(session=session, request_line_id=rline.id or 0,
                           pledge_line_id=pline.id or 0, quantity=800, now=NOW)  # fmt: skip
        before = snapshot(session)
        with pytest.raises(DonationError) as refused:
            store.create_shipment(
                session=session, pledge=offer, parts=[(match.id or 0, 801)], now=NOW
            )
        assert refused.value.key == "don_err_over_match"
        session.expire_all()
        assert snapshot(session) == before
        sent = store.create_shipment(
            session=session, pledge=offer, parts=[(match.id or 0, 500)], now=NOW
        )
        store.record_event(session=session, shipment=sent, status=S.DISPATCHED, now=NOW)
        (sline,) = store.shipment_lines(session=session, shipment_id=sent.id or 0)
        with pytest.raises(DonationError) as refused:
            store.record_event(session=session, shipment=sent, status=S.ARRIVED, now=NOW,
                               delivered={sline.id or 0: 501})  # fmt: skip
        assert refused.value.key == "don_err_over_shipped"
        store.record_event(session=session, shipment=sent, status=S.ARRIVED, now=NOW,
                           delivered={sline.id or 0: 450})  # fmt: skip
        session.refresh(rline)
        assert (rline.quantity_pledged, rline.quantity_shipped, rline.quantity_delivered) == (
            800, 500, 450,
        )  # fmt: skip
        assert store.check_invariants(session=session) == []


def test_same_event_twice_is_one_row(any_engine: Engine) -> None:
    """Recording a status again returns the first event (and the unique key holds it once)."""
    with session_scope(any_engine) as session:
        sent = shipment(session, S.DISPATCHED)
        first, created = store.record_event(
            session=session, shipment=sent, status=S.IN_TRANSIT, now=NOW
        )
        again, created_again = store.record_event(
            session=session, shipment=sent, status=S.IN_TRANSIT, now=NOW + timedelta(hours=1)
        )
        assert created and not created_again and first.id == again.id
        rows = session.exec(
            select(DonationShipmentEvent).where(DonationShipmentEvent.shipment_id == sent.id)
        ).all()
        assert [e.status for e in rows] == ["preparing", "dispatched", "in_transit"]


def test_impact_report_adds_up_shipment_records(any_engine: Engine) -> None:
    """Totals by dimension equal the shipment lines listed behind them; reach is counted."""
    with session_scope(any_engine) as session:
        for city, country, quantity in (
            ("Banjul", "GM", 300),
            ("Banjul", "GM", 200),
            ("Koidu", "SL", 100),
        ):
            need = request(session, city=city, country=country)
            offer = pledge(session)
            (rline,) = store.request_lines(session=session, request_id=need.id)
            (pline,) = store.pledge_lines(session=session, pledge_id=offer.id)
            match = store.link(
                session=session, request_line_id=rline.id or 0, pledge_line_id=pline.id or 0,
                quantity=quantity, now=NOW,
            )  # fmt: skip
            sent = store.create_shipment(
                session=session, pledge=offer, parts=[(match.id or 0, quantity)], now=NOW
            )
            store.record_event(session=session, shipment=sent, status=S.DISPATCHED, now=NOW)
            store.record_event(session=session, shipment=sent, status=S.ARRIVED, now=NOW,
                               at=datetime(2020, 8, 15, tzinfo=UTC))  # fmt: skip
        shipment(session, S.IN_TRANSIT, quantity=70)  # under way: not counted as delivered
        report = store.impact(
            session=session, dimensions=("item", "country", "city", "donor", "year", "month")
        )
        assert [(f.key, f.item_id, f.quantity, f.shipments) for f in report.by["country"]] == [
            ("GM", "surgical_mask", 500, 2),
            ("SL", "surgical_mask", 100, 1),
        ]
        assert [(f.key, f.quantity) for f in report.by["city"]] == [
            ("GM/Banjul", 500),
            ("SL/Koidu", 100),
        ]
        assert [(f.key, f.quantity) for f in report.by["year"]] == [("2020", 600)]
        assert [(f.key, f.quantity) for f in report.by["month"]] == [("2020-08", 600)]
        assert (report.countries, report.cities, report.shipments, report.donors) == (
            ["GM", "SL"],
            2,
            3,
            1,
        )
        assert [(f.item_id, f.quantity) for f in report.under_way] == [("surgical_mask", 70)]
        for dimension in ("country", "city", "year"):
            for figure in report.by[dimension]:
                rows = store.figure_shipments(
                    session=session, dimension=dimension, key=figure.key, item_id=figure.item_id
                )
                assert sum(r.quantity for r in rows) == figure.quantity
                assert len({r.shipment_ref for r in rows}) == figure.shipments
        donor_figure = report.by["donor"][0]
        rows = store.figure_shipments(session=session, dimension="donor", key=donor_figure.key)
        assert sum(r.quantity for r in rows) == donor_figure.quantity == 600
        assert store.impact(session=session, since="2021-01").by["item"] == []


def test_open_requests_and_summary(any_engine: Engine) -> None:
    """The staff engineer's segment and report helpers."""
    with session_scope(any_engine) as session:
        ids = [
            contacts.get_or_create_contact(session=session, urn=f"console:{n}", now=NOW)[0].id
            for n in range(4)
        ]
        request(session, R.SUBMITTED, contact_id=ids[0])
        request(session, R.APPROVED, contact_id=ids[1])
        request(session, R.DECLINED, contact_id=ids[2])
        request(session, R.DRAFT, contact_id=ids[3])
        request(session, R.APPROVED, contact_id=ids[0])
        assert store.contacts_with_open_requests(session=session) == [ids[0], ids[1]]
        shipment(session, S.ARRIVED, quantity=250)
        summary = store.summary(session=session)
    assert summary["requests"] == {"submitted": 1, "approved": 3, "declined": 1, "draft": 1}
    assert summary["requests_open"] == 4
    assert summary["quantities"] == {
        "requested": 5000,
        "pledged": 1000,
        "shipped": 250,
        "delivered": 250,
    }
    assert summary["delivered_by_item"] == {"surgical_mask": 250}
    assert (summary["countries_benefited"], summary["cities_benefited"]) == (1, 1)
    assert summary["shipments"] == {"arrived": 1} and summary["pledges"] == {"accepted": 1}


def test_migration_creates_exactly_the_donation_tables(any_engine: Engine) -> None:
    """After `upgrade head`, autogenerate finds nothing to change in the donation tables."""
    with any_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert [d for d in differences if "donation" in repr(d)] == []
    names = {t for t in SQLModel.metadata.tables if t.startswith("donation_")}
    assert len(names) == 10


def test_references_are_short_unique_and_read_loosely() -> None:
    """R-7K3F: four symbols up to 923,521 rows, then five; no 0/O/1/I/L; typing is forgiving."""
    refs = {store.make_ref("R", n) for n in range(1, 200_001)}
    assert len(refs) == 200_000
    assert all(len(r) == 6 for r in refs) and not any(c in r[2:] for r in refs for c in "01OIL")
    assert len(store.make_ref("R", 31**4)) == 7
    ref = store.make_ref("R", 1)
    loose = ref.lower().replace("-", " ")
    assert store.parse_ref(loose) == ref and store.parse_ref(f" {ref[0]}#{ref[2:]} ") == ref
    assert store.parse_ref("hello") is None and store.parse_ref("R-10OL") is None
