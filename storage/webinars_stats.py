"""Webinar statistics: registrations, scheduled messages and the programme-wide summary."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_
from sqlmodel import Session, col, func, select

from storage.models import OutboxMessage
from storage.webinars_events import list_webinars
from storage.webinars_models import WebinarRegistration, WebinarReminder
from storage.webinars_registrations import count_registered
from storage.webinars_states import CANCELLED, QUEUED, REGISTERED, SKIPPED, UNREGISTERED


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
