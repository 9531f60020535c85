"""The webinar sweep's work: due `webinar_reminder` rows become outbox messages.

Called by scheduler/webinars.py in one transaction per batch; every decision (queue, skip with
a reason, cancel, defer past quiet hours) is written on the row in that transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from handlers import webinars_text as text
from handlers.messages import Outgoing
from handlers.notify import queue_for_contact
from handlers.webinars_core import length, quiet_of
from handlers.webinars_time import quiet_deferral, zone_of
from storage import webinars as db
from storage.models import Contact
from storage.webinars_models import Webinar, WebinarRegistration, WebinarReminder

logger = logging.getLogger(__name__)

LATE_AFTER = timedelta(minutes=5)  # later than this, a message was missed (downtime)
SURVEY_MAX_LATE = timedelta(days=14)  # a survey invitation later than this is not sent


@dataclass(slots=True)
class SweepResult:
    """What one pass over due messages did."""

    claimed: int = 0
    queued: int = 0
    skipped: int = 0
    cancelled: int = 0
    deferred: int = 0


def outbox_key(reminder: WebinarReminder) -> str:
    """The outbox idempotency key of a scheduled message (a re-armed one gets a new one)."""
    base = f"rem:{reminder.id}"
    return base if reminder.version == 1 else f"{base}:v{reminder.version}"


def deliver_due(
    *,
    session: Session,
    now: datetime,
    limit: int = 500,
    careful: bool = False,
    horizon: timedelta = timedelta(0),
) -> SweepResult:
    """Queue due messages in the outbox (in the caller's transaction); skip what is moot.

    Reminders due within `horizon` (two sweep intervals) are handed over already, with their
    due time as the outbox's not-before, so they go out on time however long the sweep's
    turn comes; a change to the webinar takes them back (`storage.webinars.withdraw_early`).
    `careful` isolates each row in a savepoint, so a row that fails is skipped (reason
    `error`) and the others go; the sweep uses it to redo a batch that failed as a whole.
    """
    until = now + horizon
    rows = db.claim_due(session=session, now=now, limit=limit, reminders_until=until)
    result = SweepResult(claimed=len(rows))
    if not rows:
        return result
    webinars = db.webinars_by_id(session=session, ids=[r.webinar_id for r in rows])
    registrations = db.registrations_by_id(session=session, ids=[r.registration_id for r in rows])
    people = db.contacts_by_id(session=session, ids=[r.contact_id for r in rows])
    siblings: dict[int, list[db.Sibling]] = {}
    for sibling in db.due_siblings(
        session=session, registration_ids=registrations.keys(), now=until
    ):
        siblings.setdefault(sibling.registration_id, []).append(sibling)
    composed: dict[tuple[Any, ...], Outgoing] = {}
    with session.no_autoflush:  # the rows' updates go out together at the end
        for row in rows:
            args = (
                session,
                row,
                webinars[row.webinar_id],
                registrations[row.registration_id],
                people.get(row.contact_id),
                siblings.get(row.registration_id, []),
                now,
                composed,
            )
            if not careful:
                outcome = _deliver(*args)
            else:
                try:
                    with session.begin_nested():
                        outcome = _deliver(*args)
                except Exception:
                    logger.exception("webinar message failed reminder=%s", row.id)
                    row.status, row.reason, outcome = db.SKIPPED, "error", "skipped"
            setattr(result, outcome, getattr(result, outcome) + 1)
            db.save_reminder(session=session, reminder=row, now=now)
    session.flush()
    return result


def _why_not(
    row: WebinarReminder,
    webinar: Webinar,
    registration: WebinarRegistration,
    contact: Contact | None,
    siblings: list[db.Sibling],
    now: datetime,
) -> tuple[str, str] | None:
    """Why a due message must not go out: (status, reason), or None when it must."""
    if row.kind in ("reminder", "survey", "changed"):
        if webinar.status == "cancelled":
            return db.CANCELLED, "webinar_cancelled"
        if registration.status != db.REGISTERED:
            return db.CANCELLED, "unregistered"
    if row.kind == "reminder" and now >= webinar.starts_at:
        return db.SKIPPED, "webinar_started"
    if row.kind == "survey" and registration.feedback_at is not None:
        return db.SKIPPED, "already_answered"
    if row.kind == "survey" and now - row.due_at > SURVEY_MAX_LATE:
        return db.SKIPPED, "too_late"
    if row.kind == "changed" and now >= webinar.starts_at + length(webinar):
        return db.SKIPPED, "webinar_ended"
    if _superseded(row, siblings):
        return db.SKIPPED, "superseded"
    if contact is None or contact.erased_at is not None:
        return db.SKIPPED, "erased"
    if contact.opted_out:
        return db.SKIPPED, "opted_out"
    if contact.unreachable:
        return db.SKIPPED, "unreachable"
    return None


def _superseded(row: WebinarReminder, siblings: list[db.Sibling]) -> bool:
    """A reminder is moot when a closer one is due too; a change notice when a newer one is."""
    for other in siblings:
        if other.id == row.id:
            continue
        if row.kind != other.kind:
            continue
        if row.kind == "reminder" and other.offset_minutes < row.offset_minutes:
            return True
        if row.kind == "changed" and other.offset_minutes > row.offset_minutes:
            return True
    return False


def _deliver(
    session: Session,
    row: WebinarReminder,
    webinar: Webinar,
    registration: WebinarRegistration,
    contact: Contact | None,
    siblings: list[db.Sibling],
    now: datetime,
    composed: dict[tuple[Any, ...], Outgoing],
) -> str:
    """Decide one due message and queue it; return the SweepResult field to count it in.

    Messages are composed once per batch for each webinar, kind, zone, language and minute.
    """
    refused = _why_not(row, webinar, registration, contact, siblings, now)
    if refused is not None:
        row.status, row.reason = refused
        return "cancelled" if refused[0] == db.CANCELLED else "skipped"
    assert contact is not None
    zone_name, source = text.reader_zone(webinar, contact, registration)
    zone = zone_of(zone_name) or ZoneInfo("UTC")
    if now - row.due_at > LATE_AFTER and row.kind in ("reminder", "survey"):
        before = webinar.starts_at if row.kind == "reminder" else None
        later = quiet_deferral(now=now, zone=zone, quiet=quiet_of(webinar), before=before)
        if later is not None:
            row.due_at, row.reason = later, "deferred_quiet_hours"
            return "deferred"
    lang = contact.language or registration.language or "en"
    at = max(now, row.due_at)  # when it may go: now, or its due time when handed over early
    minutes = round((webinar.starts_at - at).total_seconds() / 60)
    same = (row.kind, webinar.id, webinar.version, zone_name, source, lang, minutes)
    message = composed.get(same) or compose(row, webinar, zone_name, source, lang, at)
    composed[same] = message
    key = outbox_key(row)
    outbox_id = queue_for_contact(
        session=session,
        contact=contact,
        message=message,
        kind=message.kind,
        key=key,
        now=now,
        not_before=row.due_at if row.due_at > now else None,
    )
    if outbox_id is None:
        outbox_id = db.outbox_id_for_key(session=session, key=key)
        if outbox_id is None:
            row.status, row.reason = db.SKIPPED, "no_channel"
            return "skipped"
    row.status, row.outbox_id, row.queued_at = db.QUEUED, outbox_id, now
    if row.reason == "deferred_quiet_hours":
        row.reason = None
    return "queued"


def compose(
    row: WebinarReminder, webinar: Webinar, zone: str, source: str, lang: str, now: datetime
) -> Outgoing:
    """The message a scheduled row stands for, in the registrant's language and time."""
    if row.kind == "reminder":
        return text.reminder(webinar, zone, source, lang, now)
    if row.kind == "survey":
        return text.survey_invitation(webinar, zone, lang, now)
    if row.kind == "changed":
        return text.changed_notice(webinar, zone, source, lang, now)
    return text.cancelled_notice(webinar, zone, lang, now)
