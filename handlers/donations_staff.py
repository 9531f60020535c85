"""Donation staff commands in chat (role-checked and audited by the router; buttons here).

/review [R-…]           requests waiting for review, or one request with its buttons
/approve R-…            approve (the official is told)
/decline R-… reason     decline with a reason (without one: the reason is asked)
/askinfo R-… question   ask the official (the answer comes back onto the request)
/donor [name; CC; kind] list donors, or record one
/pledge D3 item=qty … [R-…] [logistics]   record a pledge (for a request, or unsolicited)
/matches                propose matches between open request lines and pledges
/ship P-…               ship a pledge's confirmed matches (one shipment per city)
/track S-… status [photo=URL] [note]      record a shipment status; the city is told
/impact [YYYY | YYYY-MM YYYY-MM | shipments DIMENSION KEY [ITEM]]   the impact report
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

from sqlmodel import Session

from handlers import (
    donations_match,
    donations_pledging,
    donations_report,
    donations_review,
    donations_shipping,
    features,
)
from handlers.context import Ctx
from handlers.donations_catalogue import catalogue, item_name, quantity_text
from handlers.donations_chat import start_with
from handlers.donations_text import city_label, error_text, line_progress, show_date, status_label
from handlers.features import choice, staff_command
from handlers.i18n import t
from handlers.menu import main_menu
from handlers.messages import Choice, Outgoing
from handlers.notify import queue_for_contact
from handlers.runs import on_submit
from storage import audit, contacts
from storage import donations as store
from storage.donations import DonationError, RequestStatus, ShipmentStatus
from storage.donations_models import DonationMatch, DonationRequest
from storage.models import SurveyRun

logger = logging.getLogger(__name__)

T = TypeVar("T")

REVIEWABLE = (RequestStatus.SUBMITTED, RequestStatus.INFO_REQUESTED)
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


def _error(ctx: Ctx, error: DonationError) -> list[Outgoing]:
    """Say why the action was refused (nothing was changed)."""
    return [Outgoing(text=error_text(error, ctx.lang))]


def _request(ctx: Ctx, text: str) -> DonationRequest | None:
    """Find the request a staff argument names."""
    return store.request_by_ref(session=ctx.session, ref=text) if text else None


def _split(args: str) -> tuple[str, str]:
    """Split `R-7K3F the rest` into the reference and the rest."""
    first, _, rest = args.strip().partition(" ")
    return first, rest.strip()


# -- review -----------------------------------------------------------------------------------


def staff_card(ctx: Ctx, request: DonationRequest) -> Outgoing:
    """Everything staff need to decide on a request, with the review buttons."""
    lang, session = ctx.lang, ctx.session
    official = contacts.get_contact(session=session, contact_id=request.contact_id or 0)
    parts = [
        t(
            "don_card_head",
            lang,
            ref=request.ref,
            status=status_label(request.status, lang),
            city=city_label(request, lang),
            date=show_date(request.submitted_at or request.created_at, lang),
        )
    ]
    if official is not None and official.erased_at is None:
        parts.append(
            t(
                "don_card_from",
                lang,
                name=official.name or "—",
                organisation=official.organisation or "—",
            )
        )
    parts.append(
        t(
            "don_card_details",
            lang,
            institution=request.institution or "—",
            address=request.delivery_address or "—",
            urgency=t(f"don_urgency_{request.urgency}", lang),
            needed_by=show_date(request.needed_by, lang),
            purpose=request.purpose or "—",
        )
    )
    for line in store.request_lines(session=session, request_id=request.id or 0):
        parts.append(line_progress(line, lang))
    for checked in request.checks.get("confirmed") or []:
        parts.append(t(f"don_card_checked_{checked['kind']}_{checked['answer']}", lang))
    icons = {"question": "❓", "answer": "💬", "decline": "✖", "problem": "⚠️", "receipt": "✅"}
    for note in store.notes_of(session=session, request_id=request.id or 0):
        if note.kind in icons:
            parts.append(f"{icons[note.kind]} {note.text or t('don_card_receipt', lang)}")
    buttons = (
        donations_review.review_buttons(request, lang) if request.status in REVIEWABLE else ()
    )
    return Outgoing(text="\n".join(parts), choices=buttons)


@staff_command("review")
def review(ctx: Ctx, args: str) -> list[Outgoing]:
    """Requests waiting for review (/review), or one with its buttons (/review R-7K3F)."""
    if args:
        request = _request(ctx, args)
        if request is None:
            return [Outgoing(text=t("don_not_found", ctx.lang, ref=args))]
        return [staff_card(ctx, request)]
    waiting = store.requests_by_status(session=ctx.session, statuses=list(REVIEWABLE), limit=10)
    if not waiting:
        return [Outgoing(text=t("don_review_empty", ctx.lang))]
    lines = [t("don_review_title", ctx.lang)]
    for request in waiting:
        lines.append(
            f"• {request.ref} · {city_label(request, ctx.lang)} · "
            f"{status_label(request.status, ctx.lang)}"
        )
    return [
        Outgoing(
            text="\n".join(lines),
            choices=tuple(Choice(f"ds:{r.id}:v", r.ref or "") for r in waiting),
        )
    ]


def _allowed(ctx: Ctx, action: str) -> bool:
    """Check a staff button's role (the router checks only /commands) and audit a refusal."""
    if features.may_run(ctx.contact.staff_role, features.STAFF["review"]):
        return True
    audit.record(
        session=ctx.session,
        action="staff_denied",
        now=ctx.now,
        actor_contact_id=ctx.contact.id,
        subject=action,
    )
    return False


