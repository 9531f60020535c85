"""What officials send back in chat: answers to staff questions, receipts, problems.

A staff question arrives with an Answer button (or the word "answer"); each delivery update
with Received and Report a problem buttons (or the words "received" / "problem").
"""

from __future__ import annotations

from typing import Any

from handlers import donations_review, donations_shipping
from handlers.context import Ctx
from handlers.donations_chat import start_with
from handlers.donations_text import error_text
from handlers.features import choice, entry
from handlers.i18n import t
from handlers.messages import Outgoing
from handlers.runs import on_submit
from storage import donations as store
from storage.donations import DonationError
from storage.models import SurveyRun


@entry("don_answer")
def _answer_word(ctx: Ctx, text: str) -> list[Outgoing]:
    """Answer the newest open staff question (sent as the word "answer")."""
    note = store.open_question(session=ctx.session, contact_id=ctx.contact.id or 0)
    if note is None:
        return [Outgoing(text=t("don_no_question", ctx.lang))]
    return _start_answer(ctx, note.id or 0)


@choice("di")
def _answer_button(ctx: Ctx, value: str) -> list[Outgoing]:
    """Answer the staff question the button belongs to."""
    return _start_answer(ctx, int(value) if value.isdecimal() else 0)


def _start_answer(ctx: Ctx, note_id: int) -> list[Outgoing]:
    """Open the answer form for a question on one of the contact's requests."""
    note = store.get_note(session=ctx.session, note_id=note_id)
    request = store.get_request(session=ctx.session, request_id=note.request_id) if note else None
    if note is None or request is None or request.contact_id != ctx.contact.id:
        return [Outgoing(text=t("stale_button", ctx.lang))]
    if note.answered_at is not None:
        return [Outgoing(text=t("don_already_answered", ctx.lang, ref=request.ref))]
    lead = t("don_answer_lead", ctx.lang, ref=request.ref, question=note.text or "")
    return start_with(ctx, "donation_answer", lead, don_note=note.id)


@on_submit("don_answer")
def _answered(ctx: Ctx, run: SurveyRun, definition: Any, results: dict[str, Any]) -> None:
    """Put the answer onto the request and tell the staff who asked."""
    note = store.get_note(session=ctx.session, note_id=int(run.state.get("don_note") or 0))
    if note is None or note.answered_at is not None:
        return
    donations_review.answer(
        ctx.session, note, str(results.get("answer") or ""), ctx.contact, ctx.now
    )


# -- delivery updates: receipt and problems ---------------------------------------------------


@choice("dl")
def _delivery_button(ctx: Ctx, value: str) -> list[Outgoing]:
    """Confirm receipt of, or report a problem with, the shipment of a delivery update."""
    event_id, _, action = value.partition(":")
    event = (
        store.get_event(session=ctx.session, event_id=int(event_id))
        if event_id.isdecimal()
        else None
    )
    if event is None or not _serves(ctx, event.shipment_id):
        return [Outgoing(text=t("stale_button", ctx.lang))]
    if action == "problem":
        return _start_problem(ctx, event.shipment_id)
    return _receipt(ctx, event)


def _serves(ctx: Ctx, shipment_id: int) -> bool:
    """Say whether a shipment carries supplies for one of the contact's requests."""
    requests = store.requests_of_shipment(session=ctx.session, shipment_id=shipment_id)
    return any(r.contact_id == ctx.contact.id for r in requests)


@entry("don_received")
def _received_word(ctx: Ctx, text: str) -> list[Outgoing]:
    """Confirm receipt of the newest shipment not confirmed yet (the word "received")."""
    event = store.latest_event_for_contact(
        session=ctx.session, contact_id=ctx.contact.id or 0, unconfirmed=True
    )
    if event is None:
        return [Outgoing(text=t("don_nothing_to_confirm", ctx.lang))]
    return _receipt(ctx, event)


def _receipt(ctx: Ctx, event: Any) -> list[Outgoing]:
    """Record the receipt and thank the official."""
    try:
        shipment, new = donations_shipping.receipt(ctx.session, event, ctx.contact, ctx.now)
    except DonationError as error:
        return [Outgoing(text=error_text(error, ctx.lang))]
    key = "don_receipt_thanks" if new else "don_receipt_already"
    return [Outgoing(text=t(key, ctx.lang, shipment=shipment.ref))]


@entry("don_problem")
def _problem_word(ctx: Ctx, text: str) -> list[Outgoing]:
    """Report a problem with the newest shipment (the word "problem")."""
    event = store.latest_event_for_contact(session=ctx.session, contact_id=ctx.contact.id or 0)
    if event is None:
        return [Outgoing(text=t("don_nothing_to_confirm", ctx.lang))]
    return _start_problem(ctx, event.shipment_id)


def _start_problem(ctx: Ctx, shipment_id: int) -> list[Outgoing]:
    """Open the problem form for a shipment."""
    shipment = store.get_shipment(session=ctx.session, shipment_id=shipment_id)
    assert shipment is not None
    if ctx.run is not None and not ctx.run.survey_id.startswith("donation_"):
        return [Outgoing(text=t("don_finish_run_first", ctx.lang))]
    lead = t("don_problem_lead", ctx.lang, shipment=shipment.ref)
    return start_with(ctx, "donation_problem", lead, don_shipment=shipment_id)


@on_submit("don_problem")
def _problem(ctx: Ctx, run: SurveyRun, definition: Any, results: dict[str, Any]) -> None:
    """Record the problem on the shipment's requests and tell staff."""
    shipment = store.get_shipment(
        session=ctx.session, shipment_id=int(run.state.get("don_shipment") or 0)
    )
    if shipment is None:
        return
    donations_shipping.problem(
        ctx.session,
        shipment,
        ctx.contact,
        str(results.get("kind") or "other"),
        results.get("details"),
        ctx.now,
    )
