"""Donation reports from shipment records: impact figures, the shipments behind them, summary."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import distinct, func, literal
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from storage.donations_models import (
    DonationDonor,
    DonationPledge,
    DonationRequest,
    DonationRequestLine,
    DonationShipment,
    DonationShipmentLine,
)
from storage.donations_plumbing import _models
from storage.donations_states import OPEN_REQUEST, UNDER_WAY, R

DIMENSIONS = ("item", "country", "city", "donor", "year", "month")


@dataclass(frozen=True, slots=True)
class Figure:
    """One total of a report: a dimension's key (country code, city …), an item, a quantity."""

    key: str
    item_id: str
    quantity: int
    shipments: int


@dataclass(slots=True)
class Impact:
    """What the shipment records say: delivered totals by dimension, and what is under way."""

    since: str | None
    until: str | None
    by: dict[str, list[Figure]] = field(default_factory=dict)
    under_way: list[Figure] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    cities: int = 0
    shipments: int = 0
    donors: int = 0
    donor_names: dict[str, str] = field(default_factory=dict)


def _dimension(name: str) -> Any:
    """The shipment-line expression a report dimension groups by."""
    (sl,) = _models(DonationShipmentLine)
    if name == "item":
        return literal("all")
    if name == "country":
        return func.coalesce(sl.country_code, "")
    if name == "city":
        return func.coalesce(sl.country_code, "") + "/" + func.coalesce(sl.city_name, "")
    if name == "donor":
        return sl.donor_id
    if name == "year":
        return func.substr(sl.delivered_month, 1, 4)
    if name == "month":
        return sl.delivered_month
    raise ValueError(f"unknown dimension {name!r}")


def _delivered_filter(since: str | None, until: str | None) -> list[Any]:
    """Delivered shipment lines (arrived or handed over) in the months given (inclusive)."""
    (sl,) = _models(DonationShipmentLine)
    found: list[Any] = [sl.delivered_month.is_not(None), sl.quantity_delivered > 0]
    if since:
        found.append(sl.delivered_month >= since)
    if until:
        found.append(sl.delivered_month <= until)
    return found


def _grouped(session: Session, keys: Sequence[Any], where: list[Any]) -> list[tuple[Any, ...]]:
    """Delivered quantity and shipment count per (keys…, item): one GROUP BY on one table."""
    (sl,) = _models(DonationShipmentLine)
    stmt = (
        sa_select(
            *keys,
            sl.item_id,
            func.sum(sl.quantity_delivered),
            func.count(distinct(sl.shipment_id)),
        )
        .where(*where)
        .group_by(*keys, sl.item_id)
    )
    return [tuple(row) for row in session.connection().execute(stmt)]


def _rollup(rows: list[tuple[Any, ...]], key: Callable[[tuple[Any, ...]], str]) -> list[Figure]:
    """Add up finer figures into coarser ones (each shipment has one city and one month)."""
    totals: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        quantity, shipments = int(row[-2] or 0), int(row[-1])
        entry = totals.setdefault((key(row), str(row[-3])), [0, 0])
        entry[0] += quantity
        entry[1] += shipments
    return [Figure(k, item, q, n) for (k, item), (q, n) in sorted(totals.items())]


def impact(
    *,
    session: Session,
    since: str | None = None,
    until: str | None = None,
    dimensions: Sequence[str] = ("item", "country", "city", "donor", "year"),
) -> Impact:
    """Delivered totals by item and by each dimension, from shipment records (SQL GROUP BY).

    Three grouped queries on the shipment lines: by city, by donor, by month (each with the
    item). Countries and item totals add up the city figures and years the month figures:
    a shipment goes to one city and arrives in one month, so shipment counts add up too.
    """
    sl, s = _models(DonationShipmentLine, DonationShipment)
    where = _delivered_filter(since, until)
    report = Impact(since=since, until=until)
    cities = _grouped(session, [sl.country_code, sl.city_name], where)
    by_city: Callable[[tuple[Any, ...]], str] = lambda r: f"{r[0] or ''}/{r[1] or ''}"  # noqa: E731
    rollups: dict[str, tuple[list[tuple[Any, ...]], Callable[[tuple[Any, ...]], str]]] = {
        "item": (cities, lambda r: "all"),
        "country": (cities, lambda r: str(r[0] or "")),
        "city": (cities, by_city),
    }
    if {"year", "month"} & set(dimensions):
        months = _grouped(session, [sl.delivered_month], where)
        rollups["year"] = (months, lambda r: str(r[0])[:4])
        rollups["month"] = (months, lambda r: str(r[0]))
    if "donor" in dimensions:
        rollups["donor"] = (_grouped(session, [sl.donor_id], where), lambda r: str(r[0]))
    for name in dimensions:
        rows, key = rollups[name]
        report.by[name] = _rollup(rows, key)
    report.countries = sorted({str(r[0]) for r in cities if r[0]})
    report.cities = len({by_city(r) for r in cities})
    report.shipments = int(
        session.execute(sa_select(func.count(distinct(sl.shipment_id))).where(*where)).scalar_one()
    )
    if "donor" in dimensions:
        report.donors = len({f.key for f in report.by["donor"]})
    else:
        donors = sa_select(func.count(distinct(sl.donor_id))).where(*where)
        report.donors = int(session.execute(donors).scalar_one())
    pipeline = (
        sa_select(sl.item_id, func.sum(sl.quantity), func.count(distinct(s.id)))
        .select_from(sl)
        .join(s, s.id == sl.shipment_id)
        .where(s.status.in_(list(UNDER_WAY)))
        .group_by(sl.item_id)
        .order_by(sl.item_id)
    )
    report.under_way = [
        Figure("under_way", str(i), int(q or 0), int(n)) for i, q, n in session.execute(pipeline)
    ]
    if "donor" in dimensions:
        ids = {int(f.key) for f in report.by["donor"] if f.key.isdecimal()}
        if ids:
            names = sa_select(col(DonationDonor.id), col(DonationDonor.name)).where(
                col(DonationDonor.id).in_(ids)
            )
            report.donor_names = {str(i): str(n) for i, n in session.execute(names)}
    return report


