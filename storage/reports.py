"""Read-only queries behind staff reports and exports, streamed in batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlmodel import Session, SQLModel, col, select

from storage.models import Contact, ContactURN, SurveyDefinition, SurveyResponse

BATCH = 1000


def columns_of(model: type[SQLModel]) -> list[str]:
    """The column names of a table model, in declaration order."""
    mapper = sa_inspect(model)
    assert mapper is not None
    return [c.key for c in mapper.columns]


def iter_table(*, session: Session, model: type[SQLModel]) -> Iterator[dict[str, Any]]:
    """Yield every row of a table as a mapping of column name to value, by id."""
    names = columns_of(model)
    order = getattr(model, "id", None)
    stmt = select(model)
    if order is not None:
        stmt = stmt.order_by(order)
    result = session.exec(stmt.execution_options(yield_per=BATCH))
    for row in result:
        yield {name: getattr(row, name) for name in names}


def urns_by_contact(*, session: Session) -> dict[int, list[str]]:
    """Every contact's channel addresses, oldest first."""
    found: dict[int, list[str]] = {}
    stmt = select(ContactURN.contact_id, ContactURN.urn).order_by(col(ContactURN.id))
    for contact_id, urn in session.exec(stmt):
        found.setdefault(contact_id, []).append(urn)
    return found


def iter_contacts(*, session: Session) -> Iterator[Contact]:
    """Yield every contact, by id."""
    stmt = select(Contact).order_by(col(Contact.id)).execution_options(yield_per=BATCH)
    yield from session.exec(stmt)


def iter_responses(
    *, session: Session, survey_ids: Iterable[str] | None = None
) -> Iterator[SurveyResponse]:
    """Yield submitted responses (of some surveys), oldest first."""
    stmt = select(SurveyResponse).order_by(col(SurveyResponse.id))
    if survey_ids is not None:
        stmt = stmt.where(col(SurveyResponse.survey_id).in_(list(survey_ids)))
    yield from session.exec(stmt.execution_options(yield_per=BATCH))


def definitions_used(
    *, session: Session, survey_ids: Iterable[str] | None = None
) -> list[SurveyDefinition]:
    """The stored definitions responses were given to (every version), oldest first."""
    used = select(SurveyResponse.definition_id).distinct()
    if survey_ids is not None:
        used = used.where(col(SurveyResponse.survey_id).in_(list(survey_ids)))
    stmt = (
        select(SurveyDefinition)
        .where(col(SurveyDefinition.id).in_(used))
        .order_by(col(SurveyDefinition.id))
    )
    return list(session.exec(stmt))


def latest_answers(
    *, session: Session, survey_id: str
) -> list[tuple[int | None, str | None, dict[str, Any]]]:
    """Each contact's latest response (anonymous ones each): contact id, country, answers."""
    latest: dict[int, tuple[int | None, str | None, dict[str, Any]]] = {}
    anonymous: list[tuple[int | None, str | None, dict[str, Any]]] = []
    stmt = (
        select(SurveyResponse.contact_id, SurveyResponse.country_code, SurveyResponse.answers)
        .where(SurveyResponse.survey_id == survey_id)
        .order_by(col(SurveyResponse.submitted_at), col(SurveyResponse.id))
    )
    for contact_id, country, answers in session.exec(stmt):
        row = (contact_id, country, dict(answers or {}))
        if contact_id is None:
            anonymous.append(row)
        else:
            latest[contact_id] = row
    return [*latest.values(), *anonymous]
