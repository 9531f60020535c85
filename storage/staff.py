"""Staff: roles, the audit trail they read, and adapters to the donations and webinars stores.

The donations and webinars features are optional: their storage modules are imported when
first needed, and every adapter returns None when a module (or the function) is not there, so
a segment or a report section can say it is unavailable instead of failing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from sqlmodel import Session, SQLModel, col, func, select

from storage.models import AuditEntry, Contact, ContactURN

ROLES = ("staff", "admin")

# Export name → (module, model class) of the feature tables, when those modules define them.
FEATURE_TABLES: dict[str, tuple[str, str]] = {
    "requests": ("storage.donations_models", "DonationRequest"),
    "request_lines": ("storage.donations_models", "DonationRequestLine"),
    "pledges": ("storage.donations_models", "DonationPledge"),
    "pledge_lines": ("storage.donations_models", "DonationPledgeLine"),
    "shipments": ("storage.donations_models", "DonationShipment"),
    "shipment_lines": ("storage.donations_models", "DonationShipmentLine"),
    "webinars": ("storage.webinars_models", "Webinar"),
    "registrations": ("storage.webinars_models", "WebinarRegistration"),
}


def set_role(*, session: Session, contact: Contact, role: str | None) -> None:
    """Give a contact a staff role (`staff`, `admin`) or take it away (None)."""
    if role is not None and role not in ROLES:
        raise ValueError(f"unknown staff role {role!r}")
    contact.staff_role = role
    session.add(contact)
    session.flush()


def staff_members(*, session: Session) -> list[tuple[Contact, list[str]]]:
    """Return staff and admins with their channel addresses, admins first."""
    stmt = (
        select(Contact)
        .where(col(Contact.staff_role).in_(ROLES))
        .order_by(col(Contact.staff_role), col(Contact.id))
    )
    members = list(session.exec(stmt))
    urns: dict[int, list[str]] = {}
    if members:
        rows = session.exec(
            select(ContactURN.contact_id, ContactURN.urn)
            .where(col(ContactURN.contact_id).in_([m.id for m in members]))
            .order_by(col(ContactURN.id))
        )
        for contact_id, urn in rows:
            urns.setdefault(contact_id, []).append(urn)
    return [(m, urns.get(m.id or 0, [])) for m in members]


def admin_count(*, session: Session) -> int:
    """Count the admins."""
    return int(session.exec(select(func.count()).where(Contact.staff_role == "admin")).one())


def recent_audit(
    *, session: Session, limit: int = 20, prefix: str | None = None
) -> list[AuditEntry]:
    """Return the latest audit entries (optionally of actions starting with `prefix`)."""
    stmt = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
    if prefix:
        stmt = stmt.where(col(AuditEntry.action).startswith(prefix))
    return list(session.exec(stmt))


# -- the optional features -------------------------------------------------------------------


def _feature(name: str) -> ModuleType | None:
    """Import a feature's storage module if it exists."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


def _function(module: str, name: str) -> Callable[..., Any] | None:
    """A function of a feature module, or None when the module or the function is missing."""
    found = _feature(module)
    function = getattr(found, name, None) if found is not None else None
    return function if callable(function) else None


def open_request_contacts(*, session: Session) -> list[int] | None:
    """Contacts with an open donation request; None when donations are not available."""
    function = _function("storage.donations", "contacts_with_open_requests")
    return None if function is None else [int(i) for i in function(session=session)]


def webinar_registrants(*, session: Session, webinar_id: int) -> list[int] | None:
    """Contacts registered for a webinar; None when webinars are not available."""
    function = _function("storage.webinars", "registrant_contact_ids")
    if function is None:
        return None
    return [int(i) for i in function(session=session, webinar_id=webinar_id)]


def donations_summary(*, session: Session) -> dict[str, Any] | None:
    """The donations feature's summary for reports; None when not available."""
    function = _function("storage.donations", "summary")
    return None if function is None else dict(function(session=session))


def webinars_summary(*, session: Session) -> dict[str, Any] | None:
    """The webinars feature's summary for reports; None when not available."""
    function = _function("storage.webinars", "summary")
    return None if function is None else dict(function(session=session))


def feature_table(name: str) -> type[SQLModel] | None:
    """The model class behind an export name (`requests`, `registrations` …), if available."""
    where = FEATURE_TABLES.get(name)
    if where is None:
        return None
    module = _feature(where[0])
    model = getattr(module, where[1], None) if module is not None else None
    return model if isinstance(model, type) and issubclass(model, SQLModel) else None
