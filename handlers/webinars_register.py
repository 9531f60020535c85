"""Registering for a webinar and withdrawing: capacity, deadlines, the registrant's messages."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from handlers import webinars_text as text
from handlers.webinars_schedule import schedule_registration
from handlers.webinars_types import ALL_KINDS, Outcome
from storage import webinars as db
from storage.models import Contact
from storage.webinars_models import Webinar

logger = logging.getLogger("handlers.webinars_core")  # the name these log lines always had


def registration_state(webinar: Webinar, registered: int, now: datetime) -> str:
    """Whether a webinar takes registrations: open, full, closed or cancelled."""
    if webinar.status == "cancelled":
        return "cancelled"
    closes = webinar.registration_deadline or webinar.starts_at
    if now >= min(closes, webinar.starts_at):
        return "closed"
    if webinar.capacity is not None and registered >= webinar.capacity:
        return "full"
    return "open"


def register(
    *, session: Session, webinar_id: int, contact: Contact, now: datetime, source: str
) -> Outcome:
    """Register a contact (the webinar row is locked, so capacity holds under concurrency)."""
    webinar = db.get_webinar(session=session, webinar_id=webinar_id, for_update=True)
    if webinar is None:
        return Outcome("not_found")
    if webinar.status == "cancelled":
        return Outcome("cancelled", webinar)
    assert contact.id is not None
    existing = db.get_registration(session=session, webinar_id=webinar_id, contact_id=contact.id)
    if existing is not None and existing.status == db.REGISTERED:
        return Outcome("already", webinar, existing)
    count = db.count_registered(session=session, webinar_ids=[webinar_id])[webinar_id]
    state = registration_state(webinar, count, now)
    if state != "open":
        return Outcome(state, webinar)
    zone, zone_source = text.reader_zone(webinar, contact)
    registration = db.add_registration(
        session=session,
        webinar_id=webinar_id,
        contact_id=contact.id,
        now=now,
        source=source,
        language=contact.language or "en",
        country_code=contact.country_code,
        timezone=zone,
        zone_source=zone_source,
    )
    schedule_registration(session, webinar, registration, contact, now)
    logger.info("webinar registration webinar=%s registration=%s", webinar_id, registration.id)
    return Outcome("registered", webinar, registration)


def unregister(*, session: Session, webinar_id: int, contact: Contact, now: datetime) -> Outcome:
    """Withdraw a registration; its pending messages are cancelled."""
    webinar = db.get_webinar(session=session, webinar_id=webinar_id)
    if webinar is None:
        return Outcome("not_found")
    assert contact.id is not None
    registration = db.get_registration(
        session=session, webinar_id=webinar_id, contact_id=contact.id
    )
    if registration is None or registration.status != db.REGISTERED:
        return Outcome("not_registered", webinar)
    db.set_unregistered(session=session, registration=registration, now=now)
    db.withdraw_early(session=session, now=now, registration_id=registration.id)
    db.cancel_reminders(
        session=session,
        now=now,
        reason="unregistered",
        registration_id=registration.id,
        kinds=ALL_KINDS,
    )
    logger.info("webinar unregistration webinar=%s registration=%s", webinar_id, registration.id)
    return Outcome("unregistered", webinar, registration)
