"""Webinars, registrations and their scheduled messages (data access, keyword-only)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, insert, or_
from sqlmodel import Session, col, func, select, update

from storage.models import Contact, OutboxMessage
from storage.webinars_models import Webinar, WebinarRegistration, WebinarReminder

REGISTERED = "registered"
UNREGISTERED = "unregistered"
SCHEDULED, QUEUED, SKIPPED, CANCELLED = "scheduled", "queued", "skipped", "cancelled"


# -- webinars -----------------------------------------------------------------------------------


def create_webinar(*, session: Session, now: datetime, **fields: Any) -> Webinar:
    """Store a new webinar (fields as in `Webinar`) and return it with its id."""
    webinar = Webinar(**fields, created_at=now, updated_at=now)
    session.add(webinar)
    session.flush()
    return webinar


def get_webinar(*, session: Session, webinar_id: int, for_update: bool = False) -> Webinar | None:
    """Return a webinar, locking its row when `for_update` (registrations, edits)."""
    stmt = select(Webinar).where(Webinar.id == webinar_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.exec(stmt).first()


def save_webinar(*, session: Session, webinar: Webinar, now: datetime) -> None:
    """Write a changed webinar."""
    webinar.updated_at = now
    session.add(webinar)
    session.flush()


def upcoming_webinars(*, session: Session, now: datetime, limit: int = 10) -> list[Webinar]:
    """Scheduled webinars that have not started yet, soonest first."""
    stmt = (
        select(Webinar)
        .where(Webinar.status == "scheduled", Webinar.starts_at > now)
        .order_by(col(Webinar.starts_at), col(Webinar.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


def list_webinars(*, session: Session, since: datetime | None = None) -> list[Webinar]:
    """Every webinar (starting at or after `since`), soonest first."""
    stmt = select(Webinar).order_by(col(Webinar.starts_at), col(Webinar.id))
    if since is not None:
        stmt = stmt.where(Webinar.starts_at >= since)
    return list(session.exec(stmt))


# -- registrations ------------------------------------------------------------------------------


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


# -- scheduled messages -------------------------------------------------------------------------


def find_reminder(
    *, session: Session, registration_id: int, kind: str, offset_minutes: int
) -> WebinarReminder | None:
    """Return the scheduled message with this unique key."""
    stmt = select(WebinarReminder).where(
        WebinarReminder.registration_id == registration_id,
        WebinarReminder.kind == kind,
        WebinarReminder.offset_minutes == offset_minutes,
    )
    return session.exec(stmt).first()


def add_reminders(*, session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert scheduled messages in one statement (keys checked free under the webinar lock)."""
    if rows:
        session.execute(insert(WebinarReminder.__table__), rows)  # type: ignore[attr-defined]


def registrations_with(
    *, session: Session, webinar_id: int, kind: str, offset_minutes: int
) -> set[int]:
    """Registrations of a webinar that already have a message with this kind and offset."""
    stmt = select(WebinarReminder.registration_id).where(
        WebinarReminder.webinar_id == webinar_id,
        WebinarReminder.kind == kind,
        WebinarReminder.offset_minutes == offset_minutes,
    )
    return {int(r) for r in session.exec(stmt)}


def save_reminder(*, session: Session, reminder: WebinarReminder, now: datetime) -> None:
    """Write a changed scheduled message."""
    reminder.updated_at = now
    session.add(reminder)


def reminders_of(
    *,
    session: Session,
    webinar_id: int | None = None,
    registration_id: int | None = None,
    statuses: Iterable[str] | None = None,
    kinds: Iterable[str] | None = None,
) -> list[WebinarReminder]:
    """Scheduled messages of a webinar or a registration, in due order."""
    stmt = select(WebinarReminder).order_by(col(WebinarReminder.due_at), col(WebinarReminder.id))
    if webinar_id is not None:
        stmt = stmt.where(WebinarReminder.webinar_id == webinar_id)
    if registration_id is not None:
        stmt = stmt.where(WebinarReminder.registration_id == registration_id)
    if statuses is not None:
        stmt = stmt.where(col(WebinarReminder.status).in_(list(statuses)))
    if kinds is not None:
        stmt = stmt.where(col(WebinarReminder.kind).in_(list(kinds)))
    return list(session.exec(stmt))


