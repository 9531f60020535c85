"""Donation requests in chat, for officials: file, check, follow, answer, confirm receipt.

Filing is the `donation_request` form (or `donation_start` → `donation_complete` from the
latest emergency-survey answers). On submit the answers become a draft request; what looks
wrong is asked back one thing at a time (a quantity above the item's plausibility bound, a
small quantity that may be a count of boxes, an open request of the same city for the same
supplies) with small forms chained through the run's `then`, each preceded by a message that
names the item; once nothing is left the request is filed and its reference (R-7K3F) sent.

Officials follow their requests with /requests (or `/requests R-7K3F`, or a `/start R-7K3F`
link), answer staff questions (button, or send "answer"), and confirm receipt or report a
problem from each delivery update (buttons, or send "received" / "problem"). Staff commands
are in handlers/donations_staff.py.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from handlers import donations_service as service
from handlers import features, runs
from handlers.answers import show_number
from handlers.context import Ctx
from handlers.donations_catalogue import catalogue, item_name, quantity_text
from handlers.features import choice, deep_link, entry
from handlers.i18n import pick, strings, t
from handlers.messages import Choice, Outgoing
from handlers.notify import queue_for_contact
from handlers.runs import on_submit
from storage import contacts, surveys
from storage import donations as store
from storage.donations import DonationError, LineInput, RequestStatus
from storage.donations_models import DonationRequest
from storage.models import SurveyRun

logger = logging.getLogger(__name__)

CHECK_FORMS = {
    "bound": "donation_check_bound",
    "unit": "donation_check_unit",
    "duplicate": "donation_check_duplicate",
}
CANCELLABLE = (RequestStatus.SUBMITTED, RequestStatus.INFO_REQUESTED, RequestStatus.APPROVED)


# -- helpers ----------------------------------------------------------------------------------


def _say(ctx: Ctx, run: SurveyRun, text: str, tag: str, choices: tuple[Choice, ...] = ()) -> None:
    """Queue a message during a form's submission (it arrives before the form's last reply)."""
    queue_for_contact(
        session=ctx.session,
        contact=ctx.contact,
        message=Outgoing(text=text, choices=choices),
        kind="reply",
        key=f"don:{tag}:{run.id}",
        now=ctx.now,
    )


def _then(run: SurveyRun, survey_id: str) -> None:
    """Make the run's end start another form."""
    run.state = {**run.state, "then": survey_id}


def _start_with(ctx: Ctx, survey_id: str, lead: str, **state: Any) -> list[Outgoing]:
    """Start a form with a lead and remember what it is about in the run's state."""
    replies = runs.start(ctx, survey_id, lead=lead)
    run = surveys.active_run(session=ctx.session, contact_id=ctx.contact.id or 0)
    if run is not None:
        run.state = {**run.state, **state}
        surveys.save_run(session=ctx.session, run=run)
    return replies


def _clear_prompt(ctx: Ctx) -> None:
    """Forget the menu just shown, so a typed number is not read as a menu pick."""
    contacts.update_contact(session=ctx.session, contact=ctx.contact, prompt=None, prompt_data={})


def _registered(ctx: Ctx) -> bool:
    """Say whether the contact registered their office and city."""
    return ctx.contact.consent_at is not None and bool(ctx.contact.city_name)


def _own(ctx: Ctx, request: DonationRequest | None) -> DonationRequest | None:
    """Return the request when the contact filed it (or is staff), else None."""
    if request is None:
        return None
    if request.contact_id == ctx.contact.id or ctx.contact.staff_role in ("staff", "admin"):
        return request
    return None


# -- filing -----------------------------------------------------------------------------------


@entry("request")
def start_request(ctx: Ctx, text: str) -> list[Outgoing]:
    """Start a donation request (registration first; from the emergency survey if there is one)."""
    if not _registered(ctx):
        return runs.start(
            ctx,
            "registration",
            lead=t("don_register_first", ctx.lang),
            then="donation_request",
        )
    response = store.latest_unconverted_survey(
        session=ctx.session, contact_id=ctx.contact.id or 0, survey_id="emergency_needs"
    )
    if response is None:
        return runs.start(ctx, "donation_request")
    lines = "\n".join(_survey_bullets(response.answers, ctx.lang))
    lead = t(
        "don_survey_offer",
        ctx.lang,
        date=service.show_date(response.submitted_at, ctx.lang, ctx.contact.timezone),
        lines=lines,
    )
    return _start_with(ctx, "donation_start", lead, don_response=response.id)


