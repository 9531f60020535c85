"""`citybot donations …` and the delivery-update sweep, on a temporary SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.cli import run
from bot.clock import FixedClock
from handlers import donations_demo
from scheduler.donations import notify_pending, sweeps
from storage import contacts
from storage import donations as store
from storage.db import make_engine, session_scope
from storage.donations import LineInput, RequestStatus, ShipmentStatus
from tests.handlers.test_donations_kit import outbox_rows


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the CLI at a fresh database file."""
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("STAFF_URNS", "")
    return url


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run the CLI and return its exit code and output."""
    code = run(["donations", *argv])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_demo_records_and_the_impact_report(
    cli_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seeds' deliveries load once; the report shows what they add up to, traceably."""
    code, out = cli(capsys, "demo")
    assert code == 0 and "loaded 14 deliveries (14 shipments)" in out
    assert "13 shipments from 8 donors reached 10 cities in 9 countries" in out
    assert "Surgical masks\t1,073,000\t(11 shipments)" in out
    assert "Protective suits\t1,000" in out and "Ventilators\t15" in out
    assert "under way (not delivered yet):\n  Surgical masks\t200,000\t(1)" in out
    code, again = cli(capsys, "demo")
    assert code == 0 and "loaded before; nothing changed" in again
    code, trace = cli(capsys, "impact", "--trace", "country=GM")
    assert code == 0 and trace.strip().endswith("total\t3 shipment lines\t220000")
    code, trace = cli(capsys, "impact", "--trace", "donor=FCSSC", "--since", "2021-01")
    assert code == 0 and "total\t2 shipment lines\t400000" in trace
    code, years = cli(capsys, "impact", "--by", "year")
    assert "2020  Surgical masks\t673,000" in years and "2021  Surgical masks\t400,000" in years
    assert cli(capsys, "check") == (0, "quantities consistent\n")


def test_staff_work_from_the_command_line(
    cli_db: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Approve, pledge, ship, track; a refused step says why and exits 1."""
    engine = make_engine(cli_db)
    from storage import migrate

    migrate.upgrade(engine=engine)
    now = datetime(2026, 11, 2, 9, tzinfo=UTC)
    with session_scope(engine) as session:
        official, _ = contacts.get_or_create_contact(session=session, urn="console:amina", now=now)
        request = store.create_request(
            session=session, now=now, contact_id=official.id, status=RequestStatus.SUBMITTED,
            lines=[LineInput("surgical_mask", "medical_mask", 20000)], city_name="Banjul",
            country_code="GM",
        )  # fmt: skip
        ref = request.ref or ""
    assert ref in cli(capsys, "requests")[1]
    assert cli(capsys, "approve", ref)[0] == 0
    code, out = cli(capsys, "approve", ref)
    assert code == 1 and "refused:" in out and "cannot go from" in out
    assert cli(capsys, "donor", "Provincial Government of Henan", "--country", "CN")[0] == 0
    code, out = cli(capsys, "pledge", "Henan", "surgical_mask=10000", "--request", ref)
    pledge_ref = out.split()[0]
    code, out = cli(capsys, "ship", pledge_ref)
    shipment_ref = out.split()[0]
    assert code == 0 and "Banjul, GM" in out
    assert cli(capsys, "track", shipment_ref, "dispatched", "--note", "by air")[0] == 0
    code, out = cli(capsys, "track", shipment_ref, "dispatched")
    assert code == 0 and "already recorded" in out
    code, out = cli(capsys, "track", shipment_ref, "arrived", "--at", "2026-11-05T10:00")
    assert code == 0
    code, out = cli(capsys, "show", ref)
    assert "requested 20000 pledged 10000 shipped 10000 delivered 10000" in out
    keys = [r.idempotency_key for r in outbox_rows(engine, "delivery_update")]
    assert len(keys) == 3 == len(set(keys))  # preparing, dispatched, arrived
    csv_file = tmp_path / "impact.csv"
    assert cli(capsys, "impact", "--csv", str(csv_file))[0] == 0
    assert "country,GM,Gambia,surgical_mask,10000,1" in csv_file.read_text()
    engine.dispose()


def test_sweep_tells_the_cities_of_events_recorded_without_updates(
    engine: Engine, clock: FixedClock
) -> None:
    """Events recorded without their updates (another tool) are sent by the sweep, once."""
    now = clock.now()
    with session_scope(engine) as session:
        official, _ = contacts.get_or_create_contact(session=session, urn="console:amina", now=now)
        request = store.create_request(
            session=session, now=now, contact_id=official.id, status=RequestStatus.SUBMITTED,
            lines=[LineInput("gloves", "gloves", 500)], city_name="Koidu", country_code="SL",
        )  # fmt: skip
        store.set_request_status(
            session=session, request=request, status=RequestStatus.APPROVED, now=now
        )
        donor = store.ensure_donor(session=session, name="CATIS", now=now)
        pledge = store.create_pledge(
            session=session,
            donor_id=donor.id or 0,
            lines=[LineInput("gloves", "gloves", 500)],
            now=now,
        )
        (rline,) = store.request_lines(session=session, request_id=request.id or 0)
        (pline,) = store.pledge_lines(session=session, pledge_id=pledge.id or 0)
        match = store.link(session=session, request_line_id=rline.id or 0,
                           pledge_line_id=pline.id or 0, quantity=500, now=now)  # fmt: skip
        shipment = store.create_shipment(
            session=session, pledge=pledge, parts=[(match.id or 0, 500)], now=now
        )
        store.record_event(
            session=session, shipment=shipment, status=ShipmentStatus.DISPATCHED, now=now
        )
    assert notify_pending(engine=engine, clock=clock) == 2
    assert notify_pending(engine=engine, clock=clock) == 0
    assert len(outbox_rows(engine, "delivery_update")) == 2
    (sweep,) = sweeps(engine=engine, clock=clock)
    assert sweep.id == "donation_updates" and sweep.run() == 0


def test_demo_data_is_a_faithful_list() -> None:
    """Every demo delivery names a known donor, catalogue items and dates in order."""
    from handlers.donations_catalogue import catalogue

    data = donations_demo.demo_data()
    for delivery in data["deliveries"]:
        assert delivery["donor"] in data["donors"], delivery["id"]
        assert set(delivery["items"]) <= set(catalogue().items), delivery["id"]
        dates = [
            delivery.get(k)
            for k in ("requested", "pledged", "dispatched", "arrived", "handed_over")
        ]
        known = [d for d in dates if d is not None]
        assert known == sorted(known), delivery["id"]
