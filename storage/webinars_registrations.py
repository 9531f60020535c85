"""Registrations for webinars: registering, withdrawing, counting, feedback, forgetting."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select, update

from storage.webinars_models import WebinarRegistration
from storage.webinars_states import REGISTERED, UNREGISTERED


def get_registration(
    *, session: Session, webinar_id: int, contact_id: int
) -> WebinarRegistration | None:
    """Return a contact's registration for a webinar (whatever its status)."""
    stmt = select(WebinarRegistration).where(
        WebinarRegistration.webinar_id == webinar_id,
        WebinarRegistration.contact_id == contact_id,
    )
    return session.exec(stmt).first()


def get_registration_by_id(
    *, session: Session, registration_id: int
) -> WebinarRegistration | None:
    """Return a registration by id."""
    return session.get(WebinarRegistration, registration_id)


def add_registration(
    *,
    session: Session,
    webinar_id: int,
    contact_id: int,
    now: datetime,
    source: str,
    language: str,
    country_code: str | None,
    timezone: str,
    zone_source: str,
) -> WebinarRegistration:
    """Register a contact (or again after they unregistered); the caller holds the webinar lock."""
    values: dict[str, Any] = {
        "webinar_id": webinar_id,
        "contact_id": contact_id,
        "status": REGISTERED,
        "source": source,
        "language": language,
        "country_code": country_code,
        "timezone": timezone,
        "zone_source": zone_source,
        "registered_at": now,
    }
    registration = get_registration(session=session, webinar_id=webinar_id, contact_id=contact_id)
    if registration is None:
        registration = WebinarRegistration(**values)
    elif registration.status != REGISTERED:
        for key, value in values.items():
            setattr(registration, key, value)
        registration.unregistered_at = None
    session.add(registration)
    session.flush()
    return registration


def set_unregistered(
    *, session: Session, registration: WebinarRegistration, now: datetime
) -> None:
    """Mark a registration withdrawn."""
    registration.status = UNREGISTERED
    registration.unregistered_at = now
    session.add(registration)
    session.flush()


def count_registered(*, session: Session, webinar_ids: Iterable[int]) -> dict[int, int]:
    """Count active registrations per webinar."""
    ids = list(webinar_ids)
    if not ids:
        return {}
    stmt = (
        select(WebinarRegistration.webinar_id, func.count())
        .where(col(WebinarRegistration.webinar_id).in_(ids))
        .where(WebinarRegistration.status == REGISTERED)
        .group_by(col(WebinarRegistration.webinar_id))
    )
    found = {int(w): int(n) for w, n in session.exec(stmt)}
    return {i: found.get(i, 0) for i in ids}


def registered_webinar_ids(*, session: Session, contact_id: int) -> set[int]:
    """The webinars a contact is registered for."""
    stmt = select(WebinarRegistration.webinar_id).where(
        WebinarRegistration.contact_id == contact_id, WebinarRegistration.status == REGISTERED
    )
    return {int(w) for w in session.exec(stmt)}


def active_registrations(*, session: Session, webinar_id: int) -> list[WebinarRegistration]:
    """Active registrations of a webinar, oldest first."""
    stmt = (
        select(WebinarRegistration)
        .where(
            WebinarRegistration.webinar_id == webinar_id,
            WebinarRegistration.status == REGISTERED,
        )
        .order_by(col(WebinarRegistration.id))
    )
    return list(session.exec(stmt))


def registrant_contact_ids(*, session: Session, webinar_id: int) -> list[int]:
    """Contact ids of a webinar's active registrants, in registration order."""
    stmt = (
        select(WebinarRegistration.contact_id)
        .where(
            WebinarRegistration.webinar_id == webinar_id,
            WebinarRegistration.status == REGISTERED,
        )
        .order_by(col(WebinarRegistration.id))
    )
    return [int(c) for c in session.exec(stmt)]


def record_feedback(
    *,
    session: Session,
    registration: WebinarRegistration,
    response_id: int | None,
    certificate_name: str | None,
    now: datetime,
) -> None:
    """Link a registration to its post-webinar survey response and certificate name."""
    registration.survey_response_id = response_id
    registration.certificate_name = certificate_name
    registration.feedback_at = now
    session.add(registration)
    session.flush()


def forget_contact(*, session: Session, contact_id: int) -> int:
    """Blank the certificate names of a contact who asked to be forgotten; return the count."""
    result = session.exec(
        update(WebinarRegistration)
        .where(col(WebinarRegistration.contact_id) == contact_id)
        .where(col(WebinarRegistration.certificate_name).is_not(None))
        .values(certificate_name=None)
    )
    return int(result.rowcount or 0)
