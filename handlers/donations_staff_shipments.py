"""Shipments and impact in chat: /ship, /track and the impact report built from them, /impact."""

from __future__ import annotations

import re

from handlers import donations_report, donations_shipping
from handlers.context import Ctx
from handlers.donations_catalogue import catalogue
from handlers.donations_staff_plumbing import _error, _split
from handlers.donations_text import status_label
from handlers.features import staff_command
from handlers.i18n import t
from handlers.messages import Outgoing
from storage import donations as store
from storage.donations import DonationError, ShipmentStatus

STATUS_WORDS = {
    "preparing": ShipmentStatus.PREPARING,
    "dispatched": ShipmentStatus.DISPATCHED,
    "sent": ShipmentStatus.DISPATCHED,
    "in_transit": ShipmentStatus.IN_TRANSIT,
    "transit": ShipmentStatus.IN_TRANSIT,
    "customs": ShipmentStatus.CUSTOMS,
    "arrived": ShipmentStatus.ARRIVED,
    "received": ShipmentStatus.ARRIVED,
    "handed_over": ShipmentStatus.HANDED_OVER,
    "handedover": ShipmentStatus.HANDED_OVER,
    "handover": ShipmentStatus.HANDED_OVER,
    "cancelled": ShipmentStatus.CANCELLED,
    "canceled": ShipmentStatus.CANCELLED,
}


@staff_command("ship")
def ship(ctx: Ctx, args: str) -> list[Outgoing]:
    """Ship a pledge's confirmed matches: /ship P-4HXM (one shipment per city)."""
    ref, _ = _split(args)
    found = store.pledge_by_ref(session=ctx.session, ref=ref) if ref else None
    if found is None:
        return [Outgoing(text=t("don_not_found", ctx.lang, ref=ref))]
    try:
        shipments = donations_shipping.ship(ctx.session, found, ctx.now, ctx.contact.id)
    except DonationError as error:
        return _error(ctx, error)
    refs = ", ".join(s.ref or "" for s in shipments)
    return [Outgoing(text=t("don_staff_shipped", ctx.lang, refs=refs, pledge=found.ref))]


@staff_command("track")
def track(ctx: Ctx, args: str) -> list[Outgoing]:
    """Record a shipment status: /track S-4HXM arrived [photo=https://…] [note]."""
    tokens = args.split()
    if len(tokens) < 2 or tokens[1].lower() not in STATUS_WORDS:
        return [Outgoing(text=t("don_track_usage", ctx.lang))]
    shipment = store.shipment_by_ref(session=ctx.session, ref=tokens[0])
    if shipment is None:
        return [Outgoing(text=t("don_not_found", ctx.lang, ref=tokens[0]))]
    photo = next((tk[6:] for tk in tokens[2:] if tk.startswith("photo=")), None)
    note = " ".join(tk for tk in tokens[2:] if not tk.startswith("photo=")) or None
    status = STATUS_WORDS[tokens[1].lower()]
    try:
        event, created = donations_shipping.track(
            ctx.session, shipment, status, ctx.now, ctx.contact.id, note=note, photo=photo
        )
    except DonationError as error:
        return _error(ctx, error)
    key = "don_staff_tracked" if created else "don_staff_tracked_again"
    label = status_label(event.status, ctx.lang)
    return [Outgoing(text=t(key, ctx.lang, shipment=shipment.ref, status=label))]


_MONTH = re.compile(r"^\d{4}(-\d{2})?$")


@staff_command("impact")
def impact(ctx: Ctx, args: str) -> list[Outgoing]:
    """The impact report: /impact [2020 | 2020-02 2021-01 | shipments country GM [item]]."""
    tokens = args.split()
    if tokens[:1] == ["shipments"]:
        if len(tokens) < 3 or tokens[1] not in store.DIMENSIONS:
            return [Outgoing(text=t("don_impact_usage", ctx.lang))]
        dimension, key = tokens[1], " ".join(tokens[2:])
        item = catalogue().find(tokens[-1]) if len(tokens) > 3 else None
        if item is not None:
            key = " ".join(tokens[2:-1])
        if dimension == "donor" and not key.isdecimal():
            found = store.find_donor(session=ctx.session, text=key)
            key = str(found.id) if found else key
        rows = store.figure_shipments(
            session=ctx.session, dimension=dimension, key=key, item_id=item.id if item else None
        )
        return [Outgoing(text=donations_report.trace_text(rows, dimension, key, ctx.lang))]
    if any(not _MONTH.match(tk) for tk in tokens) or len(tokens) > 2:
        return [Outgoing(text=t("don_impact_usage", ctx.lang))]
    since = until = None
    if tokens:
        since = tokens[0] if "-" in tokens[0] else f"{tokens[0]}-01"
        last = tokens[-1]
        until = last if "-" in last else f"{last}-12"
    report = store.impact(session=ctx.session, since=since, until=until)
    return [Outgoing(text=donations_report.impact_text(report, ctx.lang))]
