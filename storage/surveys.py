"""Survey definitions (frozen copies), runs and submitted responses."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select, update
from sqlmodel.sql.expression import SelectOfScalar

from storage.models import SurveyDefinition, SurveyResponse, SurveyRun


def pin_definition(
    *,
    session: Session,
    survey_id: str,
    version: int,
    digest: str,
    body: dict[str, Any],
    now: datetime,
) -> SurveyDefinition:
    """Return the stored copy of this exact definition, storing it the first time."""
    stmt = select(SurveyDefinition).where(
        SurveyDefinition.survey_id == survey_id, SurveyDefinition.digest == digest
    )
    found = session.exec(stmt).first()
    if found is not None:
        return found
    row = SurveyDefinition(
        survey_id=survey_id, version=version, digest=digest, body=body, created_at=now
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        found = session.exec(stmt).first()
        assert found is not None
        return found
    return row


def get_definition(*, session: Session, definition_id: int) -> SurveyDefinition | None:
    """Return a stored definition by id."""
    return session.get(SurveyDefinition, definition_id)


def definition_digest(*, session: Session, definition_id: int) -> str | None:
    """Return only the digest of a stored definition (cheap; the body is cached by digest)."""
    return session.exec(_digest_query(), params={"id": definition_id}).first()


@cache
def _digest_query() -> SelectOfScalar[str]:
    """The digest query, built once."""
    return select(SurveyDefinition.digest).where(SurveyDefinition.id == bindparam("id"))


def active_run(*, session: Session, contact_id: int) -> SurveyRun | None:
    """Return the contact's active run, if any."""
    stmt = select(SurveyRun).where(
        SurveyRun.contact_id == contact_id, SurveyRun.status == "active"
    )
    return session.exec(stmt.order_by(col(SurveyRun.id).desc())).first()


def start_run(
    *,
    session: Session,
    contact_id: int,
    survey_id: str,
    definition_id: int,
    now: datetime,
    expires_at: datetime,
) -> SurveyRun:
    """End any active run of the contact and start a new one."""
    session.exec(
        update(SurveyRun)
        .where(col(SurveyRun.contact_id) == contact_id, col(SurveyRun.status) == "active")
        .values(status="cancelled", ended_at=now)
    )
    run = SurveyRun(
        contact_id=contact_id,
        survey_id=survey_id,
        definition_id=definition_id,
        started_at=now,
        updated_at=now,
        expires_at=expires_at,
    )
    session.add(run)
    session.flush()
    return run


def save_run(*, session: Session, run: SurveyRun) -> None:
    """Write a run's changed state (at the next flush)."""
    session.add(run)


def end_run(*, session: Session, run: SurveyRun, status: str, now: datetime) -> None:
    """Close a run as submitted, cancelled or expired."""
    run.status = status
    run.ended_at = now
    run.updated_at = now
    session.add(run)
    session.flush()


def expire_runs(*, session: Session, now: datetime, limit: int = 500) -> list[SurveyRun]:
    """Mark active runs past their expiry as expired and return them."""
    stmt = (
        select(SurveyRun)
        .where(SurveyRun.status == "active", SurveyRun.expires_at <= now)
        .order_by(col(SurveyRun.id))
        .limit(limit)
    )
    runs = list(session.exec(stmt))
    for run in runs:
        end_run(session=session, run=run, status="expired", now=now)
    return runs


def save_response(
    *,
    session: Session,
    run: SurveyRun,
    version: int,
    language: str,
    answers: dict[str, Any],
    now: datetime,
    contact_id: int | None,
    country_code: str | None,
    city_name: str | None,
) -> SurveyResponse:
    """Store a submitted survey (idempotent per run)."""
    existing = session.exec(select(SurveyResponse).where(SurveyResponse.run_id == run.id)).first()
    if existing is not None:
        return existing
    assert run.id is not None
    response = SurveyResponse(
        run_id=run.id,
        survey_id=run.survey_id,
        version=version,
        definition_id=run.definition_id,
        contact_id=contact_id,
        country_code=country_code,
        city_name=city_name,
        language=language,
        answers=answers,
        submitted_at=now,
    )
    session.add(response)
    session.flush()
    return response


def responses(*, session: Session, survey_id: str | None = None) -> list[SurveyResponse]:
    """Return submitted responses, oldest first."""
    stmt = select(SurveyResponse).order_by(col(SurveyResponse.id))
    if survey_id is not None:
        stmt = stmt.where(SurveyResponse.survey_id == survey_id)
    return list(session.exec(stmt))


def count_responses(*, session: Session, contact_id: int) -> dict[str, int]:
    """Count a contact's submitted responses per survey."""
    stmt = (
        select(SurveyResponse.survey_id, func.count())
        .where(SurveyResponse.contact_id == contact_id)
        .group_by(SurveyResponse.survey_id)
    )
    return {survey_id: int(n) for survey_id, n in session.exec(stmt)}


def anonymise_contact_data(*, session: Session, contact_id: int) -> int:
    """Unlink a contact's responses (keeping the country for aggregates) and drop its runs."""
    result = session.exec(
        update(SurveyResponse)
        .where(col(SurveyResponse.contact_id) == contact_id)
        .values(contact_id=None, city_name=None)
    )
    for run in session.exec(select(SurveyRun).where(SurveyRun.contact_id == contact_id)):
        session.delete(run)
    session.flush()
    return int(result.rowcount or 0)


def responses_of(*, session: Session, contact_id: int) -> list[SurveyResponse]:
    """Return a contact's submitted responses."""
    stmt = select(SurveyResponse).where(SurveyResponse.contact_id == contact_id)
    return list(session.exec(stmt.order_by(col(SurveyResponse.id))))


def replace_answers(
    *, session: Session, response: SurveyResponse, answers: dict[str, Any]
) -> None:
    """Overwrite a response's answers (used to strip free text on erasure)."""
    response.answers = dict(answers)
    session.add(response)
