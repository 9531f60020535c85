"""Survey and form runs: starting, continuing and submitting them through the engine."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session

from handlers import features
from handlers.context import Ctx
from handlers.definitions import Definition, catalog, from_stored
from handlers.engine import RunState, Turn, Walker
from handlers.i18n import pick, t
from handlers.menu import main_menu
from handlers.messages import Choice, Outgoing
from storage import audit, contacts, surveys
from storage.models import SurveyRun

logger = logging.getLogger(__name__)

SubmitHandler = Callable[[Ctx, SurveyRun, Definition, dict[str, Any]], None]


def _walker(ctx: Ctx, definition: Definition) -> Walker:
    """Build the engine for this turn."""
    return Walker(definition, ctx.lang, ctx.places, ctx.now.date())


def _state(run: SurveyRun) -> RunState:
    """Read a run's engine state."""
    return RunState(
        step=run.step,
        answers=dict(run.answers),
        history=list(run.state.get("history", [])),
        seq=run.prompt_seq,
        pending=dict(run.state.get("pending", {})),
    )


def _save(ctx: Ctx, run: SurveyRun, state: RunState) -> None:
    """Write the engine state back to the run (now) and push its expiry forward."""
    values = {
        "step": state.step,
        "answers": dict(state.answers),
        "state": {**run.state, "history": list(state.history), "pending": dict(state.pending)},
        "prompt_seq": state.seq,
        "updated_at": ctx.now,
        "expires_at": ctx.now + ctx.config.run_expiry,
    }
    surveys.save_run_state(session=ctx.session, run=run, values=values)


def start(ctx: Ctx, survey_id: str, *, lead: str = "", then: str | None = None) -> list[Outgoing]:
    """Start a survey or form (ending any other) and ask its first question."""
    definition = catalog()[survey_id]
    pinned_id = surveys.pin_definition(
        session=ctx.session,
        survey_id=definition.id,
        version=definition.version,
        digest=definition.digest,
        body=definition.body,
        now=ctx.now,
    )
    assert ctx.contact.id is not None
    run = surveys.start_run(
        session=ctx.session,
        contact_id=ctx.contact.id,
        survey_id=survey_id,
        definition_id=pinned_id,
        now=ctx.now,
        expires_at=ctx.now + ctx.config.run_expiry,
    )
    contacts.update_contact(session=ctx.session, contact=ctx.contact, prompt=None, prompt_data={})
    if then:
        run.state = {"then": then}
    state = RunState()
    turn = _walker(ctx, definition).start(state)
    _save(ctx, run, state)
    logger.info("run started run=%s survey=%s contact=%s", run.id, survey_id, ctx.contact.id)
    if turn.replies:
        turn.replies[0] = turn.replies[0].with_lead(lead)
    return turn.replies


_BY_DIGEST: dict[str, Definition] = {}


def definition_of(ctx: Ctx, run: SurveyRun) -> Definition:
    """Return the definition a run is pinned to (parsed once per process, by content digest)."""
    digest = surveys.definition_digest(session=ctx.session, definition_id=run.definition_id)
    assert digest is not None
    if digest not in _BY_DIGEST:
        stored = surveys.get_definition(session=ctx.session, definition_id=run.definition_id)
        assert stored is not None
        _BY_DIGEST[digest] = from_stored(stored.body)
    return _BY_DIGEST[digest]


def step(
    ctx: Ctx, run: SurveyRun, action: str, text: str = "", choice_id: str | None = None
) -> list[Outgoing]:
    """Apply `answer`, `back`, `skip` or `help` to an active run and finish it when it ends."""
    definition = definition_of(ctx, run)
    walker = _walker(ctx, definition)
    state = _state(run)
    if action == "answer":
        turn = walker.answer(state, text, choice_id)
    else:
        turn = getattr(walker, action)(state)
    _save(ctx, run, state)
    return turn.replies + _finish(ctx, run, definition, walker, state, turn)


def _finish(
    ctx: Ctx, run: SurveyRun, definition: Definition, walker: Walker, state: RunState, turn: Turn
) -> list[Outgoing]:
    """Handle the end of a run: submit, exit early, or cancel."""
    if turn.outcome is None:
        return []
    if turn.outcome == "cancel":
        return cancel(ctx, run)
    results = walker.results(state)
    SUBMIT_HANDLERS[definition.on_submit or "save_response"](ctx, run, definition, results)
    surveys.end_run(session=ctx.session, run=run, status="submitted", now=ctx.now)
    logger.info("run %s run=%s survey=%s", turn.outcome, run.id, run.survey_id)
    if turn.outcome == "exit":
        question = next(q for q in definition.questions if q.id in results and q.exit_message)
        assert question.exit_message is not None
        then = run.state.get("then")
        if then in catalog():  # the survey they came for, answered anonymously
            return start(ctx, then, lead=pick(question.exit_message, ctx.lang))
        return [main_menu(ctx, lead=pick(question.exit_message, ctx.lang))]
    then = run.state.get("then")
    if isinstance(then, str) and then.startswith("link:"):
        return follow_link(ctx, then, lead=pick(definition.done, ctx.lang))
    if then in catalog():
        return start(ctx, then, lead=pick(definition.done, ctx.lang))
    return [main_menu(ctx, lead=pick(definition.done, ctx.lang))]


