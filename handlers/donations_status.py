"""An official's requests in chat: the list, one request's status, cancelling, a typed reference.

Officials follow their requests with /requests (or `/requests R-7K3F`, a `/start R-7K3F`
link, or the reference typed alone).
"""

from __future__ import annotations

from handlers import donations_review, features
from handlers.context import Ctx
from handlers.donations_catalogue import item_name
from handlers.donations_chat import clear_prompt, own
from handlers.donations_filing import start_request
from handlers.donations_text import city_label, error_text, line_progress, show_date, status_label
from handlers.features import choice, deep_link, entry
from handlers.i18n import strings, t
from handlers.messages import Choice, Outgoing
from storage import donations as store
from storage.donations import DonationError, RequestStatus
from storage.donations_models import DonationRequest

CANCELLABLE = (RequestStatus.SUBMITTED, RequestStatus.INFO_REQUESTED, RequestStatus.APPROVED)


def _ref_in(text: str) -> str | None:
    """Find a request reference after a command (`/requests R-7K3F`)."""
    parts = text.strip().split(maxsplit=1)
    if len(parts) == 2:
        return store.parse_ref(parts[1])
    return None


@entry("requests", menu="menu_requests" in strings())
def my_requests(ctx: Ctx, text: str) -> list[Outgoing]:
    """List the contact's requests, or show one (`/requests R-7K3F`)."""
    ref = _ref_in(text)
    if ref is not None:
        return show(ctx, ref)
    found = store.requests_of_contact(session=ctx.session, contact_id=ctx.contact.id or 0)
    clear_prompt(ctx)
    new = Choice("dv:new", t("don_btn_new_request", ctx.lang))
    if not found:
        return [Outgoing(text=t("don_no_requests", ctx.lang), choices=(new,))]
    lines = [t("don_list_title", ctx.lang)]
    for request in found:
        items = ", ".join(
            item_name(line.item_id, ctx.lang, line.description)
            for line in store.request_lines(session=ctx.session, request_id=request.id or 0)
        )
        lines.append(f"• {request.ref} · {status_label(request.status, ctx.lang)} · {items}")
    lines.append(t("don_list_hint", ctx.lang, ref=found[0].ref))
    return [
        Outgoing(
            text="\n".join(lines),
            choices=(*(Choice(f"dv:{r.id}", r.ref or "") for r in found[:9]), new),
        )
    ]


@deep_link("R-")
def _linked(ctx: Ctx, rest: str) -> list[Outgoing]:
    """Show a request from a `/start R-7K3F` link."""
    return show(ctx, f"R-{rest}")


def show(ctx: Ctx, ref: str) -> list[Outgoing]:
    """Show one request: its status, each line's progress, shipments and open questions."""
    request = own(ctx, store.request_by_ref(session=ctx.session, ref=ref))
    clear_prompt(ctx)
    if request is None:
        return [Outgoing(text=t("don_not_found", ctx.lang, ref=ref))]
    return [status_view(ctx, request)]


def status_view(ctx: Ctx, request: DonationRequest) -> Outgoing:
    """Render a request's status for its official."""
    lang, session = ctx.lang, ctx.session
    parts = [
        t(
            "don_view_head",
            lang,
            ref=request.ref,
            status=status_label(request.status, lang),
            date=show_date(request.submitted_at or request.created_at, lang, ctx.contact.timezone),
            city=city_label(request, lang),
        )
    ]
    for line in store.request_lines(session=session, request_id=request.id or 0):
        parts.append(line_progress(line, lang))
    for shipment in store.shipments_of_request(session=session, request_id=request.id or 0):
        donor = store.get_donor(session=session, donor_id=shipment.donor_id)
        parts.append(
            t(
                "don_view_shipment",
                lang,
                shipment=shipment.ref,
                donor=donor.name if donor else "?",
                status=status_label(shipment.status, lang),
            )
        )
    if request.decline_reason:
        parts.append(t("don_view_reason", lang, reason=request.decline_reason))
    choices: list[Choice] = []
    for note in store.notes_of(session=session, request_id=request.id or 0):
        if note.kind == "question" and note.answered_at is None:
            parts.append(t("don_view_question", lang, question=note.text or ""))
            choices.append(Choice(f"di:{note.id}", t("don_btn_answer", lang)))
    if request.status in CANCELLABLE and not any(
        line.quantity_shipped
        for line in store.request_lines(session=session, request_id=request.id or 0)
    ):
        choices.append(Choice(f"dv:{request.id}:cancel", t("don_btn_cancel_request", lang)))
    return Outgoing(text="\n".join(parts), choices=tuple(choices), meta={"ref": request.ref})


@choice("dv")
def _view_button(ctx: Ctx, value: str) -> list[Outgoing]:
    """Show a request, or cancel it (after a confirmation)."""
    if value == "new":
        return start_request(ctx, "")
    request_id, _, action = value.partition(":")
    request = own(
        ctx,
        store.get_request(session=ctx.session, request_id=int(request_id))
        if request_id.isdecimal()
        else None,
    )
    clear_prompt(ctx)
    if request is None:
        return [Outgoing(text=t("stale_button", ctx.lang))]
    if action == "cancel":
        return [
            Outgoing(
                text=t("don_cancel_confirm", ctx.lang, ref=request.ref),
                choices=(
                    Choice(f"dv:{request.id}:cancelok", t("don_btn_cancel_yes", ctx.lang)),
                    Choice(f"dv:{request.id}", t("don_btn_cancel_no", ctx.lang)),
                ),
            )
        ]
    if action == "cancelok":
        try:
            donations_review.cancel_by_official(ctx.session, request, ctx.now)
        except DonationError as error:
            return [Outgoing(text=error_text(error, ctx.lang))]
        return [Outgoing(text=t("don_request_cancelled", ctx.lang, ref=request.ref))]
    return [status_view(ctx, request)]


# -- a typed reference (needs the router hook described in docs/donations.md) -----------------


def typed(ctx: Ctx, text: str) -> list[Outgoing] | None:
    """Answer a message that is only a request reference (`R-7K3F`) with its status."""
    ref = store.parse_ref(text)
    if ref is None or not ref.startswith("R-"):
        return None
    return show(ctx, ref)


_register_text = getattr(features, "text_handler", None)
if callable(_register_text):
    _register_text(typed)
