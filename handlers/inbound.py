"""One stored inbound event in, the contact's state changed and the replies in the outbox.

Everything happens in the caller's transaction: the state change, the outbox rows (one per
reply, keyed by the event) and the event marked processed commit together or not at all.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from handlers.answers import PlaceResolver
from handlers.config import BotConfig
from handlers.context import Ctx
from handlers.i18n import greeting_language, t
from handlers.language import detect, resolve_language, word_count
from handlers.messages import Inbound, Outgoing
from handlers.router import route
from storage import contacts, inbox, outbox, surveys
from storage.models import Contact, InboxEvent

logger = logging.getLogger(__name__)


def receive(*, session: Session, inbound: Inbound, external_id: str) -> int | None:
    """Store an inbound message in the inbox and return its id; None when received before."""
    return inbox.store_event(
        session=session,
        channel=inbound.channel,
        external_id=external_id,
        urn=inbound.urn,
        payload=inbound.to_payload(),
        received_at=inbound.received_at,
    )


def _update_language(
    contact: Contact, inbound: Inbound, config: BotConfig, *, in_run: bool
) -> None:
    """Settle the contact's language from this message (not from short replies or mid-survey)."""
    if in_run and contact.language_source is not None:
        return
    lang, source = resolve_language(
        current=contact.language,
        source=contact.language_source,
        text=inbound.text,
        hint=inbound.language_hint,
        supported=config.supported_languages,
        default=config.default_language,
    )
    if source == "default" and contact.language_source is None and inbound.choice_id is None:
        first = greeting_language(inbound.text, config.supported_languages)
        decision = (
            detect(inbound.text, config.supported_languages)
            if word_count(inbound.text) < 3
            else None
        )
        if first is None and decision is not None and decision.method == "script":
            first = decision.language
        if first is not None:
            lang, source = first, "detected"
    if source == "default":
        contact.language = contact.language or lang
        return
    contact.language, contact.language_source = lang, source


def handle(
    *, session: Session, inbound: Inbound, config: BotConfig, now: datetime, places: PlaceResolver
) -> tuple[Contact, list[Outgoing]]:
    """Resolve the contact and its language, and route the message."""
    contact, is_new = contacts.get_or_create_contact(session=session, urn=inbound.urn, now=now)
    run = None if is_new else surveys.active_run(session=session, contact_id=contact.id or 0)
    _update_language(contact, inbound, config, in_run=run is not None)
    contact.last_inbound_at = now
    contacts.update_contact(session=session, contact=contact)
    contacts.touch_urn(session=session, urn=inbound.urn, now=now)
    ctx = Ctx(
        session=session,
        contact=contact,
        urn=inbound.urn,
        config=config,
        now=now,
        lang=contact.language or config.default_language,
        places=places,
        run=run,
    )
    return contact, route(ctx, inbound, is_new=is_new)


def process_event(
    *, session: Session, event: InboxEvent, config: BotConfig, now: datetime, places: PlaceResolver
) -> list[int]:
    """Handle one stored event and queue its replies (ids); a failure queues an apology."""
    inbound = Inbound.from_payload(
        urn=event.urn,
        payload=event.payload,
        received_at=event.received_at,
        external_id=event.external_id,
    )
    contact_id: int | None = None
    lang = config.default_language
    error: str | None = None
    try:
        with session.begin_nested():
            contact, replies = handle(
                session=session, inbound=inbound, config=config, now=now, places=places
            )
            contact_id, lang = contact.id, contact.language or lang
    except Exception as exc:  # logged with ids only; the person still gets an answer
        logger.exception("inbound failed event=%s", event.id)
        error = type(exc).__name__
        replies = [Outgoing(text=t("internal_error", lang))]
    queued: list[int] = []
    for index, reply in enumerate(replies):
        message_id = outbox.enqueue(
            session=session,
            idempotency_key=f"in:{event.id}:{index}",
            urn=inbound.urn,
            channel=inbound.channel,
            body=reply.to_body(),
            now=now,
            contact_id=contact_id,
            kind=reply.kind,
            language=lang,
        )
        if message_id is not None:
            queued.append(message_id)
    inbox.mark_processed(session=session, event=event, now=now, error=error)
    logger.info(
        "inbound processed event=%s contact=%s replies=%d", event.id, contact_id, len(queued)
    )
    return queued


def process_pending(
    *, session: Session, urn: str, config: BotConfig, now: datetime, places: PlaceResolver
) -> list[int]:
    """Process a URN's unprocessed events in order (per-contact ordering); return outbox ids."""
    queued: list[int] = []
    for event in inbox.pending_events(session=session, urn=urn):
        queued += process_event(
            session=session, event=event, config=config, now=now, places=places
        )
    return queued
