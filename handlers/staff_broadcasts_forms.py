"""The broadcast forms' submissions: the compose form saves a draft, the send form sends it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from handlers import (
    broadcasts_cancel_retry,
    broadcasts_compose,
    broadcasts_segments,
    broadcasts_sending,
    runs,
)
from handlers.broadcasts_compose import BroadcastError
from handlers.context import Ctx
from handlers.definitions import Definition, catalog
from handlers.i18n import t
from handlers.staff_broadcasts import SEND_FORM, _preview_text, _schedule, _scheduled_text
from handlers.staff_chat import _is_staff, _post, logger
from storage import audit
from storage import broadcasts as bc_db
from storage.models import SurveyRun


def _segment(ctx: Ctx, results: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The segment spec of the compose form's answers, and the countries not recognised."""
    chosen = set(results.get("segment") or [])
    if "everyone" in chosen or not chosen:
        return {}, []
    spec: dict[str, Any] = {}
    unknown: list[str] = []
    if "country" in chosen:
        codes, unknown = broadcasts_segments.countries_from_text(
            str(results.get("countries") or ""), ctx.places.country
        )
        spec["country"] = codes
    if "city" in chosen:
        spec["city"] = broadcasts_segments.cities_from_text(str(results.get("cities") or ""))
    answers = {
        "region": "regions",
        "role": "roles",
        "focus": "focus",
        "language": "audience_languages",
        "channel": "channels",
    }
    for kind, question in answers.items():
        if kind in chosen:
            spec[kind] = list(results.get(question) or [])
    if "webinar" in chosen:
        number = results.get("webinar")
        spec["webinar"] = [int(number)] if number is not None else []
    if "donations" in chosen:
        spec["donations"] = True
    return spec, unknown


@runs.on_submit("staff_broadcast_draft")
def _drafted(ctx: Ctx, run: SurveyRun, definition: Definition, results: dict[str, Any]) -> None:
    """Save the composed broadcast as a draft, post its preview, then ask what to do with it."""
    if not _is_staff(ctx):
        _refused(ctx, run)
        return
    texts_by_lang = results.get("text") or {}
    order = [lang for lang in results.get("languages") or [] if lang in texts_by_lang]
    texts = {lang: str(texts_by_lang[lang]) for lang in order}
    spec, unknown = _segment(ctx, results)
    try:
        draft = broadcasts_compose.create_draft(
            session=ctx.session,
            title=str(results.get("title") or ""),
            texts=texts,
            segment=spec,
            default_language=ctx.config.default_language,
            now=ctx.now,
            created_by=ctx.contact.id,
            via="chat",
            unknown_values=unknown,
        )
    except BroadcastError as error:
        _post(ctx, t(error.key, ctx.lang, **error.values), f"bcform:{run.id}")
        return
    _post(ctx, _preview_text(ctx, draft), f"bcpv:{draft.id}:{run.id}")
    if SEND_FORM in catalog():
        run.state = {**run.state, "then": SEND_FORM}


@runs.on_submit("staff_broadcast_send")
def _decided(ctx: Ctx, run: SurveyRun, definition: Definition, results: dict[str, Any]) -> None:
    """Send, schedule or discard the staff member's latest draft."""
    if not _is_staff(ctx):
        _refused(ctx, run)
        return
    draft = bc_db.latest_draft(session=ctx.session, created_by=ctx.contact.id or 0)
    key = f"bcsend:{run.id}"
    if draft is None:
        _post(ctx, t("staff_bc_no_draft", ctx.lang), key)
        return
    choice = results.get("when")
    try:
        if choice == "discard":
            broadcasts_cancel_retry.cancel(
                session=ctx.session, broadcast=draft, now=ctx.now, actor=ctx.contact.id, via="chat"
            )
            return
        at: datetime | None = None
        if choice == "later":
            day = date.fromisoformat(str(results.get("date")))
            at = datetime.combine(day, time(int(results.get("hour") or 0)), tzinfo=UTC)
            if at <= ctx.now:
                _post(ctx, t("staff_bc_bad_time", ctx.lang, id=draft.id), key)
                return
        _schedule(ctx, draft, at)
    except BroadcastError as error:
        _post(ctx, t(error.key, ctx.lang, **error.values), key)
        return
    _post(ctx, _scheduled_text(ctx, draft, at), key)
    if at is None:
        broadcasts_sending.start_now(session=ctx.session, broadcast=draft, now=ctx.now)


def _refused(ctx: Ctx, run: SurveyRun) -> None:
    """Refuse a staff form submitted by someone who is no longer staff, and audit it."""
    audit.record(
        session=ctx.session,
        action="staff_denied",
        now=ctx.now,
        actor_contact_id=ctx.contact.id,
        subject=run.survey_id,
    )
    logger.warning("staff form refused run=%s contact=%s", run.id, ctx.contact.id)
    _post(ctx, t("staff_not_allowed", ctx.lang), f"bcdeny:{run.id}")
