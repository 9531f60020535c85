"""`citybot donations impact | demo | check`: the impact report, demo records, invariants."""

from __future__ import annotations

import argparse
import csv
from datetime import datetime

from sqlmodel import Session

from bot.cli_donations_io import out


def impact(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Print the impact report (or the shipments behind one figure, or a CSV of every figure)."""
    from handlers.donations_catalogue import item_name
    from handlers.donations_report import key_label
    from storage import donations as store

    if args.trace:
        dimension, _, key = args.trace.partition("=")
        if dimension not in store.DIMENSIONS or not key:
            raise ValueError(
                f"--trace DIMENSION=KEY, DIMENSION one of {', '.join(store.DIMENSIONS)}"
            )
        if dimension == "donor" and not key.isdecimal():
            donor = store.find_donor(session=session, text=key)
            key = str(donor.id) if donor else key
        rows = store.figure_shipments(
            session=session, dimension=dimension, key=key, item_id=args.item,
            since=args.since, until=args.until, limit=100_000,
        )  # fmt: skip
        total = 0
        for row in rows:
            total += row.quantity
            out(
                f"{row.shipment_ref}\t{row.delivered_month}\t{row.donor}\t{row.city_name}\t"
                f"{row.country_code}\t{row.item_id}\t{row.quantity}"
            )
        out(f"total\t{len(rows)} shipment lines\t{total}")
        return 0
    dimensions = args.by or ["item", "country", "city", "donor", "year"]
    if "item" not in dimensions:
        dimensions = ["item", *dimensions]
    report = store.impact(
        session=session, since=args.since, until=args.until, dimensions=dimensions
    )
    period = f"{args.since or 'start'} – {args.until or 'now'}"
    out(f"Impact report ({period}), from shipment records (delivered = arrived or handed over)")
    out(
        f"{report.shipments} shipments from {report.donors} donors reached {report.cities} "
        f"cities in {len(report.countries)} countries: {', '.join(report.countries)}"
    )
    for dimension in dimensions:
        out(f"\nby {dimension}:")
        for figure in report.by[dimension]:
            label = key_label(dimension, figure.key, report, "en") if dimension != "item" else ""
            out(
                f"  {label + '  ' if label else ''}{item_name(figure.item_id, 'en')}\t"
                f"{figure.quantity:,}\t({figure.shipments} shipments)"
            )
    if report.under_way:
        out("\nunder way (not delivered yet):")
        for figure in report.under_way:
            out(f"  {item_name(figure.item_id, 'en')}\t{figure.quantity:,}\t({figure.shipments})")
    out("\nEvery figure lists its shipments: citybot donations impact --trace country=GM")
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["dimension", "key", "label", "item", "quantity", "shipments"])
            for dimension in dimensions:
                for figure in report.by[dimension]:
                    writer.writerow(
                        [dimension, figure.key, key_label(dimension, figure.key, report, "en"),
                         figure.item_id, figure.quantity, figure.shipments]
                    )  # fmt: skip
        out(f"written: {args.csv}")
    return 0


def demo(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Load the 2020–2021 deliveries, then print the report they give."""
    from handlers import donations_demo

    loaded = donations_demo.load(session)
    session.commit()  # the records stay even if printing the report fails (a closed pipe)
    if loaded.already:
        out("demo records were loaded before; nothing changed")
    else:
        out(f"loaded {loaded.requests} deliveries ({loaded.shipments} shipments)")
    report = argparse.Namespace(
        since=None, until=None, by=["country", "donor", "year"], trace=None, item=None, csv=None
    )
    return impact(session, report, now)


def check(session: Session, args: argparse.Namespace, now: datetime) -> int:
    """Print broken quantity rules (none: exit 0)."""
    from storage import donations as store

    problems = store.check_invariants(session=session)
    for problem in problems:
        out(problem)
    out("quantities consistent" if not problems else f"{len(problems)} problems")
    return 0 if not problems else 1