def _staff_button(
    prefix: str, load: Callable[[Session, int], T | None]
) -> Callable[[Callable[[Ctx, T, str], list[Outgoing]]], Callable[[Ctx, str], list[Outgoing]]]:
    """Register the staff buttons `<prefix>:<id>:<action>`; the handler gets the record `load`
    finds and the action. Anyone else gets the help (audited); a record gone, a stale button."""

    def register(
        act: Callable[[Ctx, T, str], list[Outgoing]],
    ) -> Callable[[Ctx, str], list[Outgoing]]:
        def handle(ctx: Ctx, value: str) -> list[Outgoing]:
            if not _allowed(ctx, prefix):
                return [main_menu(ctx, lead=t("help_text", ctx.lang))]
            record_id, _, action = value.partition(":")
            found = load(ctx.session, int(record_id)) if record_id.isdecimal() else None
            if found is None:
                return [Outgoing(text=t("stale_button", ctx.lang))]
            return act(ctx, found, action)

        handle.__doc__ = act.__doc__
        return choice(prefix)(handle)

    return register


@_staff_button("ds", lambda session, i: store.get_request(session=session, request_id=i))
def _review_button(ctx: Ctx, request: DonationRequest, action: str) -> list[Outgoing]:
    """Show, approve, decline or question a request from its buttons."""
    if action == "a":
        return _approve(ctx, request)
    if action in ("d", "q"):
        return _note_form(ctx, request, "decline" if action == "d" else "ask")
    return [staff_card(ctx, request)]


def _approve(ctx: Ctx, request: DonationRequest) -> list[Outgoing]:
    """Approve and confirm to the staff member."""
    try:
        donations_review.approve(ctx.session, request, ctx.now, ctx.contact.id)
    except DonationError as error:
        return _error(ctx, error)
    return [Outgoing(text=t("don_staff_approved", ctx.lang, ref=request.ref))]


def _note_form(ctx: Ctx, request: DonationRequest, action: str) -> list[Outgoing]:
    """Ask staff for a decline reason or a question, in a small form."""
    if request.status not in REVIEWABLE:
        current = status_label(request.status, ctx.lang)
        return [
            Outgoing(text=t("don_staff_not_reviewable", ctx.lang, ref=request.ref, status=current))
        ]
    lead = t(f"don_staff_{action}_lead", ctx.lang, ref=request.ref)
    return start_with(ctx, "donation_staff_note", lead, don_request=request.id, don_action=action)


