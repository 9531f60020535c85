"""The impact report as text: delivered totals from shipment records, and the records behind."""

from __future__ import annotations

from collections import defaultdict

from handlers.answers import show_number
from handlers.donations_catalogue import item_name, quantity_text
from handlers.i18n import t
from handlers.places import country_name
from storage.donations import Figure, Impact, ShipmentRow

SECTIONS = ("country", "donor", "year")
MAX_ROWS = 15


def key_label(dimension: str, key: str, report: Impact | None, lang: str) -> str:
    """Show a figure's key: a country's name, `City, Country`, a donor's name, a year."""
    if dimension == "country":
        return country_name(key, lang) if key else "—"
    if dimension == "city":
        code, _, city = key.partition("/")
        return f"{city or '—'}, {country_name(code, lang) if code else '—'}"
    if dimension == "donor" and report is not None:
        return report.donor_names.get(key, f"D{key}")
    return key or "—"


def _rows(figures: list[Figure], dimension: str, report: Impact, lang: str) -> list[str]:
    """One line per key, its items' totals side by side, most delivered first."""
    grouped: dict[str, list[Figure]] = defaultdict(list)
    for figure in figures:
        grouped[figure.key].append(figure)
    ordered = sorted(grouped.items(), key=lambda kv: -sum(f.quantity for f in kv[1]))
    if dimension == "year":
        ordered = sorted(grouped.items())
    lines = []
    for key, items in ordered[:MAX_ROWS]:
        totals = "; ".join(
            t(
                "don_impact_item",
                lang,
                item=item_name(f.item_id, lang),
                quantity=show_number(f.quantity, lang),
                shipments=f.shipments,
            )
            for f in sorted(items, key=lambda f: -f.quantity)
        )
        lines.append(f"• {key_label(dimension, key, report, lang)}: {totals}")
    if len(ordered) > MAX_ROWS:
        lines.append(f"… (+{len(ordered) - MAX_ROWS})")
    return lines


def period_text(report: Impact, lang: str) -> str:
    """Say which months the report covers."""
    if not report.since and not report.until:
        return t("don_impact_all_time", lang)
    return f"{report.since or '…'} – {report.until or '…'}"


def impact_text(report: Impact, lang: str) -> str:
    """Render the impact report for a chat message."""
    parts = [t("don_impact_title", lang, period=period_text(report, lang))]
    delivered = report.by.get("item", [])
    if not delivered:
        parts.append(t("don_impact_none", lang))
    else:
        parts.append(
            t(
                "don_impact_delivered",
                lang,
                totals="; ".join(
                    f"{item_name(f.item_id, lang)} {quantity_text(f.quantity, f.item_id, lang)}"
                    for f in sorted(delivered, key=lambda f: -f.quantity)
                ),
            )
        )
        parts.append(
            t(
                "don_impact_reach",
                lang,
                shipments=report.shipments,
                donors=report.donors,
                cities=report.cities,
                countries=len(report.countries),
                names=", ".join(country_name(c, lang) for c in report.countries),
            )
        )
        for section in SECTIONS:
            if report.by.get(section):
                parts.append(t(f"don_impact_by_{section}", lang))
                parts += _rows(report.by[section], section, report, lang)
    if report.under_way:
        parts.append(
            t(
                "don_impact_under_way",
                lang,
                totals="; ".join(
                    t(
                        "don_impact_item",
                        lang,
                        item=item_name(f.item_id, lang),
                        quantity=show_number(f.quantity, lang),
                        shipments=f.shipments,
                    )
                    for f in report.under_way
                ),
            )
        )
    parts.append(t("don_impact_hint", lang))
    return "\n".join(parts)


def trace_text(rows: list[ShipmentRow], dimension: str, key: str, lang: str) -> str:
    """List the shipment lines behind one figure, with their sum."""
    if not rows:
        return t("don_trace_none", lang, dimension=dimension, name=key)
    lines = [t("don_trace_title", lang, dimension=dimension, name=key)]
    totals: dict[str, int] = defaultdict(int)
    for row in rows[:40]:
        lines.append(
            f"• {row.shipment_ref} · {row.delivered_month or '—'} · {row.donor} → "
            f"{row.city_name or '—'} ({row.country_code or '—'}) · "
            f"{item_name(row.item_id, lang)} {show_number(row.quantity, lang)}"
        )
    for row in rows:
        totals[row.item_id] += row.quantity
    if len(rows) > 40:
        lines.append(f"… (+{len(rows) - 40})")
    lines.append(
        t(
            "don_trace_total",
            lang,
            count=len(rows),
            totals="; ".join(
                f"{item_name(i, lang)} {show_number(q, lang)}" for i, q in sorted(totals.items())
            ),
        )
    )
    return "\n".join(lines)
