"""One stored inbound event in, the contact's state changed and the replies in the outbox.

Everything happens in the caller's transaction: the state change, the outbox rows (one per
reply, keyed by the event) and the event marked processed commit together or not at all.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlmodel import Session

from handlers.answers import PlaceResolver
from handlers.config import BotConfig
from handlers.context import Ctx
from handlers.i18n import greeting_language, t
from handlers.language import detect, resolve_language, word_count
from handlers.messages import Inbound, Outgoing
from handlers.router import route
from storage import contacts, inbox, outbox
from storage.inbox import PendingEvent
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


def receive_all(*, session: Session, messages: list[tuple[Inbound, str]]) -> list[bool]:
    """Store messages (each with its platform id) in order; True for each one not seen before."""
    return [
        receive(session=session, inbound=inbound, external_id=external_id) is not None
        for inbound, external_id in messages
    ]


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
    *,
    session: Session,
    inbound: Inbound,
    config: BotConfig,
    now: datetime,
    places: PlaceResolver,
    seen: list[tuple[Contact, str]] | None = None,
) -> tuple[Contact, list[Outgoing]]:
    """Resolve the contact and its language, and route the message.

    That the contact was heard from is recorded at once, or added to `seen` for a batch to
    record once for all its messages.
    """
    found, run = contacts.contact_with_active_run(session=session, urn=inbound.urn)
    is_new = found is None
    contact = found or contacts.create_contact(session=session, urn=inbound.urn, now=now)
    _update_language(contact, inbound, config, in_run=run is not None)
    if seen is None:
        contacts.record_inbound(session=session, seen=[(contact, inbound.urn)], now=now)
    else:
        seen.append((contact, inbound.urn))
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


def _inbound_of(event: InboxEvent | PendingEvent) -> Inbound:
    """Rebuild the neutral message an event holds."""
    return Inbound.from_payload(
        urn=event.urn,
        payload=event.payload,
        received_at=event.received_at,
        external_id=event.external_id,
    )


def _rows(
    event_id: int,
    inbound: Inbound,
    replies: list[Outgoing],
    contact_id: int | None,
    lang: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """The outbox rows of an event's replies, keyed by the event (a redo queues nothing new)."""
    return [
        outbox.new_message(
            idempotency_key=f"in:{event_id}:{index}",
            urn=inbound.urn,
            channel=inbound.channel,
            body=reply.to_body(),
            now=now,
            contact_id=contact_id,
            kind=reply.kind,
            language=lang,
        )
        for index, reply in enumerate(replies)
    ]


def process_event(
    *,
    session: Session,
    event: InboxEvent | PendingEvent,
    config: BotConfig,
    now: datetime,
    places: PlaceResolver,
) -> int:
    """Handle one stored event in a savepoint and queue its replies; return how many.

    A failure rolls back the handling only: the person gets an apology and the event is
    marked processed with the error's name (never retried forever).
    """
    assert event.id is not None
    inbound = _inbound_of(event)
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
    rows = _rows(event.id, inbound, replies, contact_id, lang, now)
    queued = outbox.enqueue_many(session=session, rows=rows)
    inbox.mark_processed(session=session, event_id=event.id, now=now, error=error)
    logger.info("inbound processed event=%s contact=%s replies=%d", event.id, contact_id, queued)
    return queued


def process_batch(
    *,
    session: Session,
    events: list[PendingEvent],
    config: BotConfig,
    now: datetime,
    places: PlaceResolver,
) -> int:
    """Handle events (in id order) in the caller's transaction; return the replies queued.

    No savepoints, and the replies, the URNs seen and the events done are written once for
    the whole batch: one transaction and a few statements for many messages is what makes
    the worker fast. Any failure propagates; the caller rolls the batch back and processes
    its events one by one with `process_event`.
    """
    rows: list[dict[str, Any]] = []
    seen: list[tuple[Contact, str]] = []
    for event in events:
        inbound = _inbound_of(event)
        contact, replies = handle(
            session=session, inbound=inbound, config=config, now=now, places=places, seen=seen
        )
        lang = contact.language or config.default_language
        rows += _rows(event.id, inbound, replies, contact.id, lang, now)
        logger.info(
            "inbound processed event=%s contact=%s replies=%d", event.id, contact.id, len(replies)
        )
    session.flush()
    contacts.record_inbound(session=session, seen=seen, now=now)
    queued = outbox.enqueue_many(session=session, rows=rows)
    inbox.mark_processed_many(session=session, event_ids=[e.id for e in events], now=now)
    return queued


def process_safely(
    *,
    session: Session,
    events: list[PendingEvent],
    config: BotConfig,
    now: datetime,
    places: PlaceResolver,
) -> int:
    """Handle events as one batch in a savepoint; if anything fails, redo them one by one.

    The redo guards each event on its own (`process_event`), so one bad message costs its
    sender an apology and the others nothing. Return the replies queued.
    """
    try:
        with session.begin_nested():
            return process_batch(
                session=session, events=events, config=config, now=now, places=places
            )
    except Exception:
        logger.warning("batch of %d events failed; redoing them one by one", len(events))
    return sum(
        process_event(session=session, event=event, config=config, now=now, places=places)
        for event in events
    )


def process_pending(
    *, session: Session, urn: str, config: BotConfig, now: datetime, places: PlaceResolver
) -> int:
    """Process a URN's unprocessed events in order (per-contact ordering); return replies."""
    events = inbox.pending_batch(session=session, urn=urn)
    return process_safely(session=session, events=events, config=config, now=now, places=places)