def follow_link(ctx: Ctx, then: str, *, lead: str) -> list[Outgoing]:
    """Follow a feature deep link (`link:w12`) kept through the welcome, after `lead`."""
    replies = features.follow_link(ctx, then.removeprefix("link:"))
    if not replies:
        return [main_menu(ctx, lead=lead)]
    replies[0] = replies[0].with_lead(lead)
    return replies


def cancel(ctx: Ctx, run: SurveyRun) -> list[Outgoing]:
    """Cancel a run; nothing of it is kept."""
    surveys.end_run(session=ctx.session, run=run, status="cancelled", now=ctx.now)
    logger.info("run cancelled run=%s", run.id)
    return [main_menu(ctx, lead=t("run_cancelled", ctx.lang))]


def expire(ctx: Ctx, run: SurveyRun) -> list[Outgoing]:
    """Tell the contact their run expired and offer to start it again."""
    surveys.end_run(session=ctx.session, run=run, status="expired", now=ctx.now)
    return expired_notice(ctx, run.survey_id)


def expire_due(*, session: Session, now: datetime, limit: int = 500) -> int:
    """Expire overdue runs; each contact hears of it with their next message."""
    expired = surveys.expire_runs(session=session, now=now, limit=limit)
    for run in expired:
        contact = contacts.get_contact(session=session, contact_id=run.contact_id)
        if contact is not None and contact.prompt is None:
            contacts.update_contact(
                session=session,
                contact=contact,
                prompt="expired",
                prompt_data={"survey": run.survey_id},
            )
    return len(expired)


def expired_notice(ctx: Ctx, survey_id: str) -> list[Outgoing]:
    """Say a run expired; the next answer picks restart or the menu."""
    contacts.update_contact(
        session=ctx.session,
        contact=ctx.contact,
        prompt="expired",
        prompt_data={"survey": survey_id, "told": True},
    )
    title = pick(catalog()[survey_id].title, ctx.lang) if survey_id in catalog() else survey_id
    days = max(1, int(ctx.config.run_expiry.total_seconds() // 86400))
    return [
        Outgoing(
            text=t("run_expired", ctx.lang, title=title, days=days),
            choices=(
                Choice("x:restart", t("restart_button", ctx.lang)),
                Choice("x:menu", t("menu_button", ctx.lang)),
            ),
        )
    ]


def _save_response(
    ctx: Ctx, run: SurveyRun, definition: Definition, results: dict[str, Any]
) -> None:
    """Store a survey response, linked to the contact only when they consented."""
    consented = ctx.contact.consent_at is not None
    surveys.save_response(
        session=ctx.session,
        run=run,
        version=definition.version,
        language=ctx.lang,
        answers=results,
        now=ctx.now,
        contact_id=ctx.contact.id if consented else None,
        country_code=ctx.contact.country_code if consented else None,
        city_name=ctx.contact.city_name if consented else None,
    )


def _save_profile(
    ctx: Ctx, run: SurveyRun, definition: Definition, results: dict[str, Any]
) -> None:
    """Store the registration: profile and consent, or only the refusal."""
    if results.get("consent") is not True:
        contacts.update_contact(
            session=ctx.session, contact=ctx.contact, consent_refused_at=ctx.now
        )
        audit.record(
            session=ctx.session,
            action="consent_refused",
            now=ctx.now,
            actor_contact_id=ctx.contact.id,
        )
        return
    city = results.get("city") or {}
    contacts.update_contact(
        session=ctx.session,
        contact=ctx.contact,
        name=results.get("name"),
        role=results.get("role"),
        organisation=results.get("organisation"),
        city_name=city.get("name"),
        city_geonameid=city.get("geonameid"),
        country_code=city.get("country_code"),
        timezone=city.get("timezone"),
        consent_version=definition.consent_version,
        consent_at=ctx.now,
        consent_refused_at=None,
    )
    audit.record(
        session=ctx.session,
        action="consent_given",
        now=ctx.now,
        actor_contact_id=ctx.contact.id,
        details={"version": definition.consent_version},
    )


SUBMIT_HANDLERS: dict[str, SubmitHandler] = {
    "save_response": _save_response,
    "save_profile": _save_profile,
}


def on_submit(name: str) -> Callable[[SubmitHandler], SubmitHandler]:
    """Register what a form's `on_submit: <name>` does with its answers (feature modules)."""

    def register(handler: SubmitHandler) -> SubmitHandler:
        SUBMIT_HANDLERS[name] = handler
        return handler

    return register