@on_submit("don_staff_note")
def _staff_note(ctx: Ctx, run: SurveyRun, definition: Any, results: dict[str, Any]) -> None:
    """Decline with the reason typed, or send the question typed, then confirm to staff."""
    request = store.get_request(
        session=ctx.session, request_id=int(run.state.get("don_request") or 0)
    )
    if request is None:
        return
    text = str(results.get("text") or "")
    action = str(run.state.get("don_action"))
    try:
        reply = _note(ctx, request, action, text)
    except DonationError as error:
        reply = error_text(error, ctx.lang)
    queue_for_contact(
        session=ctx.session,
        contact=ctx.contact,
        message=Outgoing(text=reply),
        kind="reply",
        key=f"don:staffnote:{run.id}",
        now=ctx.now,
    )


@staff_command("approve")
def approve(ctx: Ctx, args: str) -> list[Outgoing]:
    """Approve a request: /approve R-7K3F."""
    request = _request(ctx, args.strip())
    if request is None:
        return [Outgoing(text=t("don_not_found", ctx.lang, ref=args))]
    return _approve(ctx, request)


def _note(ctx: Ctx, request: DonationRequest, action: str, text: str) -> str:
    """Decline with a reason (`decline`) or ask a question (else); return staff's confirmation."""
    if action == "decline":
        donations_review.decline(ctx.session, request, text, ctx.now, ctx.contact.id)
        return t("don_staff_declined", ctx.lang, ref=request.ref)
    donations_review.ask(ctx.session, request, text, ctx.now, ctx.contact.id)
    return t("don_staff_asked", ctx.lang, ref=request.ref)


def _note_command(ctx: Ctx, args: str, action: str) -> list[Outgoing]:
    """Run `/decline R-… reason` or `/askinfo R-… question`; without the text a form asks it."""
    ref, text = _split(args)
    request = _request(ctx, ref)
    if request is None:
        return [Outgoing(text=t("don_not_found", ctx.lang, ref=ref))]
    if not text:
        return _note_form(ctx, request, action)
    try:
        return [Outgoing(text=_note(ctx, request, action, text))]
    except DonationError as error:
        return _error(ctx, error)


@staff_command("decline")
def decline(ctx: Ctx, args: str) -> list[Outgoing]:
    """Decline a request with a reason: /decline R-7K3F reason."""
    return _note_command(ctx, args, "decline")


@staff_command("askinfo")
def ask_info(ctx: Ctx, args: str) -> list[Outgoing]:
    """Ask the official for more information: /askinfo R-7K3F question."""
    return _note_command(ctx, args, "ask")


# -- donors, pledges, matches -----------------------------------------------------------------


@staff_command("donor")
def donor(ctx: Ctx, args: str) -> list[Outgoing]:
    """List donor partners, or record one: /donor Name; CC; kind."""
    if not args.strip():
        found = store.donors(session=ctx.session)
        if not found:
            return [Outgoing(text=t("don_donors_none", ctx.lang))]
        lines = [f"• D{d.id} · {d.name} ({d.country_code or '—'}, {d.kind})" for d in found[:40]]
        return [Outgoing(text="\n".join([t("don_donors_title", ctx.lang), *lines]))]
    name, _, rest = args.partition(";")
    country, _, kind = rest.partition(";")
    try:
        found_donor = donations_pledging.add_donor(
            ctx.session,
            name,
            ctx.now,
            ctx.contact.id,
            kind=kind.strip() or "other",
            country_code=country.strip() or None,
        )
    except DonationError as error:
        return _error(ctx, error)
    return [
        Outgoing(text=t("don_staff_donor", ctx.lang, id=found_donor.id, name=found_donor.name))
    ]


_ITEM = re.compile(r"^([^=\s]+)=([\d.,_ kKmM万]+)$")


