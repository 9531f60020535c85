"""Survey definitions (frozen copies), runs and submitted responses."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Update, bindparam
from sqlalchemy import update as sa_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, func, select, update
from sqlmodel.sql.expression import SelectOfScalar

from storage import direct, frozen, upsert
from storage.models import SurveyDefinition, SurveyResponse, SurveyRun


def pin_definition(
    *,
    session: Session,
    survey_id: str,
    version: int,
    digest: str,
    body: dict[str, Any],
    now: datetime,
) -> int:
    """Return the id of the stored copy of this exact definition, storing it the first time."""
    key = ("pinned", survey_id, digest)
    known = frozen.recall(session, key)
    if isinstance(known, int):
        return known
    stmt = select(SurveyDefinition.id).where(
        SurveyDefinition.survey_id == survey_id, SurveyDefinition.digest == digest
    )
    found = session.exec(stmt).first()
    if found is None:
        row = SurveyDefinition(
            survey_id=survey_id, version=version, digest=digest, body=body, created_at=now
        )
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
            found = row.id
        except IntegrityError:  # stored meanwhile by another process
            found = session.exec(stmt).first()
    assert found is not None
    frozen.remember(session, key, found)
    return found


def get_definition(*, session: Session, definition_id: int) -> SurveyDefinition | None:
    """Return a stored definition by id."""
    return session.get(SurveyDefinition, definition_id)


def definition_digest(*, session: Session, definition_id: int) -> str | None:
    """Return only the digest of a stored definition (remembered: stored copies are frozen)."""
    key = ("definition_digest", definition_id)
    digest = frozen.recall(session, key)
    if isinstance(digest, str):
        return digest
    found = session.exec(_digest_query(), params={"id": definition_id}).first()
    if found is not None:
        frozen.remember(session, key, found)
    return found


@cache
def _digest_query() -> SelectOfScalar[str]:
    """The digest query, built once."""
    return select(SurveyDefinition.digest).where(SurveyDefinition.id == bindparam("id"))


def active_run(*, session: Session, contact_id: int) -> SurveyRun | None:
    """Return the contact's active run, if any."""
    return session.exec(_active_run_query(), params={"contact_id": contact_id}).first()


@cache
def _active_run_query() -> SelectOfScalar[SurveyRun]:
    """The active-run query, built once (it runs on most messages)."""
    stmt = select(SurveyRun).where(
        SurveyRun.contact_id == bindparam("contact_id"), SurveyRun.status == "active"
    )
    return stmt.order_by(col(SurveyRun.id).desc()).limit(1)


def start_run(
    *,
    session: Session,
    contact_id: int,
    survey_id: str,
    definition_id: int,
    now: datetime,
    expires_at: datetime,
) -> SurveyRun:
    """End any active run of the contact and start a new one.

    Two statements on the driver's cursor (runs start on many messages); runs the session
    holds are kept in step.
    """
    direct.execute(session, _cancel_active(), {"contact_id": contact_id, "now": now})
    for held in list(session.identity_map.values()):
        if not isinstance(held, SurveyRun):
            continue
        if held.contact_id == contact_id and held.status == "active":
            set_committed_value(held, "status", "cancelled")
            set_committed_value(held, "ended_at", now)
    values = {
        "contact_id": contact_id,
        "survey_id": survey_id,
        "definition_id": definition_id,
        "started_at": now,
        "updated_at": now,
        "expires_at": expires_at,
    }
    return direct.insert(session, SurveyRun, values)


@cache
def _cancel_active() -> Update:
    """Cancel a contact's active runs, built once."""
    table = SurveyRun.__table__  # type: ignore[attr-defined]
    return (
        sa_update(table)
        .where(table.c.contact_id == bindparam("contact_id"), table.c.status == "active")
        .values(status="cancelled", ended_at=bindparam("now"))
    )


def save_run_state(*, session: Session, run: SurveyRun, values: dict[str, Any]) -> None:
    """Write the run's changed columns now, as one statement, and keep the object in step.

    Cheaper than the ORM's change tracking and flush on the path every answer takes; the
    object ends up as though it had been loaded with these values.
    """
    changed = {name: value for name, value in values.items() if getattr(run, name) != value}
    if not changed:
        return
    params = {f"v_{name}": value for name, value in changed.items()}
    direct.execute(session, _update_run(tuple(changed)), {"run_id": run.id, **params})
    for name, value in changed.items():
        set_committed_value(run, name, value)


@cache
def _update_run(columns: tuple[str, ...]) -> Update:
    """The run update for one set of columns, built once."""
    table = SurveyRun.__table__  # type: ignore[attr-defined]
    return (
        sa_update(table)
        .where(table.c.id == bindparam("run_id"))
        .values({name: bindparam(f"v_{name}") for name in columns})
    )


def save_run(*, session: Session, run: SurveyRun) -> None:
    """Write a run's changed state (at the next flush)."""
    session.add(run)


def end_run(*, session: Session, run: SurveyRun, status: str, now: datetime) -> None:
    """Close a run as submitted, cancelled or expired (written now)."""
    session.add(run)
    if session.is_modified(run):  # changes not yet written go first, the ORM's way
        session.flush([run])
    save_run_state(
        session=session, run=run, values={"status": status, "ended_at": now, "updated_at": now}
    )


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
) -> int:
    """Store a submitted survey (idempotent per run); return the response's id."""
    assert run.id is not None
    values = {
        "run_id": run.id,
        "survey_id": run.survey_id,
        "version": version,
        "definition_id": run.definition_id,
        "contact_id": contact_id,
        "country_code": country_code,
        "city_name": city_name,
        "language": language,
        "answers": answers,
        "submitted_at": now,
    }
    new_id = upsert.insert_ignore(session, SurveyResponse, values, flush=False)
    if new_id is not None:
        return new_id
    existing = session.exec(select(SurveyResponse.id).where(SurveyResponse.run_id == run.id))
    found = existing.first()
    assert found is not None
    return found


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