def _survey_lines(answers: dict[str, Any]) -> list[LineInput]:
    """Turn emergency-survey supplies and quantities into request lines."""
    found = []
    quantities = answers.get("quantities") or {}
    for option in answers.get("supplies") or []:
        item = catalogue().by_survey_option(option)
        quantity = quantities.get(option)
        if item is None or not isinstance(quantity, int) or quantity < 1:
            continue
        description = answers.get("supplies_other") if item.id == "other" else None
        found.append(LineInput(item.id, item.group, quantity, description))
    return found


def _survey_bullets(answers: dict[str, Any], lang: str) -> list[str]:
    """Show the supplies of an emergency-survey answer."""
    return [
        f"• {item_name(line.item_id, lang, line.description)}: "
        f"{quantity_text(line.quantity, line.item_id, lang)}"
        for line in _survey_lines(answers)
    ]


@on_submit("don_start")
def _from_survey(ctx: Ctx, run: SurveyRun, definition: Any, results: dict[str, Any]) -> None:
    """Draft the request from the survey answers (then ask what they lack), or start afresh."""
    if results.get("start") != "survey":
        _then(run, "donation_request")
        return
    response = store.get_survey_response(
        session=ctx.session, response_id=int(run.state.get("don_response") or 0)
    )
    if response is None or response.contact_id != ctx.contact.id:
        _then(run, "donation_request")
        return
    answers = response.answers
    lines = _survey_lines(answers)
    if not lines:
        _then(run, "donation_request")
        return
    recipients = catalog_option_label("emergency_needs", "recipients", answers.get("recipients"))
    _drop_drafts(ctx)
    store.create_request(
        session=ctx.session,
        now=ctx.now,
        lines=lines,
        contact_id=ctx.contact.id,
        source="survey",
        survey_response_id=response.id,
        institution=answers.get("recipient_details") or recipients,
        urgency=str(answers.get("urgency") or "medium"),
        language=ctx.lang,
        **_city(ctx),
    )
    _then(run, "donation_complete")


def catalog_option_label(survey_id: str, question_id: str, option: object) -> str | None:
    """Return the English label of a survey option (institutions are stored as typed)."""
    from handlers.definitions import catalog

    if not isinstance(option, str) or survey_id not in catalog():
        return None
    found = catalog()[survey_id].question(question_id).option(option)
    return pick(found.label, "en") if found else None


def _city(ctx: Ctx) -> dict[str, Any]:
    """The requesting city, from the contact's registration."""
    return {
        "city_name": ctx.contact.city_name,
        "city_geonameid": ctx.contact.city_geonameid,
        "country_code": ctx.contact.country_code,
    }


def _drop_drafts(ctx: Ctx) -> None:
    """Cancel drafts left from an earlier, unfinished request."""
    while (
        draft := store.latest_draft(session=ctx.session, contact_id=ctx.contact.id or 0)
    ) is not None:
        store.set_request_status(
            session=ctx.session, request=draft, status=RequestStatus.CANCELLED, now=ctx.now
        )


@on_submit("don_request")
def _filed(ctx: Ctx, run: SurveyRun, definition: Any, results: dict[str, Any]) -> None:
    """Turn the form's answers into a draft request and check it."""
    if not _registered(ctx):
        _say(ctx, run, t("don_register_first", ctx.lang), "unregistered")
        return
    quantities = results.get("quantities") or {}
    lines = []
    for item_id in results.get("items") or []:
        item = catalogue().item(item_id)
        description = results.get("items_other") if item.id == "other" else None
        lines.append(LineInput(item.id, item.group, int(quantities[item_id]), description))
    needed = results.get("needed_by")
    _drop_drafts(ctx)
    request = store.create_request(
        session=ctx.session,
        now=ctx.now,
        lines=lines,
        contact_id=ctx.contact.id,
        institution=results.get("institution"),
        delivery_address=results.get("address"),
        urgency=str(results.get("urgency") or "medium"),
        needed_by=date.fromisoformat(needed) if needed else None,
        purpose=results.get("purpose"),
        language=ctx.lang,
        **_city(ctx),
    )
    _check_and_continue(ctx, run, request)


