"""The impact report over 100,000 request lines and 50,000 shipments, SQLite and PostgreSQL.

Builds the records with bulk inserts (requests of two lines, pledges, matches, shipments of
two lines, most of them delivered, over 1,200 cities in 120 countries and four years), then
times `storage.donations.impact` (every dimension), `summary` and the shipments behind one
figure. Target: the report in under a second on each database.

    .venv/bin/python bench/donations_impact.py [--requests 50000] [--shipments 50000]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]   (or TEST_DATABASE_URL)
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, insert, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from handlers.donations_catalogue import catalogue  # noqa: E402
from storage import donations as store  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.donations_models import (  # noqa: E402
    DonationDonor,
    DonationMatch,
    DonationPledge,
    DonationPledgeLine,
    DonationRequest,
    DonationRequestLine,
    DonationShipment,
    DonationShipmentLine,
)

START = datetime(2020, 1, 1, tzinfo=UTC)
DELIVERED = ("arrived", "handed_over")
UNDER_WAY = ("preparing", "dispatched", "in_transit", "customs")


def chunks(rows: list[dict[str, Any]], size: int = 5000) -> Iterator[list[dict[str, Any]]]:
    """Cut rows into batches."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def fill(engine: Engine, requests: int, shipments: int, seed: int = 7) -> dict[str, int]:
    """Insert the records; return how many of each."""
    rng = random.Random(seed)
    items = [i for i in catalogue().items.values() if i.id != "other"]
    countries = [f"{chr(65 + a)}{chr(65 + b)}" for a in range(12) for b in range(10)]
    cities = [(countries[n % len(countries)], f"City {n}") for n in range(1200)]
    donors = [
        {"id": n, "name": f"Donor {n}", "kind": "ngo", "country_code": rng.choice(countries),
         "created_at": START}
        for n in range(1, 301)
    ]  # fmt: skip
    req_rows, line_rows = [], []
    for n in range(1, requests + 1):
        country, city = cities[n % len(cities)]
        when = START + timedelta(hours=n)
        req_rows.append(
            {"id": n, "ref": store.make_ref("R", n), "status": "approved", "source": "bench",
             "city_name": city, "country_code": country, "urgency": "high", "language": "en",
             "checks": {}, "created_at": when, "submitted_at": when, "updated_at": when}
        )  # fmt: skip
        for k in range(2):
            item = items[(n + k) % len(items)]
            line_rows.append(
                {"id": 2 * n - 1 + k, "request_id": n, "item_id": item.id,
                 "item_group": item.group, "quantity": 5000, "quantity_pledged": 0,
                 "quantity_shipped": 0, "quantity_delivered": 0}
            )  # fmt: skip
    pledge_rows, pline_rows, match_rows, ship_rows, sline_rows = [], [], [], [], []
    for n in range(1, shipments + 1):
        rid = (n - 1) % requests + 1
        donor = donors[n % len(donors)]
        country, city = cities[rid % len(cities)]
        status = DELIVERED[n % 2] if rng.random() < 0.8 else rng.choice(UNDER_WAY)
        arrived = START + timedelta(days=rng.randrange(4 * 365))
        pledge_rows.append(
            {"id": n, "ref": store.make_ref("P", n), "donor_id": donor["id"],
             "status": "accepted", "logistics_covered": False, "created_at": START,
             "updated_at": START}
        )  # fmt: skip
        ship_rows.append(
            {"id": n, "ref": store.make_ref("S", n), "pledge_id": n, "donor_id": donor["id"],
             "status": status, "city_name": city, "country_code": country,
             "created_at": arrived, "updated_at": arrived,
             "arrived_at": arrived if status in DELIVERED else None,
             "delivered_month": arrived.strftime("%Y-%m") if status in DELIVERED else None}
        )  # fmt: skip
        for k in range(2):
            line = line_rows[2 * (rid - 1) + k]
            quantity = rng.randrange(100, 2000)
            ident = 2 * n - 1 + k
            pline_rows.append(
                {"id": ident, "pledge_id": n, "item_id": line["item_id"],
                 "item_group": line["item_group"], "quantity": quantity,
                 "quantity_matched": quantity, "quantity_shipped": quantity}
            )  # fmt: skip
            match_rows.append(
                {"id": ident, "request_line_id": line["id"], "pledge_line_id": ident,
                 "status": "confirmed", "quantity": quantity, "quantity_shipped": quantity,
                 "score": 50.0, "created_at": START}
            )  # fmt: skip
            sline_rows.append(
                {"id": ident, "shipment_id": n, "match_id": ident,
                 "request_line_id": line["id"], "pledge_line_id": ident,
                 "item_id": line["item_id"], "quantity": quantity,
                 "quantity_delivered": quantity if status in DELIVERED else 0,
                 "donor_id": donor["id"], "country_code": country, "city_name": city,
                 "delivered_month": arrived.strftime("%Y-%m") if status in DELIVERED else None}
            )  # fmt: skip
    tables: list[tuple[Any, list[dict[str, Any]]]] = [
        (DonationDonor, donors),
        (DonationRequest, req_rows),
        (DonationRequestLine, line_rows),
        (DonationPledge, pledge_rows),
        (DonationPledgeLine, pline_rows),
        (DonationMatch, match_rows),
        (DonationShipment, ship_rows),
        (DonationShipmentLine, sline_rows),
    ]
    with engine.begin() as connection:
        for model, rows in tables:
            for batch in chunks(rows):
                connection.execute(insert(model.__table__), batch)  # type: ignore[attr-defined]
        if engine.dialect.name == "postgresql":
            for model, _ in tables:
                name = model.__tablename__
                connection.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                         f"(SELECT MAX(id) FROM {name}))")
                )  # fmt: skip
            connection.execute(text("ANALYZE"))
        else:
            connection.execute(text("ANALYZE"))
    return {
        "request lines": len(line_rows),
        "shipments": len(ship_rows),
        "shipment lines": len(sline_rows),
    }


