"""Filing a donation request in chat: the request form, or a draft from the emergency survey.

Filing is the `donation_request` form (or `donation_start` → `donation_complete` from the
latest emergency-survey answers). On submit the answers become a draft request, which
handlers/donations_checks.py checks before it is filed.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from handlers import runs
from handlers.context import Ctx
from handlers.donations_catalogue import catalogue, item_name, quantity_text
from handlers.donations_chat import is_registered, say, start_with, then
from handlers.donations_checks import check_and_continue
from handlers.donations_text import show_date
from handlers.features import entry
from handlers.i18n import pick, t
from handlers.messages import Outgoing
from handlers.runs import on_submit
from storage import donations as store
from storage.donations import LineInput, RequestStatus
from storage.models import SurveyRun


@entry("request")
def start_request(ctx: Ctx, text: str) -> list[Outgoing]:
    """Start a donation request (registration first; from the emergency survey if there is one)."""
    if not is_registered(ctx):
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
        date=show_date(response.submitted_at, ctx.lang, ctx.contact.timezone),
        lines=lines,
    )
    return start_with(ctx, "donation_start", lead, don_response=response.id)


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
        then(run, "donation_request")
        return
    response = store.get_survey_response(
        session=ctx.session, response_id=int(run.state.get("don_response") or 0)
    )
    if response is None or response.contact_id != ctx.contact.id:
        then(run, "donation_request")
        return
    answers = response.answers
    lines = _survey_lines(answers)
    if not lines:
        then(run, "donation_request")
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
    then(run, "donation_complete")


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
    if not is_registered(ctx):
        say(ctx, run, t("don_register_first", ctx.lang), "unregistered")
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
    check_and_continue(ctx, run, request)


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
    check_and_continue(ctx, run, request)