@on_submit("don_complete")
def _completed(ctx: Ctx, run: SurveyRun, definition: Any, results: dict[str, Any]) -> None:
    """Add the address and purpose to the draft made from the survey, then check it."""
    request = store.latest_draft(session=ctx.session, contact_id=ctx.contact.id or 0)
    if request is None:
        return
    store.update_request(
        session=ctx.session,
        request=request,
        now=ctx.now,
        delivery_address=results.get("address"),
        purpose=results.get("purpose"),
    )
    _check_and_continue(ctx, run, request)


# -- checks -----------------------------------------------------------------------------------


def line_issues(line: Any, *, units: bool = True) -> list[dict[str, Any]]:
    """What looks wrong with one line: above the plausible bound, or maybe boxes not pieces."""
    item = catalogue().item(line.item_id)
    if item.bound is not None and line.quantity > item.bound:
        return [{"kind": "bound", "line": line.id}]
    if (
        units
        and item.pack > 1
        and item.check_below is not None
        and line.quantity < item.check_below
        and (item.bound is None or line.quantity * item.pack <= item.bound)
    ):
        return [{"kind": "unit", "line": line.id}]
    return []


def _check_and_continue(ctx: Ctx, run: SurveyRun, request: DonationRequest) -> None:
    """Find everything to ask back about a draft, then ask the first thing or file it."""
    lines = store.request_lines(session=ctx.session, request_id=request.id or 0)
    issues = [issue for line in lines for issue in line_issues(line)]
    groups = sorted({line.item_group for line in lines if line.item_group != "other"})
    others = store.open_requests_for_city(
        session=ctx.session,
        country_code=request.country_code,
        city_name=request.city_name,
        city_geonameid=request.city_geonameid,
        groups=groups,
        exclude_id=request.id,
    )
    if others:
        issues.append({"kind": "duplicate", "other": others[-1].id})
    _set_checks(ctx, request, issues=issues)
    _continue(ctx, run, request)


def _set_checks(ctx: Ctx, request: DonationRequest, **changes: Any) -> None:
    """Update what is still to check (and what was confirmed) on a draft."""
    store.update_request(
        session=ctx.session, request=request, now=ctx.now, checks={**request.checks, **changes}
    )


def _continue(ctx: Ctx, run: SurveyRun, request: DonationRequest) -> None:
    """Ask about the first open issue, or file the request when none is left."""
    issues = list(request.checks.get("issues") or [])
    if not issues:
        service.file_request(ctx.session, request, ctx.now)
        return
    issue = issues[0]
    lang = ctx.lang
    if issue["kind"] == "duplicate":
        other = store.get_request(session=ctx.session, request_id=int(issue["other"]))
        assert other is not None
        text = t(
            "don_check_duplicate",
            lang,
            ref=other.ref,
            date=service.show_date(other.submitted_at, lang, ctx.contact.timezone),
            status=service.status_label(other.status, lang),
            lines="\n".join(service.line_texts(ctx.session, other, lang)),
        )
    else:
        line = store.get_request_line(session=ctx.session, line_id=int(issue["line"]))
        assert line is not None
        item = catalogue().item(line.item_id)
        values = {
            "item": item_name(line.item_id, lang, line.description),
            "quantity": quantity_text(line.quantity, line.item_id, lang),
        }
        if issue["kind"] == "bound":
            text = t(
                "don_check_bound",
                lang,
                bound=quantity_text(item.bound or 0, item.id, lang),
                **values,
            )
        else:
            boxes = quantity_text(line.quantity * item.pack, item.id, lang)
            text = t(
                "don_check_unit",
                lang,
                pack=item.pack,
                boxes=boxes,
                count=line.quantity,
                **values,
            )
    _say(ctx, run, text, f"check:{request.id}")
    _then(run, CHECK_FORMS[issue["kind"]])


