"""How donation records are shown: dates, statuses, cities, lines, refusals (any language)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlmodel import Session

from handlers.answers import show_number
from handlers.donations_catalogue import item_name, quantity_text
from handlers.i18n import t
from handlers.places import country_name
from storage import donations as store
from storage.donations import (
    DonationError,
    MatchStatus,
    PledgeStatus,
    RequestStatus,
    ShipmentStatus,
)
from storage.donations_models import DonationRequest, DonationRequestLine, DonationShipment


def show_date(value: datetime | date | None, lang: str, timezone: str | None = None) -> str:
    """Show a date in the language (a time in the contact's city time zone)."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        zone = ZoneInfo(timezone) if timezone else None
        value = (value.astimezone(zone) if zone else value).date()
    return str(format_date(value, format="medium", locale=lang))


def status_label(status: str, lang: str) -> str:
    """Name a request, pledge or shipment status in a language."""
    return t(f"don_status_{status}", lang)


def city_label(request: DonationRequest | DonationShipment, lang: str) -> str:
    """Show `Koidu, Sierra Leone`."""
    country = country_name(request.country_code, lang) if request.country_code else ""
    return ", ".join(part for part in (request.city_name, country) if part) or "—"


def line_texts(session: Session, request: DonationRequest, lang: str) -> list[str]:
    """One bullet per line: item and requested quantity."""
    return [
        f"• {item_name(line.item_id, lang, line.description)}: "
        f"{quantity_text(line.quantity, line.item_id, lang)}"
        for line in store.request_lines(session=session, request_id=request.id or 0)
    ]


def line_progress(line: DonationRequestLine, lang: str) -> str:
    """One request line: the item, and its requested, pledged, shipped and delivered amounts."""
    return t(
        "don_view_line",
        lang,
        item=item_name(line.item_id, lang, line.description),
        requested=quantity_text(line.quantity, line.item_id, lang),
        pledged=show_number(line.quantity_pledged, lang),
        shipped=show_number(line.quantity_shipped, lang),
        delivered=show_number(line.quantity_delivered, lang),
    )


def error_text(error: DonationError, lang: str) -> str:
    """Say why an operation was refused."""
    values = dict(error.values)
    for name in ("current", "target"):
        if name in values and f"don_status_{values[name]}" in _STATUS_KEYS:
            values[name] = t(f"don_status_{values[name]}", lang)
    return t(error.key, lang, **values)


_STATUS_KEYS = frozenset(
    f"don_status_{s}" for s in (*RequestStatus, *PledgeStatus, *ShipmentStatus, *MatchStatus)
)
