"""Staff operations on a webinar: create, edit and cancel, each audited."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlmodel import Session

from handlers.webinars_checks import _check, _check_url, _values
from handlers.webinars_schedule import _notify, _reschedule
from handlers.webinars_time import QuietHours
from handlers.webinars_types import (
    NOTIFY_FIELDS,
    RESCHEDULE_FIELDS,
    EditResult,
    WebinarError,
    WebinarSpec,
    length,
    quiet_of,
)
from storage import audit
from storage import webinars as db
from storage.webinars_models import Webinar

logger = logging.getLogger("handlers.webinars_core")  # the name these log lines always had


def create_webinar(
    *,
    session: Session,
    spec: WebinarSpec,
    now: datetime,
    actor_contact_id: int | None = None,
    via: str = "chat",
) -> Webinar:
    """Create a webinar (WebinarError when a value is refused) and audit it."""
    values = _values(spec)
    _check(values, now, new_start=True)
    webinar = db.create_webinar(
        session=session, now=now, created_by_contact_id=actor_contact_id, **values
    )
    audit.record(
        session=session,
        action="webinar_created",
        now=now,
        actor_contact_id=actor_contact_id,
        subject=f"webinar:{webinar.id}",
        details={"via": via},
    )
    logger.info("webinar created webinar=%s", webinar.id)
    return webinar


def _locked(session: Session, webinar_id: int) -> Webinar:
    """The webinar, locked for this transaction; WebinarError when there is none."""
    webinar = db.get_webinar(session=session, webinar_id=webinar_id, for_update=True)
    if webinar is None:
        raise WebinarError(f"no webinar #{webinar_id}")
    return webinar


def _save_version(session: Session, webinar: Webinar, now: datetime) -> int:
    """Save the webinar as its next version; withdraw messages queued too early, how many."""
    assert webinar.id is not None
    webinar.version += 1
    db.save_webinar(session=session, webinar=webinar, now=now)
    return db.withdraw_early(session=session, now=now, webinar_id=webinar.id)


def edit_webinar(
    *,
    session: Session,
    webinar_id: int,
    changes: dict[str, Any],
    now: datetime,
    actor_contact_id: int | None = None,
    via: str = "chat",
) -> EditResult:
    """Change a webinar; reschedule its messages and tell registrants what they see changed."""
    webinar = _locked(session, webinar_id)
    if webinar.status == "cancelled":
        raise WebinarError(f"webinar #{webinar_id} is cancelled")
    old_start = webinar.starts_at
    values: dict[str, Any] = {
        "title": dict(webinar.title),
        "description": dict(webinar.description),
        "starts_at": webinar.starts_at,
        "timezone": webinar.timezone,
        "duration_minutes": webinar.duration_minutes,
        "join_url": webinar.join_url,
        "interpretation": list(webinar.interpretation),
        "focus_area": webinar.focus_area,
        "capacity": webinar.capacity,
        "registration_deadline": webinar.registration_deadline,
        "reminder_offsets": list(webinar.reminder_offsets),
        "survey_delay_minutes": webinar.survey_delay_minutes,
        "quiet": quiet_of(webinar),
    }
    changed: list[str] = []
    for key, value in changes.items():
        if key not in values:
            raise WebinarError(f"unknown field {key!r}")
        new = {**values[key], **value} if key in ("title", "description") else value
        if key == "join_url":
            new = _check_url(str(value))
        if key == "reminder_offsets":
            new = sorted(set(value), reverse=True)
        if new != values[key]:
            values[key] = new
            changed.append(key)
    if "starts_at" in changed and "registration_deadline" not in changes:
        deadline = values["registration_deadline"]
        if deadline is not None:
            values["registration_deadline"] = deadline + (values["starts_at"] - old_start)
    quiet: QuietHours = values.pop("quiet")
    checked = {**values, "quiet_start_minute": quiet.start, "quiet_end_minute": quiet.end}
    _check(checked, now, new_start="starts_at" in changed)
    if not changed:
        return EditResult(webinar=webinar, changed=(), notified=0)
    for key, value in checked.items():
        setattr(webinar, key, value)
    withdrawn = _save_version(session, webinar, now)
    if RESCHEDULE_FIELDS.intersection(changed) or withdrawn:  # what was taken back goes again
        _reschedule(session, webinar, now, rearm="starts_at" in changed)
    notified = 0
    if NOTIFY_FIELDS.intersection(changed) and webinar.starts_at + length(webinar) > now:
        notified = _notify(
            session, webinar, "changed", webinar.version, now, min(old_start, webinar.starts_at)
        )
    audit.record(
        session=session,
        action="webinar_edited",
        now=now,
        actor_contact_id=actor_contact_id,
        subject=f"webinar:{webinar.id}",
        details={"via": via, "fields": changed, "version": webinar.version},
    )
    logger.info("webinar edited webinar=%s version=%s", webinar.id, webinar.version)
    return EditResult(webinar=webinar, changed=tuple(changed), notified=notified)


def cancel_webinar(
    *,
    session: Session,
    webinar_id: int,
    now: datetime,
    actor_contact_id: int | None = None,
    via: str = "chat",
) -> EditResult:
    """Cancel a webinar: its pending messages are cancelled and registrants are told."""
    webinar = _locked(session, webinar_id)
    if webinar.status == "cancelled":
        return EditResult(webinar=webinar, changed=(), notified=0)
    webinar.status = "cancelled"
    webinar.cancelled_at = now
    _save_version(session, webinar, now)
    dropped = db.cancel_reminders(
        session=session,
        now=now,
        reason="webinar_cancelled",
        webinar_id=webinar_id,
        kinds=("reminder", "survey", "changed"),
    )
    notified = 0
    if webinar.starts_at + length(webinar) > now:
        notified = _notify(session, webinar, "cancelled", 0, now, webinar.starts_at)
    audit.record(
        session=session,
        action="webinar_cancelled",
        now=now,
        actor_contact_id=actor_contact_id,
        subject=f"webinar:{webinar.id}",
        details={"via": via, "messages_cancelled": dropped, "notified": notified},
    )
    logger.info("webinar cancelled webinar=%s", webinar.id)
    return EditResult(webinar=webinar, changed=("status",), notified=notified)