def _open_issue(ctx: Ctx, kind: str) -> tuple[DonationRequest, dict[str, Any]] | None:
    """Return the draft being checked and its first issue, when that issue is of `kind`."""
    request = store.latest_draft(session=ctx.session, contact_id=ctx.contact.id or 0)
    if request is None:
        return None
    issues = list(request.checks.get("issues") or [])
    if not issues or issues[0]["kind"] != kind:
        return None
    return request, issues[0]


def _resolved(ctx: Ctx, request: DonationRequest, decision: str) -> None:
    """Drop the first issue, remembering how the official answered it (staff see it)."""
    issues = list(request.checks.get("issues") or [])
    done = issues.pop(0)
    confirmed = [*(request.checks.get("confirmed") or []), {**done, "answer": decision}]
    _set_checks(ctx, request, issues=issues, confirmed=confirmed)


def _cancel_draft(ctx: Ctx, run: SurveyRun, request: DonationRequest) -> None:
    """Cancel a draft at the official's wish."""
    store.set_request_status(
        session=ctx.session, request=request, status=RequestStatus.CANCELLED, now=ctx.now
    )
    _say(ctx, run, t("don_draft_cancelled", ctx.lang, ref=request.ref), "cancelled")


def _retype(ctx: Ctx, run: SurveyRun, request: DonationRequest, line_id: int) -> None:
    """Ask for a line's quantity again."""
    line = store.get_request_line(session=ctx.session, line_id=line_id)
    assert line is not None
    _set_checks(ctx, request, editing=line_id)
    item = item_name(line.item_id, ctx.lang, line.description)
    _say(ctx, run, t("don_check_retype", ctx.lang, item=item), f"retype:{line_id}")
    _then(run, "donation_quantity")


@on_submit("don_check_bound")
def _bound_answer(ctx: Ctx, run: SurveyRun, definition: Any, results: dict[str, Any]) -> None:
    """Keep a large quantity, correct it, or cancel the draft."""
    found = _open_issue(ctx, "bound")
    if found is None:
        return
    request, issue = found
    decision = str(results.get("decision"))
    if decision == "cancel":
        _cancel_draft(ctx, run, request)
    elif decision == "change":
        _retype(ctx, run, request, int(issue["line"]))
    else:
        _resolved(ctx, request, "keep")
        _continue(ctx, run, request)


@on_submit("don_check_unit")
def _unit_answer(ctx: Ctx, run: SurveyRun, definition: Any, results: dict[str, Any]) -> None:
    """Read a small quantity as pieces, multiply it by the box size, or type it again."""
    found = _open_issue(ctx, "unit")
    if found is None:
        return
    request, issue = found
    decision = str(results.get("decision"))
    line = store.get_request_line(session=ctx.session, line_id=int(issue["line"]))
    assert line is not None
    if decision == "change":
        _retype(ctx, run, request, line.id or 0)
        return
    _resolved(ctx, request, decision)
    if decision == "boxes":
        item = catalogue().item(line.item_id)
        store.set_line_quantity(
            session=ctx.session, line=line, quantity=line.quantity * item.pack, now=ctx.now
        )
        extra = line_issues(line, units=False)
        _set_checks(ctx, request, issues=extra + list(request.checks.get("issues") or []))
    _continue(ctx, run, request)


@on_submit("don_check_duplicate")
def _duplicate_answer(ctx: Ctx, run: SurveyRun, definition: Any, results: dict[str, Any]) -> None:
    """File a request although the city has a similar open one, or cancel it."""
    found = _open_issue(ctx, "duplicate")
    if found is None:
        return
    request, _ = found
    if results.get("decision") == "cancel":
        _cancel_draft(ctx, run, request)
        return
    _resolved(ctx, request, "file")
    _continue(ctx, run, request)