def timed(work: Callable[[], object], runs: int = 5) -> tuple[float, float, object]:
    """Run `work` a few times; return the median and best seconds and the last result."""
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), result


def measure(name: str, engine: Engine, requests: int, shipments: int) -> None:
    """Fill one database and print the timings."""
    migrate.upgrade(engine=engine)
    start = time.perf_counter()
    counts = fill(engine, requests, shipments)
    loaded = time.perf_counter() - start
    print(f"\n{name}: {counts} loaded in {loaded:.1f} s")
    dims = ("item", "country", "city", "donor", "year")

    def report() -> store.Impact:
        with Session(engine) as session:
            return store.impact(session=session, dimensions=dims)

    median, best, result = timed(report)
    assert isinstance(result, store.Impact)
    delivered = sum(f.quantity for f in result.by["item"])
    print(
        f"  impact report (item, country, city, donor, year): median {median * 1000:.0f} ms, "
        f"best {best * 1000:.0f} ms — {result.shipments} shipments delivered, "
        f"{delivered:,} units, {result.cities} cities, {len(result.countries)} countries, "
        f"{sum(len(v) for v in result.by.values())} figures"
    )
    figure = result.by["country"][0]

    def trace() -> int:
        with Session(engine) as session:
            rows = store.figure_shipments(
                session=session, dimension="country", key=figure.key, item_id=figure.item_id
            )
        assert sum(r.quantity for r in rows) == figure.quantity
        return len(rows)

    median, best, count = timed(trace)
    print(f"  shipments behind one figure ({count} lines, sum checked): {median * 1000:.0f} ms")

    def summary() -> dict[str, Any]:
        with Session(engine) as session:
            return store.summary(session=session)

    median, best, _ = timed(summary)
    print(f"  summary(): median {median * 1000:.0f} ms")


def postgres_engine(url: str) -> tuple[Engine, Callable[[], None]]:
    """A fresh schema in the PostgreSQL database, dropped by the returned cleanup."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _path(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET search_path TO {schema}")
        cursor.close()
        dbapi_connection.commit()

    def cleanup() -> None:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    return engine, cleanup


def main() -> None:
    """Measure on SQLite, then on PostgreSQL when one is configured."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50_000, help="2 lines each")
    parser.add_argument("--shipments", type=int, default=50_000, help="2 lines each")
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL"))
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="citybot-bench-")
    engine = make_engine(f"sqlite:///{folder}/donations.db")
    measure("SQLite", engine, args.requests, args.shipments)
    engine.dispose()
    if args.postgres:
        engine, cleanup = postgres_engine(args.postgres)
        try:
            measure("PostgreSQL", engine, args.requests, args.shipments)
        finally:
            cleanup()
    else:
        print("\nPostgreSQL: skipped (pass --postgres URL or set TEST_DATABASE_URL)")


if __name__ == "__main__":
    main()
