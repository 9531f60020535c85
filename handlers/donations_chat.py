"""What the officials' donation dialogs share: messages during a form, chained forms, ownership."""

from __future__ import annotations

from typing import Any

from handlers import runs
from handlers.context import Ctx
from handlers.messages import Choice, Outgoing
from handlers.notify import queue_for_contact
from storage import contacts, surveys
from storage.donations_models import DonationRequest
from storage.models import SurveyRun


def say(ctx: Ctx, run: SurveyRun, text: str, tag: str, choices: tuple[Choice, ...] = ()) -> None:
    """Queue a message during a form's submission (it arrives before the form's last reply)."""
    queue_for_contact(
        session=ctx.session,
        contact=ctx.contact,
        message=Outgoing(text=text, choices=choices),
        kind="reply",
        key=f"don:{tag}:{run.id}",
        now=ctx.now,
    )


def then(run: SurveyRun, survey_id: str) -> None:
    """Make the run's end start another form."""
    run.state = {**run.state, "then": survey_id}


def start_with(ctx: Ctx, survey_id: str, lead: str, **state: Any) -> list[Outgoing]:
    """Start a form with a lead and remember what it is about in the run's state."""
    replies = runs.start(ctx, survey_id, lead=lead)
    run = surveys.active_run(session=ctx.session, contact_id=ctx.contact.id or 0)
    if run is not None:
        run.state = {**run.state, **state}
        surveys.save_run(session=ctx.session, run=run)
    return replies


def clear_prompt(ctx: Ctx) -> None:
    """Forget the menu just shown, so a typed number is not read as a menu pick."""
    contacts.update_contact(session=ctx.session, contact=ctx.contact, prompt=None, prompt_data={})


def is_registered(ctx: Ctx) -> bool:
    """Say whether the contact registered their office and city."""
    return ctx.contact.consent_at is not None and bool(ctx.contact.city_name)


def own(ctx: Ctx, request: DonationRequest | None) -> DonationRequest | None:
    """Return the request when the contact filed it (or is staff), else None."""
    if request is None:
        return None
    if request.contact_id == ctx.contact.id or ctx.contact.staff_role in ("staff", "admin"):
        return request
    return None