@on_submit("don_quantity")
def _new_quantity(ctx: Ctx, run: SurveyRun, definition: Any, results: dict[str, Any]) -> None:
    """Store a corrected quantity and check that line again (not for boxes: it was retyped)."""
    request = store.latest_draft(session=ctx.session, contact_id=ctx.contact.id or 0)
    if request is None or not request.checks.get("editing"):
        return
    line = store.get_request_line(session=ctx.session, line_id=int(request.checks["editing"]))
    assert line is not None
    store.set_line_quantity(
        session=ctx.session, line=line, quantity=int(results["quantity"]), now=ctx.now
    )
    issues = [i for i in request.checks.get("issues") or [] if i.get("line") != line.id]
    _set_checks(ctx, request, issues=line_issues(line, units=False) + issues, editing=None)
    _continue(ctx, run, request)


# -- following requests -----------------------------------------------------------------------


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
    _clear_prompt(ctx)
    new = Choice("dv:new", t("don_btn_new_request", ctx.lang))
    if not found:
        return [Outgoing(text=t("don_no_requests", ctx.lang), choices=(new,))]
    lines = [t("don_list_title", ctx.lang)]
    for request in found:
        items = ", ".join(
            item_name(line.item_id, ctx.lang, line.description)
            for line in store.request_lines(session=ctx.session, request_id=request.id or 0)
        )
        lines.append(
            f"• {request.ref} · {service.status_label(request.status, ctx.lang)} · {items}"
        )
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
    request = _own(ctx, store.request_by_ref(session=ctx.session, ref=ref))
    _clear_prompt(ctx)
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
            status=service.status_label(request.status, lang),
            date=service.show_date(
                request.submitted_at or request.created_at, lang, ctx.contact.timezone
            ),
            city=service.city_label(request, lang),
        )
    ]
    for line in store.request_lines(session=session, request_id=request.id or 0):
        parts.append(
            t(
                "don_view_line",
                lang,
                item=item_name(line.item_id, lang, line.description),
                requested=quantity_text(line.quantity, line.item_id, lang),
                pledged=show_number(line.quantity_pledged, lang),
                shipped=show_number(line.quantity_shipped, lang),
                delivered=show_number(line.quantity_delivered, lang),
            )
        )
    for shipment in store.shipments_of_request(session=session, request_id=request.id or 0):
        donor = store.get_donor(session=session, donor_id=shipment.donor_id)
        parts.append(
            t(
                "don_view_shipment",
                lang,
                shipment=shipment.ref,
                donor=donor.name if donor else "?",
                status=service.status_label(shipment.status, lang),
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
    request = _own(
        ctx,
        store.get_request(session=ctx.session, request_id=int(request_id))
        if request_id.isdecimal()
        else None,
    )
    _clear_prompt(ctx)
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
            service.cancel_by_official(ctx.session, request, ctx.now)
        except DonationError as error:
            return [Outgoing(text=service.error_text(error, ctx.lang))]
        return [Outgoing(text=t("don_request_cancelled", ctx.lang, ref=request.ref))]
    return [status_view(ctx, request)]


# -- answering staff questions ----------------------------------------------------------------


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
    return _start_with(ctx, "donation_answer", lead, don_note=note.id)


@on_submit("don_answer")
def _answered(ctx: Ctx, run: SurveyRun, definition: Any, results: dict[str, Any]) -> None:
    """Put the answer onto the request and tell the staff who asked."""
    note = store.get_note(session=ctx.session, note_id=int(run.state.get("don_note") or 0))
    if note is None or note.answered_at is not None:
        return
    service.answer(ctx.session, note, str(results.get("answer") or ""), ctx.contact, ctx.now)


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
        shipment, new = service.receipt(ctx.session, event, ctx.contact, ctx.now)
    except DonationError as error:
        return [Outgoing(text=service.error_text(error, ctx.lang))]
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
    return _start_with(ctx, "donation_problem", lead, don_shipment=shipment_id)


@on_submit("don_problem")
def _problem(ctx: Ctx, run: SurveyRun, definition: Any, results: dict[str, Any]) -> None:
    """Record the problem on the shipment's requests and tell staff."""
    shipment = store.get_shipment(
        session=ctx.session, shipment_id=int(run.state.get("don_shipment") or 0)
    )
    if shipment is None:
        return
    service.problem(
        ctx.session,
        shipment,
        ctx.contact,
        str(results.get("kind") or "other"),
        results.get("details"),
        ctx.now,
    )


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

from handlers import donations_staff  # noqa: E402, F401  (registers the staff commands)
