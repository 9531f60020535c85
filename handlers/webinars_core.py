"""Webinar operations shared by the chat, the CLI and the scheduler.

Creating, editing, cancelling, registering and unregistering keep one `webinar_reminder` row
per scheduled message up to date (`storage/webinars.py`); `deliver_due`, the sweep's work
in handlers/webinars_sweep.py, turns due rows into outbox messages.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from handlers import webinars_text as text
from handlers.config import ALL_LANGUAGES
from handlers.definitions import catalog
from handlers.webinars_time import (
    DEFAULT_OFFSETS,
    DEFAULT_SURVEY_DELAY,
    QuietHours,
    parse_clock,
    parse_duration_minutes,
    parse_offsets,
    parse_quiet,
    parse_start,
    quiet_deferral,
    reminder_due,
    survey_due,
    zone_of,
)
from storage import audit
from storage import webinars as db
from storage.models import Contact
from storage.webinars_models import Webinar, WebinarRegistration, WebinarReminder

logger = logging.getLogger(__name__)

ALL_KINDS = ("reminder", "survey", "changed", "cancelled")
NOTIFY_FIELDS = frozenset({"starts_at", "duration_minutes", "join_url", "title"})
RESCHEDULE_FIELDS = frozenset(  # "timezone": registrants without a city use the organiser's
    {"starts_at", "timezone", "duration_minutes", "reminder_offsets", "survey_delay_minutes"}
    | {"quiet"}
)


class WebinarError(ValueError):
    """A webinar change that cannot be made (the message says why, for staff)."""


@dataclass(frozen=True, slots=True)
class WebinarSpec:
    """Everything a new webinar needs; times in UTC, `timezone` is the organiser's zone."""

    title: dict[str, str]
    starts_at: datetime
    timezone: str
    duration_minutes: int = 60
    join_url: str = ""
    description: dict[str, str] = field(default_factory=dict)
    interpretation: list[str] = field(default_factory=list)
    focus_area: str | None = None
    capacity: int | None = None
    registration_deadline: datetime | None = None
    reminder_offsets: list[int] = field(default_factory=lambda: list(DEFAULT_OFFSETS))
    survey_delay_minutes: int = DEFAULT_SURVEY_DELAY
    quiet: QuietHours = field(default_factory=QuietHours)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a registration request came to: registered, already, full, closed, cancelled …"""

    status: str
    webinar: Webinar | None = None
    registration: WebinarRegistration | None = None


# -- validation ---------------------------------------------------------------------------------


def focus_areas() -> list[str]:
    """The focus area ids (the create form's options)."""
    return [o.id for o in catalog()[text.CREATE_FORM].question("focus").options]


def _check_url(url: str) -> str:
    """Accept an http(s) link (adding https:// to a bare host), or nothing."""
    url = url.strip()
    if not url:
        return ""
    if not re.match(r"^https?://", url, re.IGNORECASE):
        if " " in url or "." not in url:
            raise WebinarError(f"not a link: {url!r}")
        url = "https://" + url
    if " " in url or len(url) > 500:
        raise WebinarError("a link has no spaces and at most 500 characters")
    return url


def _check(values: dict[str, Any], now: datetime, *, new_start: bool) -> None:
    """Refuse values a webinar cannot have."""
    if not any(v.strip() for v in values["title"].values()):
        raise WebinarError("a title is required")
    if set(values["title"]) - set(ALL_LANGUAGES) or set(values["description"]) - set(
        ALL_LANGUAGES
    ):
        raise WebinarError(f"languages are {', '.join(ALL_LANGUAGES)}")
    if zone_of(values["timezone"]) is None:
        raise WebinarError(f"unknown time zone {values['timezone']!r}")
    if new_start and values["starts_at"] <= now:
        raise WebinarError("the start must be in the future")
    if not 5 <= values["duration_minutes"] <= 24 * 60:
        raise WebinarError("the duration is 5 minutes to 24 hours")
    unknown = set(values["interpretation"]) - set(ALL_LANGUAGES)
    if unknown:
        raise WebinarError(f"unknown interpretation languages {sorted(unknown)}")
    if values["focus_area"] is not None and values["focus_area"] not in focus_areas():
        raise WebinarError(f"focus areas are {', '.join(focus_areas())}")
    if values["capacity"] is not None and values["capacity"] < 1:
        raise WebinarError("the capacity is a positive number (or none)")
    deadline = values["registration_deadline"]
    if deadline is not None and deadline > values["starts_at"]:
        raise WebinarError("registration must close before the start")
    offsets = values["reminder_offsets"]
    if any(not 0 < m <= 60 * 24 * 30 for m in offsets) or len(offsets) > 5:
        raise WebinarError("up to 5 reminders, each 1 minute to 30 days before the start")
    if not 0 <= values["survey_delay_minutes"] <= 60 * 24 * 7:
        raise WebinarError("the survey goes 0 minutes to 7 days after the end")


def _values(spec: WebinarSpec) -> dict[str, Any]:
    """The column values of a spec."""
    return {
        "title": {k: v.strip() for k, v in spec.title.items() if v.strip()},
        "description": {k: v.strip() for k, v in spec.description.items() if v.strip()},
        "starts_at": spec.starts_at.astimezone(UTC),
        "timezone": spec.timezone,
        "duration_minutes": spec.duration_minutes,
        "join_url": _check_url(spec.join_url),
        "interpretation": list(dict.fromkeys(spec.interpretation)),
        "focus_area": spec.focus_area,
        "capacity": spec.capacity or None,
        "registration_deadline": spec.registration_deadline,
        "reminder_offsets": sorted(set(spec.reminder_offsets), reverse=True),
        "survey_delay_minutes": spec.survey_delay_minutes,
        "quiet_start_minute": spec.quiet.start,
        "quiet_end_minute": spec.quiet.end,
    }


# -- staff operations ---------------------------------------------------------------------------


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


def quiet_of(webinar: Webinar) -> QuietHours:
    """The webinar's quiet hours (applied in each registrant's zone)."""
    return QuietHours(webinar.quiet_start_minute, webinar.quiet_end_minute)


def parse_change(webinar: Webinar, name: str, value: str) -> dict[str, Any]:
    """Read one staff edit (`start 2026-12-03 15:00 Asia/Shanghai`, `link …`) into changes."""
    name, value = name.lower().replace("-", "_"), value.strip()
    none = value.lower() in ("none", "-", "0", "off", "")
    try:
        if name in ("start", "starts_at", "time"):
            parts = value.split()
            zone_name = parts[2] if len(parts) > 2 else webinar.timezone
            zone = zone_of(zone_name)
            if zone is None:
                raise WebinarError(f"unknown time zone {zone_name!r}")
            found: dict[str, Any] = {"starts_at": parse_start(" ".join(parts[:2]), zone)}
            if zone_name != webinar.timezone:
                found["timezone"] = zone_name
            return found
        if name in ("zone", "timezone"):
            return {"timezone": value}
        if name == "duration":
            return {"duration_minutes": parse_duration_minutes(value)}
        if name in ("link", "url", "join_url"):
            return {"join_url": value}
        if name in ("title", "description"):
            lang, _, words = value.partition(" ")
            if lang not in ALL_LANGUAGES or not words.strip():
                raise WebinarError(f"use: {name} <language> <text>")
            return {name: {lang: words.strip()}}
        if name == "capacity":
            return {"capacity": None if none else int(value)}
        if name == "deadline":
            zone = zone_of(webinar.timezone) or ZoneInfo("UTC")
            return {"registration_deadline": None if none else parse_start(value, zone)}
        if name == "interpretation":
            codes = [c for c in re.split(r"[,\s]+", value.lower()) if c]
            return {"interpretation": [] if none else codes}
        if name == "focus":
            return {"focus_area": None if none else value}
        if name in ("reminders", "offsets"):
            return {"reminder_offsets": [] if none else parse_offsets(value)}
        if name in ("survey_delay", "survey"):
            return {"survey_delay_minutes": parse_duration_minutes(value)}
        if name == "quiet":
            return {"quiet": parse_quiet(value)}
    except WebinarError:
        raise
    except ValueError as exc:
        raise WebinarError(str(exc)) from exc
    raise WebinarError(f"unknown field {name!r}")


@dataclass(frozen=True, slots=True)
class EditResult:
    """What an edit changed and how many registrants will be told."""

    webinar: Webinar
    changed: tuple[str, ...]
    notified: int


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
    webinar = db.get_webinar(session=session, webinar_id=webinar_id, for_update=True)
    if webinar is None:
        raise WebinarError(f"no webinar #{webinar_id}")
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
    webinar.version += 1
    db.save_webinar(session=session, webinar=webinar, now=now)
    withdrawn = db.withdraw_early(session=session, now=now, webinar_id=webinar_id)
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
    webinar = db.get_webinar(session=session, webinar_id=webinar_id, for_update=True)
    if webinar is None:
        raise WebinarError(f"no webinar #{webinar_id}")
    if webinar.status == "cancelled":
        return EditResult(webinar=webinar, changed=(), notified=0)
    webinar.status = "cancelled"
    webinar.cancelled_at = now
    webinar.version += 1
    db.save_webinar(session=session, webinar=webinar, now=now)
    db.withdraw_early(session=session, now=now, webinar_id=webinar_id)
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


def length(webinar: Webinar) -> timedelta:
    """How long the webinar lasts."""
    return timedelta(minutes=webinar.duration_minutes)


# -- registration -------------------------------------------------------------------------------


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


# -- scheduling ---------------------------------------------------------------------------------


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


def parse_translations(raw: str) -> dict[str, tuple[str, str]]:
    """Read `fr: Titre | Description es: Título | Descripción` into language → texts."""
    codes = "|".join(lang for lang in ALL_LANGUAGES)
    pieces = re.split(rf"(?:^|\s)({codes})\s*:\s*", raw.strip(), flags=re.IGNORECASE)
    found: dict[str, tuple[str, str]] = {}
    for lang, body in zip(pieces[1::2], pieces[2::2], strict=True):
        head, _, rest = body.partition("|")
        if head.strip():
            found[lang.lower()] = (head.strip(), rest.strip())
    return found


def parse_time_of_day(raw: str) -> tuple[int, int]:
    """Read a start time typed in the create form; WebinarError when unreadable."""
    clock = parse_clock(raw)
    if clock is None:
        raise WebinarError(f"not a time of day: {raw!r} (use 14:30)")
    return clock.hour, clock.minute
