"""Scheduling webinar messages: each registration's reminders and survey, and notices to all."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from handlers import webinars_text as text
from handlers.webinars_time import quiet_deferral, reminder_due, survey_due, zone_of
from handlers.webinars_types import length, quiet_of
from storage import webinars as db
from storage.models import Contact
from storage.webinars_models import Webinar, WebinarRegistration, WebinarReminder


def schedule_registration(
    session: Session,
    webinar: Webinar,
    registration: WebinarRegistration,
    contact: Contact | None,
    now: datetime,
    *,
    rearm: bool = False,
) -> None:
    """Create or update a registration's reminders and survey invitation.

    Due times come from the start in the registrant's zone (the organiser's when unknown),
    moved out of quiet hours. A message whose time has passed is recorded as skipped; with
    `rearm` (the start moved) a message already queued is scheduled again if its new time
    is still ahead.
    """
    assert registration.id is not None
    zone_name, source = text.reader_zone(webinar, contact, registration)
    registration.timezone, registration.zone_source = zone_name, source
    zone = zone_of(zone_name) or ZoneInfo("UTC")
    quiet = quiet_of(webinar)
    past = "past_at_reschedule" if rearm else "registered_after"
    existing = {
        (row.kind, row.offset_minutes): row
        for row in db.reminders_of(
            session=session, registration_id=registration.id, kinds=("reminder", "survey")
        )
    }
    wanted: dict[tuple[str, int], tuple[datetime, datetime]] = {}
    for offset in webinar.reminder_offsets:
        nominal = webinar.starts_at - timedelta(minutes=offset)
        due = reminder_due(
            nominal=nominal, zone=zone, quiet=quiet, now=now, starts_at=webinar.starts_at
        )
        wanted[("reminder", offset)] = (nominal, due)
    delay = webinar.survey_delay_minutes
    nominal = webinar.starts_at + length(webinar) + timedelta(minutes=delay)
    wanted[("survey", delay)] = (nominal, survey_due(nominal=nominal, zone=zone, quiet=quiet))
    for key, stale in existing.items():
        if key not in wanted and stale.status == db.SCHEDULED:
            stale.status, stale.reason = db.CANCELLED, "offset_removed"
            db.save_reminder(session=session, reminder=stale, now=now)
    new: list[dict[str, Any]] = []
    for (kind, offset), (nominal, due) in wanted.items():
        row = existing.get((kind, offset))
        live = nominal > now
        if row is not None:
            _update(session, row, nominal, due, zone_name, now, live=live, rearm=rearm, past=past)
            continue
        new.append(
            _new_row(registration, kind, offset, nominal, due, now)
            | {"status": db.SCHEDULED if live else db.SKIPPED, "reason": None if live else past}
        )
    db.add_reminders(session=session, rows=new)


def _new_row(
    registration: WebinarRegistration,
    kind: str,
    offset: int,
    nominal: datetime,
    due: datetime,
    now: datetime,
) -> dict[str, Any]:
    """The column values of a new scheduled message."""
    return {
        "registration_id": registration.id,
        "webinar_id": registration.webinar_id,
        "contact_id": registration.contact_id,
        "kind": kind,
        "offset_minutes": offset,
        "nominal_at": nominal,
        "due_at": due,
        "zone": registration.timezone,
        "status": db.SCHEDULED,
        "reason": None,
        "version": 1,
        "outbox_id": None,
        "queued_at": None,
        "created_at": now,
        "updated_at": now,
    }


def _update(
    session: Session,
    row: WebinarReminder,
    nominal: datetime,
    due: datetime,
    zone: str,
    now: datetime,
    *,
    live: bool,
    rearm: bool,
    past: str,
) -> None:
    """Move an existing scheduled message (see `schedule_registration`)."""
    if row.status == db.QUEUED:
        if not (rearm and live):
            return
        row.version += 1
        row.outbox_id, row.queued_at = None, None
    row.nominal_at, row.due_at, row.zone = nominal, due, zone
    if live:
        row.status, row.reason = db.SCHEDULED, None
    elif row.status in (db.SCHEDULED, db.CANCELLED, db.QUEUED):
        row.status, row.reason = db.SKIPPED, past
    db.save_reminder(session=session, reminder=row, now=now)


def _reschedule(session: Session, webinar: Webinar, now: datetime, *, rearm: bool) -> None:
    """Recompute every active registration's messages after a change of time or rules."""
    registrations = db.active_registrations(session=session, webinar_id=webinar.id or 0)
    people = db.contacts_by_id(session=session, ids=[r.contact_id for r in registrations])
    for registration in registrations:
        contact = people.get(registration.contact_id)
        schedule_registration(session, webinar, registration, contact, now, rearm=rearm)
        session.add(registration)
    session.flush()


def _notify(
    session: Session, webinar: Webinar, kind: str, offset: int, now: datetime, urgent: datetime
) -> int:
    """Schedule a notice to every active registrant (after their quiet hours unless urgent)."""
    quiet = quiet_of(webinar)
    assert webinar.id is not None
    told = db.registrations_with(
        session=session, webinar_id=webinar.id, kind=kind, offset_minutes=offset
    )
    new: list[dict[str, Any]] = []
    for registration in db.active_registrations(session=session, webinar_id=webinar.id):
        if registration.id in told:
            continue
        zone = zone_of(registration.timezone) or ZoneInfo("UTC")
        due = quiet_deferral(now=now, zone=zone, quiet=quiet, before=urgent) or now
        new.append(_new_row(registration, kind, offset, now, due, now))
    db.add_reminders(session=session, rows=new)
    return len(new)