def cancel_reminders(
    *,
    session: Session,
    now: datetime,
    reason: str,
    webinar_id: int | None = None,
    registration_id: int | None = None,
    kinds: Iterable[str] = ("reminder", "survey"),
) -> int:
    """Cancel the not yet queued messages of a webinar or registration; return the count."""
    stmt = (
        update(WebinarReminder)
        .where(col(WebinarReminder.status) == SCHEDULED)
        .where(col(WebinarReminder.kind).in_(list(kinds)))
        .values(status=CANCELLED, reason=reason, updated_at=now)
    )
    if webinar_id is not None:
        stmt = stmt.where(col(WebinarReminder.webinar_id) == webinar_id)
    if registration_id is not None:
        stmt = stmt.where(col(WebinarReminder.registration_id) == registration_id)
    result = session.exec(stmt)
    return int(result.rowcount or 0)


def claim_due(
    *, session: Session, now: datetime, limit: int = 500, reminders_until: datetime | None = None
) -> list[WebinarReminder]:
    """Lock and return due scheduled messages (reminders due by `reminders_until` too).

    Oldest due first. On PostgreSQL rows another scheduler holds are skipped (FOR UPDATE
    SKIP LOCKED) and a row it has queued meanwhile no longer matches; on SQLite the writer
    lock serialises.
    The caller must change each row's status in the same transaction.
    """
    due = col(WebinarReminder.due_at) <= now
    if reminders_until is not None and reminders_until > now:
        early = and_(
            col(WebinarReminder.kind) == "reminder",
            col(WebinarReminder.due_at) <= reminders_until,
        )
        due = or_(due, early)
    stmt = (
        select(WebinarReminder)
        .where(WebinarReminder.status == SCHEDULED, due)
        .order_by(col(WebinarReminder.due_at), col(WebinarReminder.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.exec(stmt))


def withdraw_early(
    *,
    session: Session,
    now: datetime,
    webinar_id: int | None = None,
    registration_id: int | None = None,
) -> int:
    """Take back reminders handed to the outbox before their time and not yet sent.

    Their outbox rows become `cancelled`; the reminders are scheduled again under a new
    version (so a new outbox key) for the caller to cancel or reschedule. Returns the count.
    """
    stmt = select(WebinarReminder).where(
        WebinarReminder.status == QUEUED, WebinarReminder.due_at > now
    )
    if webinar_id is not None:
        stmt = stmt.where(WebinarReminder.webinar_id == webinar_id)
    if registration_id is not None:
        stmt = stmt.where(WebinarReminder.registration_id == registration_id)
    early = {r.outbox_id: r for r in session.exec(stmt) if r.outbox_id is not None}
    if not early:
        return 0
    taken = session.exec(
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(list(early)))
        .where(col(OutboxMessage.status) == "pending", col(OutboxMessage.attempts) == 0)
        .values(status=CANCELLED, updated_at=now, error_reason="withdrawn: webinar changed")
        .returning(col(OutboxMessage.id))
    ).scalars()
    count = 0
    for outbox_id in list(taken):
        row = early[int(outbox_id)]
        row.status, row.outbox_id, row.queued_at = SCHEDULED, None, None
        row.version += 1
        save_reminder(session=session, reminder=row, now=now)
        count += 1
    session.flush()
    return count


class Sibling(NamedTuple):
    """What the sweep needs of a registration's other messages to tell if one is moot."""

    id: int
    registration_id: int
    kind: str
    offset_minutes: int


def due_siblings(
    *, session: Session, registration_ids: Iterable[int], now: datetime
) -> list[Sibling]:
    """Reminders and change notices of these registrations due by `now`, scheduled or queued."""
    ids = list(registration_ids)
    if not ids:
        return []
    # NOT IN on the status keeps the planner on the registration's unique index; `status IN`
    # would have it walk the (status, due_at) index over every queued row.
    rem = WebinarReminder
    stmt = select(rem.id, rem.registration_id, rem.kind, rem.offset_minutes).where(
        col(rem.registration_id).in_(ids),
        col(rem.kind).in_(("reminder", "changed")),
        col(rem.due_at) <= now,
        col(rem.status).not_in((SKIPPED, CANCELLED)),
    )
    return [Sibling(int(i or 0), r, kind, offset) for i, r, kind, offset in session.exec(stmt)]


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


# -- statistics ---------------------------------------------------------------------------------


def _counts(session: Session, stmt: Any) -> dict[str, int]:
    """Run a (key, count) query into a dict; a missing key becomes `unknown`."""
    return {str(key) if key is not None else "unknown": int(n) for key, n in session.exec(stmt)}


def registration_stats(*, session: Session, webinar_id: int | None = None) -> dict[str, Any]:
    """Active registrations by country and language, and how many withdrew."""
    reg = WebinarRegistration
    scope = [] if webinar_id is None else [reg.webinar_id == webinar_id]
    active = [*scope, reg.status == REGISTERED]
    by_status = _counts(
        session, select(reg.status, func.count()).where(*scope).group_by(reg.status)
    )
    return {
        "registered": by_status.get(REGISTERED, 0),
        "unregistered": by_status.get(UNREGISTERED, 0),
        "by_country": _counts(
            session,
            select(reg.country_code, func.count()).where(*active).group_by(reg.country_code),
        ),
        "by_language": _counts(
            session, select(reg.language, func.count()).where(*active).group_by(reg.language)
        ),
        "by_source": _counts(
            session, select(reg.source, func.count()).where(*active).group_by(reg.source)
        ),
        "surveys_answered": int(
            session.exec(
                select(func.count()).where(*scope, col(reg.feedback_at).is_not(None))
            ).one()
        ),
        "certificates_requested": int(
            session.exec(
                select(func.count()).where(*scope, col(reg.certificate_name).is_not(None))
            ).one()
        ),
    }


def reminder_stats(*, session: Session, webinar_id: int | None = None) -> dict[str, Any]:
    """Scheduled messages per kind and status, skip reasons, and the outbox delivery status."""
    rem = WebinarReminder
    scope = [] if webinar_id is None else [rem.webinar_id == webinar_id]
    by_kind: dict[str, dict[str, int]] = {}
    stmt = select(rem.kind, rem.status, func.count()).where(*scope).group_by(rem.kind, rem.status)
    for kind, status, n in session.exec(stmt):
        by_kind.setdefault(str(kind), {})[str(status)] = int(n)
    reasons = _counts(
        session,
        select(rem.reason, func.count())
        .where(*scope, col(rem.status).in_((SKIPPED, CANCELLED)))
        .group_by(rem.reason),
    )
    delivery: dict[str, dict[str, int]] = {}
    joined = (
        select(rem.kind, OutboxMessage.status, func.count())
        .join(OutboxMessage, and_(col(OutboxMessage.id) == col(rem.outbox_id)))
        .where(*scope, rem.status == QUEUED)
        .group_by(rem.kind, OutboxMessage.status)
    )
    for kind, status, n in session.exec(joined):
        delivery.setdefault(str(kind), {})[str(status)] = int(n)
    return {"by_kind": by_kind, "reasons": reasons, "delivery": delivery}


def summary(*, session: Session) -> dict[str, Any]:
    """Programme-wide webinar figures for staff reports.

    Keys: `webinars` (count per status: scheduled, cancelled), `registered`, `unregistered`,
    `by_country` and `by_language` (active registrations; `unknown` when not given),
    `surveys_answered`, `certificates_requested`, `reminders` (kind → status → count),
    `skip_reasons` (reason → count), `delivery` (kind → outbox status → count, for messages
    handed to the outbox: pending, sending, sent, delivered, read, failed, needs_template …),
    and `per_webinar` (one mapping per webinar: id, title (English or first), starts_at ISO
    UTC, status, registered).
    """
    webinars = list_webinars(session=session)
    counts = count_registered(session=session, webinar_ids=[w.id for w in webinars if w.id])
    regs = registration_stats(session=session)
    rems = reminder_stats(session=session)
    by_status: dict[str, int] = {}
    for webinar in webinars:
        by_status[webinar.status] = by_status.get(webinar.status, 0) + 1
    return {
        "webinars": by_status,
        "registered": regs["registered"],
        "unregistered": regs["unregistered"],
        "by_country": regs["by_country"],
        "by_language": regs["by_language"],
        "surveys_answered": regs["surveys_answered"],
        "certificates_requested": regs["certificates_requested"],
        "reminders": rems["by_kind"],
        "skip_reasons": rems["reasons"],
        "delivery": rems["delivery"],
        "per_webinar": [
            {
                "id": w.id,
                "title": w.title.get("en") or next(iter(w.title.values()), ""),
                "starts_at": w.starts_at.isoformat(),
                "status": w.status,
                "registered": counts.get(w.id or 0, 0),
            }
            for w in webinars
        ],
    }
