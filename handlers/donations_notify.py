"""Telling officials and staff about donation records, and auditing staff actions on them.

Proactive messages go through the outbox (handlers.notify.queue_for_contact), built in each
contact's language, with keys that make them idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session

from handlers.messages import Outgoing
from handlers.notify import queue_for_contact
from storage import audit, contacts
from storage.models import Contact


def _contact(session: Session, contact_id: int | None) -> Contact | None:
    """Return a contact who can be messaged, or None."""
    if contact_id is None:
        return None
    contact = contacts.get_contact(session=session, contact_id=contact_id)
    if contact is None or contact.erased_at is not None:
        return None
    return contact


Build = Callable[[str, Contact], Outgoing]


def tell(
    session: Session,
    contact_id: int | None,
    key: str,
    now: datetime,
    build: Build,
    *,
    kind: str = "donation",
) -> int | None:
    """Queue a message built in the contact's language (`build(lang, contact)`)."""
    contact = _contact(session, contact_id)
    if contact is None:
        return None
    message = build(contact.language or "en", contact)
    return queue_for_contact(
        session=session, contact=contact, message=message, kind=kind, key=key, now=now
    )


def audit_action(
    session: Session,
    action: str,
    now: datetime,
    actor: int | None,
    subject: str,
    **details: object,
) -> None:
    """Record a staff action on a donation record (the CLI acts without a contact)."""
    audit.record(
        session=session,
        action=f"donation_{action}",
        now=now,
        actor_contact_id=actor,
        subject=subject,
        details={"via": "chat" if actor is not None else "cli", **details},
    )