@staff_command("pledge")
def pledge(ctx: Ctx, args: str) -> list[Outgoing]:
    """Record a pledge: /pledge D3 surgical_mask=10000 [gloves=500] [R-7K3F] [logistics]."""
    from handlers.parsing import parse_number

    tokens = args.split()
    donor_words: list[str] = []
    items: list[tuple[str, int]] = []
    request: DonationRequest | None = None
    logistics = False
    for token in tokens:
        found = _ITEM.match(token)
        if found:
            number = parse_number(found.group(2))
            if number is None or number != int(number):
                return [Outgoing(text=t("don_err_quantity", ctx.lang))]
            items.append((found.group(1), int(number)))
        elif store.parse_ref(token) and token.upper().startswith("R"):
            request = _request(ctx, token)
            if request is None:
                return [Outgoing(text=t("don_not_found", ctx.lang, ref=token))]
        elif token.lower() in ("logistics", "+logistics"):
            logistics = True
        elif not items:
            donor_words.append(token)
    found_donor = store.find_donor(session=ctx.session, text=" ".join(donor_words))
    if found_donor is None or not items:
        return [Outgoing(text=t("don_pledge_usage", ctx.lang))]
    try:
        made = donations_pledging.add_pledge(
            ctx.session, found_donor, items, ctx.now, ctx.contact.id, request=request,
            logistics_covered=logistics,
        )  # fmt: skip
    except DonationError as error:
        return _error(ctx, error)
    lines = [
        f"• {item_name(line.item_id, ctx.lang)}: "
        f"{quantity_text(line.quantity, line.item_id, ctx.lang)}"
        for line in store.pledge_lines(session=ctx.session, pledge_id=made.id or 0)
    ]
    key = "don_staff_pledge_for" if request else "don_staff_pledge"
    text = t(
        key, ctx.lang, ref=made.ref, donor=found_donor.name, request=request.ref if request else ""
    )
    return [Outgoing(text="\n".join([text, *lines]))]


def match_message(ctx: Ctx, match_id: int) -> Outgoing:
    """Show a proposed match with confirm and reject buttons."""
    match = store.get_match(session=ctx.session, match_id=match_id)
    assert match is not None
    rline = store.get_request_line(session=ctx.session, line_id=match.request_line_id)
    pline = store.get_pledge_line(session=ctx.session, line_id=match.pledge_line_id)
    assert rline is not None and pline is not None
    request = store.get_request(session=ctx.session, request_id=rline.request_id)
    pledge_row = store.get_pledge(session=ctx.session, pledge_id=pline.pledge_id)
    assert request is not None and pledge_row is not None
    donor_row = store.get_donor(session=ctx.session, donor_id=pledge_row.donor_id)
    text = t(
        "don_match_line",
        ctx.lang,
        id=match.id,
        score=match.score,
        pledge=pledge_row.ref,
        donor=donor_row.name if donor_row else "?",
        quantity=quantity_text(match.quantity, pline.item_id, ctx.lang),
        offered=item_name(pline.item_id, ctx.lang),
        request=request.ref,
        city=city_label(request, ctx.lang),
        wanted=item_name(rline.item_id, ctx.lang, rline.description),
        urgency=t(f"don_urgency_{request.urgency}", ctx.lang),
    )
    return Outgoing(
        text=text,
        choices=(
            Choice(f"dm:{match.id}:ok", t("don_btn_confirm_match", ctx.lang)),
            Choice(f"dm:{match.id}:no", t("don_btn_reject_match", ctx.lang)),
        ),
    )


@staff_command("matches")
def propose_matches(ctx: Ctx, args: str) -> list[Outgoing]:
    """Propose matches between open request lines and available pledges."""
    proposals = donations_match.propose(session=ctx.session, now=ctx.now)
    if not proposals:
        return [Outgoing(text=t("don_matches_none", ctx.lang))]
    head = Outgoing(text=t("don_matches_title", ctx.lang, count=len(proposals)))
    return [head, *(match_message(ctx, m.id or 0) for m in proposals[:10])]


@_staff_button("dm", lambda session, i: store.get_match(session=session, match_id=i))
def _match_button(ctx: Ctx, match: DonationMatch, action: str) -> list[Outgoing]:
    """Confirm or reject a proposed match."""
    try:
        if action == "ok":
            donations_pledging.confirm_match(ctx.session, match, ctx.now, ctx.contact.id)
            return [Outgoing(text=t("don_staff_match_ok", ctx.lang, id=match.id))]
        donations_pledging.reject_match(ctx.session, match, ctx.now, ctx.contact.id)
    except DonationError as error:
        return _error(ctx, error)
    return [Outgoing(text=t("don_staff_match_no", ctx.lang, id=match.id))]


# -- shipments --------------------------------------------------------------------------------


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


# -- impact -----------------------------------------------------------------------------------

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
