"""Proactive messages (reminders, delivery updates, broadcasts) queued for a contact."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from handlers.messages import Outgoing
from storage import contacts, outbox
from storage.models import Contact

# Messages the bot starts itself; on WhatsApp each needs an approved template per language.
PROACTIVE_KINDS = ("reminder", "delivery_update", "broadcast")


def queue_for_contact(
    *,
    session: Session,
    contact: Contact,
    message: Outgoing,
    kind: str,
    key: str,
    now: datetime,
    not_before: datetime | None = None,
) -> int | None:
    """Queue a proactive message on the contact's most recently used channel.

    Idempotent by `key` (the same key queues once). Returns the outbox id, or None when the
    key was queued before, or the contact opted out, is unreachable or has no channel left.
    """
    if contact.opted_out or contact.unreachable or contact.erased_at is not None:
        return None
    urn = contacts.preferred_urn(session=session, contact_id=contact.id or 0)
    if urn is None:
        return None
    return outbox.enqueue(
        session=session,
        idempotency_key=key,
        urn=urn,
        channel=contacts.channel_of(urn),
        body=message.to_body(),
        now=now,
        contact_id=contact.id,
        kind=kind,
        language=contact.language or "en",
        not_before=not_before,
    )
