"""Bulk loaders the sweep uses: webinars, registrations and contacts by id, outbox ids by key."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from storage.models import Contact, OutboxMessage
from storage.webinars_models import Webinar, WebinarRegistration


def webinars_by_id(*, session: Session, ids: Iterable[int]) -> dict[int, Webinar]:
    """Load webinars by id."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = session.exec(select(Webinar).where(col(Webinar.id).in_(wanted)))
    return {w.id: w for w in rows if w.id is not None}


def registrations_by_id(*, session: Session, ids: Iterable[int]) -> dict[int, WebinarRegistration]:
    """Load registrations by id."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    stmt = select(WebinarRegistration).where(col(WebinarRegistration.id).in_(wanted))
    return {r.id: r for r in session.exec(stmt) if r.id is not None}


def contacts_by_id(*, session: Session, ids: Iterable[int]) -> dict[int, Contact]:
    """Load contacts by id."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = session.exec(select(Contact).where(col(Contact.id).in_(wanted)))
    return {c.id: c for c in rows if c.id is not None}


def outbox_id_for_key(*, session: Session, key: str) -> int | None:
    """The id of the outbox message queued under an idempotency key, if any."""
    stmt = select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)
    found = session.exec(stmt).first()
    return None if found is None else int(found)
