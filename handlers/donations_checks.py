"""Checking a draft request with the official before it is filed, one thing at a time.

What looks wrong is asked back (a quantity above the item's plausibility bound, a small
quantity that may be a count of boxes, an open request of the same city for the same
supplies) with small forms chained through the run's `then`, each preceded by a message that
names the item; once nothing is left the request is filed and its reference (R-7K3F) sent.
"""

from __future__ import annotations

from typing import Any

from handlers import donations_review
from handlers.context import Ctx
from handlers.donations_catalogue import catalogue, item_name, quantity_text
from handlers.donations_chat import say, then
from handlers.donations_text import line_texts, show_date, status_label
from handlers.i18n import t
from handlers.runs import on_submit
from storage import donations as store
from storage.donations import RequestStatus
from storage.donations_models import DonationRequest
from storage.models import SurveyRun

CHECK_FORMS = {
    "bound": "donation_check_bound",
    "unit": "donation_check_unit",
    "duplicate": "donation_check_duplicate",
}


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


def check_and_continue(ctx: Ctx, run: SurveyRun, request: DonationRequest) -> None:
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
        donations_review.file_request(ctx.session, request, ctx.now)
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
            date=show_date(other.submitted_at, lang, ctx.contact.timezone),
            status=status_label(other.status, lang),
            lines="\n".join(line_texts(ctx.session, other, lang)),
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
    say(ctx, run, text, f"check:{request.id}")
    then(run, CHECK_FORMS[issue["kind"]])


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
    say(ctx, run, t("don_draft_cancelled", ctx.lang, ref=request.ref), "cancelled")


def _retype(ctx: Ctx, run: SurveyRun, request: DonationRequest, line_id: int) -> None:
    """Ask for a line's quantity again."""
    line = store.get_request_line(session=ctx.session, line_id=line_id)
    assert line is not None
    _set_checks(ctx, request, editing=line_id)
    item = item_name(line.item_id, ctx.lang, line.description)
    say(ctx, run, t("don_check_retype", ctx.lang, item=item), f"retype:{line_id}")
    then(run, "donation_quantity")


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