@dataclass(frozen=True, slots=True)
class ShipmentRow:
    """A shipment line behind a figure: which shipment, when, from whom, to where, how many."""

    shipment_ref: str
    delivered_month: str | None
    arrived_at: datetime | None
    donor: str
    country_code: str | None
    city_name: str | None
    item_id: str
    quantity: int


def figure_shipments(
    *,
    session: Session,
    dimension: str,
    key: str,
    item_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 1000,
) -> list[ShipmentRow]:
    """List the shipment lines a report figure adds up (the same filters, one key)."""
    sl, s, d = _models(DonationShipmentLine, DonationShipment, DonationDonor)
    stmt = (
        sa_select(
            s.ref,
            sl.delivered_month,
            s.arrived_at,
            d.name,
            sl.country_code,
            sl.city_name,
            sl.item_id,
            sl.quantity_delivered,
        )  # fmt: skip
        .select_from(sl)
        .join(s, s.id == sl.shipment_id)
        .join(d, d.id == sl.donor_id)
        .where(*_delivered_filter(since, until))
        .order_by(s.arrived_at, s.id, sl.id)
        .limit(limit)
    )
    if dimension != "item":
        stmt = stmt.where(_dimension(dimension) == (int(key) if dimension == "donor" else key))
    if item_id is not None:
        stmt = stmt.where(sl.item_id == item_id)
    return [ShipmentRow(*row) for row in session.execute(stmt)]


def summary(*, session: Session) -> dict[str, Any]:
    """Counts and totals for staff reports: requests, pledges, shipments, quantities, reach."""
    r, rl = _models(DonationRequest, DonationRequestLine)
    requests = {
        str(k): int(n)
        for k, n in session.execute(sa_select(r.status, func.count()).group_by(r.status))
    }
    pledge_counts = {
        str(k): int(n)
        for k, n in session.execute(
            sa_select(col(DonationPledge.status), func.count()).group_by(
                col(DonationPledge.status)
            )
        )
    }
    shipment_counts = {
        str(k): int(n)
        for k, n in session.execute(
            sa_select(col(DonationShipment.status), func.count()).group_by(
                col(DonationShipment.status)
            )
        )
    }
    filed = col(r.status) != R.DRAFT
    totals = session.execute(
        sa_select(
            func.count(col(rl.id)),
            func.coalesce(func.sum(col(rl.quantity)), 0),
            func.coalesce(func.sum(col(rl.quantity_pledged)), 0),
            func.coalesce(func.sum(col(rl.quantity_shipped)), 0),
            func.coalesce(func.sum(col(rl.quantity_delivered)), 0),
        )
        .select_from(rl)
        .join(r, col(r.id) == rl.request_id)
        .where(filed)
    ).one()
    reach = impact(session=session, dimensions=("item",))
    donor_count = session.execute(sa_select(func.count(col(DonationDonor.id)))).scalar_one()
    return {
        "requests": requests,
        "requests_open": sum(requests.get(s, 0) for s in OPEN_REQUEST),
        "request_lines": int(totals[0]),
        "pledges": pledge_counts,
        "shipments": shipment_counts,
        "donors": int(donor_count),
        "quantities": {
            "requested": int(totals[1]),
            "pledged": int(totals[2]),
            "shipped": int(totals[3]),
            "delivered": int(totals[4]),
        },
        "delivered_by_item": {f.item_id: f.quantity for f in reach.by["item"]},
        "countries_benefited": len(reach.countries),
        "cities_benefited": reach.cities,
        "shipments_delivered": reach.shipments,
    }
