"""Donation review in chat: the staff card, /review, /approve, /decline, /askinfo, its buttons."""

from __future__ import annotations

from typing import Any

from handlers import donations_review
from handlers.context import Ctx
from handlers.donations_chat import start_with
from handlers.donations_staff_plumbing import _error, _request, _split, _staff_button
from handlers.donations_text import city_label, error_text, line_progress, show_date, status_label
from handlers.features import staff_command
from handlers.i18n import t
from handlers.messages import Choice, Outgoing
from handlers.notify import queue_for_contact
from handlers.runs import on_submit
from storage import contacts
from storage import donations as store
from storage.donations import DonationError, RequestStatus
from storage.donations_models import DonationRequest
from storage.models import SurveyRun

REVIEWABLE = (RequestStatus.SUBMITTED, RequestStatus.INFO_REQUESTED)


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
