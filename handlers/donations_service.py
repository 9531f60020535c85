"""Donation operations shared by chat and the CLI: each changes the records, audits staff
actions and queues what the officials (and staff) must be told, in the caller's transaction.

Proactive messages go through the outbox (handlers.notify.queue_for_contact) with keys that
make them idempotent: a delivery update is `ship:<event id>:<contact id>`, so recording or
notifying the same shipment event twice tells each official once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlmodel import Session

from handlers.donations_catalogue import catalogue, item_name, quantity_text
from handlers.i18n import t, words_for
from handlers.messages import Attachment, Choice, Outgoing
from handlers.notify import queue_for_contact
from handlers.places import country_name
from storage import audit, contacts
from storage import donations as store
from storage.donations import (
    DonationError,
    LineInput,
    MatchStatus,
    PledgeStatus,
    RequestStatus,
    ShipmentStatus,
)
from storage.donations_models import (
    DonationDonor,
    DonationMatch,
    DonationNote,
    DonationPledge,
    DonationRequest,
    DonationShipment,
    DonationShipmentEvent,
)
from storage.models import Contact

logger = logging.getLogger(__name__)

__all__ = ["DonationError", "LineInput"]


# -- showing things ---------------------------------------------------------------------------


def show_date(value: datetime | date | None, lang: str, timezone: str | None = None) -> str:
    """Show a date in the language (a time in the contact's city time zone)."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        zone = ZoneInfo(timezone) if timezone else None
        value = (value.astimezone(zone) if zone else value).date()
    return str(format_date(value, format="medium", locale=lang))


def status_label(status: str, lang: str) -> str:
    """Name a request, pledge or shipment status in a language."""
    return t(f"don_status_{status}", lang)


def city_label(request: DonationRequest | DonationShipment, lang: str) -> str:
    """Show `Koidu, Sierra Leone`."""
    country = country_name(request.country_code, lang) if request.country_code else ""
    return ", ".join(part for part in (request.city_name, country) if part) or "—"


def line_texts(session: Session, request: DonationRequest, lang: str) -> list[str]:
    """One bullet per line: item and requested quantity."""
    return [
        f"• {item_name(line.item_id, lang, line.description)}: "
        f"{quantity_text(line.quantity, line.item_id, lang)}"
        for line in store.request_lines(session=session, request_id=request.id or 0)
    ]


def error_text(error: DonationError, lang: str) -> str:
    """Say why an operation was refused."""
    values = dict(error.values)
    for name in ("current", "target"):
        if name in values and f"don_status_{values[name]}" in _STATUS_KEYS:
            values[name] = t(f"don_status_{values[name]}", lang)
    return t(error.key, lang, **values)


_STATUS_KEYS = frozenset(
    f"don_status_{s}" for s in (*RequestStatus, *PledgeStatus, *ShipmentStatus, *MatchStatus)
)


def _contact(session: Session, contact_id: int | None) -> Contact | None:
    """Return a contact who can be messaged, or None."""
    if contact_id is None:
        return None
    contact = contacts.get_contact(session=session, contact_id=contact_id)
    if contact is None or contact.erased_at is not None:
        return None
    return contact


Build = Callable[[str, Contact], Outgoing]


def _tell(
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


def _audit(
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


def review_buttons(request: DonationRequest, lang: str) -> tuple[Choice, ...]:
    """Approve, decline and ask buttons for staff."""
    rid = request.id
    return (
        Choice(f"ds:{rid}:a", t("don_btn_approve", lang)),
        Choice(f"ds:{rid}:d", t("don_btn_decline", lang)),
        Choice(f"ds:{rid}:q", t("don_btn_ask", lang)),
    )


# -- requests ---------------------------------------------------------------------------------


def file_request(session: Session, request: DonationRequest, now: datetime) -> None:
    """File a checked draft: submitted, the official gets the reference, staff get a card."""
    store.set_request_status(
        session=session, request=request, status=RequestStatus.SUBMITTED, now=now
    )
    logger.info("donation request filed request=%s", request.id)

    def filed(lang: str, contact: Contact) -> Outgoing:
        lines = "\n".join(line_texts(session, request, lang))
        return Outgoing(
            text=t("don_filed", lang, ref=request.ref, lines=lines),
            meta={"ref": request.ref},
        )

    _tell(session, request.contact_id, f"don:filed:{request.id}", now, filed)
    for staff_id in store.staff_contact_ids(session=session):
        if staff_id == request.contact_id:
            continue

        def card(lang: str, contact: Contact) -> Outgoing:
            return Outgoing(
                text=t("don_staff_new", lang, ref=request.ref, city=city_label(request, lang))
                + "\n"
                + "\n".join(line_texts(session, request, lang)),
                choices=review_buttons(request, lang),
            )

        _tell(session, staff_id, f"don:new:{request.id}:{staff_id}", now, card)


def approve(session: Session, request: DonationRequest, now: datetime, actor: int | None) -> None:
    """Approve a request and tell the official it is shared with donor partners."""
    store.set_request_status(
        session=session, request=request, status=RequestStatus.APPROVED, now=now
    )
    _audit(session, "approve", now, actor, request.ref or "")
    _tell(
        session,
        request.contact_id,
        f"don:approved:{request.id}",
        now,
        lambda lang, c: Outgoing(text=t("don_approved", lang, ref=request.ref)),
    )


def decline(
    session: Session, request: DonationRequest, reason: str, now: datetime, actor: int | None
) -> None:
    """Decline a request with a reason the official receives."""
    reason = reason.strip()
    if not reason:
        raise DonationError("don_err_reason")
    store.set_request_status(
        session=session, request=request, status=RequestStatus.DECLINED, now=now, reason=reason
    )
    note = store.add_note(
        session=session, request_id=request.id or 0, kind="decline", text=reason, now=now,
        author_contact_id=actor,
    )  # fmt: skip
    _audit(session, "decline", now, actor, request.ref or "")
    _tell(
        session,
        request.contact_id,
        f"don:declined:{note.id}",
        now,
        lambda lang, c: Outgoing(text=t("don_declined", lang, ref=request.ref, reason=reason)),
    )


def ask(
    session: Session, request: DonationRequest, question: str, now: datetime, actor: int | None
) -> DonationNote:
    """Ask the official for more information; the answer comes back onto the request."""
    question = question.strip()
    if not question:
        raise DonationError("don_err_reason")
    if request.status != RequestStatus.INFO_REQUESTED:
        store.set_request_status(
            session=session, request=request, status=RequestStatus.INFO_REQUESTED, now=now
        )
    note = store.add_note(
        session=session, request_id=request.id or 0, kind="question", text=question, now=now,
        author_contact_id=actor,
    )  # fmt: skip
    _audit(session, "ask", now, actor, request.ref or "", note=note.id)
    _tell(
        session,
        request.contact_id,
        f"don:question:{note.id}",
        now,
        question_message(request, note),
    )
    return note


def question_message(request: DonationRequest, note: DonationNote) -> Build:
    """Build the message carrying a staff question, with its Answer button."""

    def build(lang: str, contact: Contact) -> Outgoing:
        return Outgoing(
            text=t(
                "don_question",
                lang,
                ref=request.ref,
                question=note.text or "",
                answer=words_for("don_answer", lang)[0],
            ),  # fmt: skip
            choices=(Choice(f"di:{note.id}", t("don_btn_answer", lang)),),
            meta={"ref": request.ref},
        )

    return build


def answer(
    session: Session, question: DonationNote, text: str, contact: Contact, now: datetime
) -> DonationNote:
    """Put an official's answer on the request; back to review when nothing else is asked."""
    request = store.get_request(session=session, request_id=question.request_id)
    assert request is not None
    reply = store.add_note(
        session=session, request_id=question.request_id, kind="answer", text=text, now=now,
        author_contact_id=contact.id, reply_to=question.id,
    )  # fmt: skip
    store.mark_answered(session=session, note=question, now=now)
    if request.status == RequestStatus.INFO_REQUESTED and not any(
        n.kind == "question" and n.answered_at is None
        for n in store.notes_of(session=session, request_id=request.id or 0)
    ):
        store.set_request_status(
            session=session, request=request, status=RequestStatus.SUBMITTED, now=now
        )
    logger.info("donation answer request=%s note=%s", request.id, reply.id)
    staff = [question.author_contact_id] if question.author_contact_id else []
    for staff_id in staff or store.staff_contact_ids(session=session):

        def build(lang: str, c: Contact) -> Outgoing:
            return Outgoing(
                text=t(
                    "don_staff_answer",
                    lang,
                    ref=request.ref,
                    question=question.text or "",
                    answer=text,
                ),  # fmt: skip
                choices=review_buttons(request, lang),
            )

        _tell(session, staff_id, f"don:answer:{reply.id}:{staff_id}", now, build)
    return reply


def cancel_by_official(session: Session, request: DonationRequest, now: datetime) -> None:
    """Cancel a request at the official's wish (refused once something was shipped)."""
    store.set_request_status(
        session=session, request=request, status=RequestStatus.CANCELLED, now=now
    )
    store.add_note(
        session=session, request_id=request.id or 0, kind="cancel", now=now,
        author_contact_id=request.contact_id,
    )  # fmt: skip


# -- donors, pledges, matches -----------------------------------------------------------------


def add_donor(
    session: Session,
    name: str,
    now: datetime,
    actor: int | None,
    *,
    kind: str = "other",
    country_code: str | None = None,
) -> DonationDonor:
    """Record a donor partner (or return the one of that name)."""
    donor = store.ensure_donor(
        session=session, name=name, now=now, kind=kind, country_code=country_code
    )
    _audit(session, "donor", now, actor, f"D{donor.id}")
    return donor


def item_lines(
    items: Sequence[tuple[str, int]], description: str | None = None
) -> list[LineInput]:
    """Turn (item id or name, quantity) pairs into lines; unknown items are refused."""
    found: list[LineInput] = []
    for text, quantity in items:
        item = catalogue().find(text)
        if item is None:
            raise DonationError("don_err_unknown_item", item=text)
        found.append(
            LineInput(
                item_id=item.id,
                item_group=item.group,
                quantity=quantity,
                description=description if item.id == "other" else None,
            )
        )
    return found


def add_pledge(
    session: Session,
    donor: DonationDonor,
    items: Sequence[tuple[str, int]],
    now: datetime,
    actor: int | None,
    *,
    request: DonationRequest | None = None,
    logistics_covered: bool = False,
    available_on: date | None = None,
    note: str | None = None,
) -> DonationPledge:
    """Record a pledge; with a request, its lines are pledged to that request's lines at once."""
    lines = item_lines(items)
    if request is not None and request.status != RequestStatus.APPROVED:
        raise DonationError("don_err_request_not_approved", ref=request.ref or "?")
    pledge = store.create_pledge(
        session=session, donor_id=donor.id or 0, lines=lines, now=now,
        logistics_covered=logistics_covered, available_on=available_on, note=note,
        recorded_by=actor,
    )  # fmt: skip
    _audit(session, "pledge", now, actor, pledge.ref or "", donor=donor.id)
    if request is not None:
        wanted = store.request_lines(session=session, request_id=request.id or 0)
        linked = 0
        for pline in store.pledge_lines(session=session, pledge_id=pledge.id or 0):
            for rline in wanted:
                left = min(
                    pline.quantity - pline.quantity_matched,
                    rline.quantity - rline.quantity_pledged,
                )
                if rline.item_group == pline.item_group and left > 0:
                    match = store.link(
                        session=session, request_line_id=rline.id or 0,
                        pledge_line_id=pline.id or 0, quantity=left, now=now,
                        actor_contact_id=actor,
                    )  # fmt: skip
                    tell_pledged(session, match, now)
                    linked += 1
        if not linked:
            raise DonationError("don_err_item_mismatch", wanted=request.ref or "?",
                                offered=", ".join(i for i, _ in items))  # fmt: skip
    return pledge


def tell_pledged(session: Session, match: DonationMatch, now: datetime) -> None:
    """Tell the official a partner pledged part of their request."""
    rline = store.get_request_line(session=session, line_id=match.request_line_id)
    pline = store.get_pledge_line(session=session, line_id=match.pledge_line_id)
    assert rline is not None and pline is not None
    request = store.get_request(session=session, request_id=rline.request_id)
    pledge = store.get_pledge(session=session, pledge_id=pline.pledge_id)
    assert request is not None and pledge is not None
    donor = store.get_donor(session=session, donor_id=pledge.donor_id)

    def build(lang: str, contact: Contact) -> Outgoing:
        return Outgoing(
            text=t(
                "don_pledged",
                lang,
                ref=request.ref,
                donor=donor.name if donor else "?",
                quantity=quantity_text(match.quantity, rline.item_id, lang),
                item=item_name(rline.item_id, lang, rline.description),
            ),  # fmt: skip
            meta={"ref": request.ref},
        )

    _tell(session, request.contact_id, f"don:pledged:{match.id}", now, build)


def confirm_match(
    session: Session,
    match: DonationMatch,
    now: datetime,
    actor: int | None,
    quantity: int | None = None,
) -> DonationMatch:
    """Confirm a proposed match and tell the official."""
    store.confirm_match(
        session=session, match=match, now=now, quantity=quantity, actor_contact_id=actor
    )
    _audit(session, "match_confirm", now, actor, f"M{match.id}", quantity=match.quantity)
    tell_pledged(session, match, now)
    return match


def reject_match(session: Session, match: DonationMatch, now: datetime, actor: int | None) -> None:
    """Reject a proposed match (it is not proposed again)."""
    store.reject_match(session=session, match=match, now=now, actor_contact_id=actor)
    _audit(session, "match_reject", now, actor, f"M{match.id}")


def withdraw(session: Session, pledge: DonationPledge, now: datetime, actor: int | None) -> None:
    """Record a donor withdrawing (what was not shipped goes back to the requests)."""
    store.set_pledge_status(session=session, pledge=pledge, status=PledgeStatus.WITHDRAWN, now=now)
    _audit(session, "withdraw", now, actor, pledge.ref or "")


# -- shipments --------------------------------------------------------------------------------


def ship(
    session: Session,
    pledge: DonationPledge,
    now: datetime,
    actor: int | None,
    *,
    parts: Sequence[tuple[int, int]] | None = None,
    carrier_ref: str | None = None,
    source: str = "staff",
    notify: bool = True,
) -> list[DonationShipment]:
    """Ship a pledge's confirmed, unshipped matches (or the parts given): one shipment a city."""
    if parts is None:
        confirmed = store.matches(
            session=session, statuses=[MatchStatus.CONFIRMED], pledge_id=pledge.id
        )
        parts = [(m.id or 0, m.quantity - m.quantity_shipped) for m in confirmed]
        parts = [(m, q) for m, q in parts if q > 0]
    if not parts:
        raise DonationError("don_err_nothing_to_ship", ref=pledge.ref or "?")
    by_city: dict[tuple[str | None, str | None], list[tuple[int, int]]] = {}
    for match_id, quantity in parts:
        match = store.get_match(session=session, match_id=match_id)
        if match is None:
            raise DonationError("don_err_match_state", id=match_id)
        rline = store.get_request_line(session=session, line_id=match.request_line_id)
        assert rline is not None
        request = store.get_request(session=session, request_id=rline.request_id)
        assert request is not None
        by_city.setdefault((request.country_code, request.city_name), []).append(
            (match_id, quantity)
        )
    shipments = []
    for city_parts in by_city.values():
        shipment = store.create_shipment(
            session=session, pledge=pledge, parts=city_parts, now=now, carrier_ref=carrier_ref,
            actor_contact_id=actor, source=source,
        )  # fmt: skip
        _audit(session, "ship", now, actor, shipment.ref or "", pledge=pledge.ref)
        shipments.append(shipment)
        if notify:
            for event in store.shipment_events(session=session, shipment_id=shipment.id or 0):
                notify_event(session, event, now)
    return shipments


def track(
    session: Session,
    shipment: DonationShipment,
    status: ShipmentStatus,
    now: datetime,
    actor: int | None,
    *,
    at: datetime | None = None,
    note: str | None = None,
    photo: str | None = None,
    delivered: dict[int, int] | None = None,
    source: str = "staff",
    notify: bool = True,
) -> tuple[DonationShipmentEvent, bool]:
    """Record a shipment status event and queue the delivery updates (once per event)."""
    event, created = store.record_event(
        session=session, shipment=shipment, status=status, now=now, at=at, note=note,
        photo=photo, actor_contact_id=actor, source=source, delivered=delivered,
    )  # fmt: skip
    if created:
        _audit(session, "track", now, actor, shipment.ref or "", status=str(status))
    if notify:
        notify_event(session, event, now)
    return event, created


def notify_event(session: Session, event: DonationShipmentEvent, now: datetime) -> int:
    """Queue a delivery update for every official whose request the shipment serves."""
    shipment = store.get_shipment(session=session, shipment_id=event.shipment_id)
    assert shipment is not None
    queued = 0
    for request in store.requests_of_shipment(session=session, shipment_id=shipment.id or 0):
        if request.contact_id is None or request.contact_id == event.actor_contact_id:
            continue
        message = delivery_update(session, event, shipment, request)
        queued += (
            _tell(
                session,
                request.contact_id,
                f"ship:{event.id}:{request.contact_id}",
                now,
                message,
                kind="delivery_update",
            )
            is not None
        )
    if event.notified_at is None:
        store.mark_notified(session=session, event=event, now=now)
    logger.info("delivery update event=%s queued=%d", event.id, queued)
    return queued


def delivery_update(
    session: Session,
    event: DonationShipmentEvent,
    shipment: DonationShipment,
    request: DonationRequest,
) -> Build:
    """Build one official's delivery update, with Received / Problem buttons when they apply."""
    donor = store.get_donor(session=session, donor_id=shipment.donor_id)
    lines = [
        line
        for line in store.shipment_lines(session=session, shipment_id=shipment.id or 0)
        if line.request_line_id
        in {r.id for r in store.request_lines(session=session, request_id=request.id or 0)}
    ]

    def build(lang: str, contact: Contact) -> Outgoing:
        bullets = [
            f"• {item_name(line.item_id, lang)}: "
            f"{quantity_text(line.quantity, line.item_id, lang)}"
            for line in lines
        ]
        text = t(
            f"don_update_{event.status}", lang, ref=request.ref, shipment=shipment.ref,
            donor=donor.name if donor else "?",
            date=show_date(event.at, lang, contact.timezone),
        )  # fmt: skip
        parts = [text, *bullets]
        if event.note:
            parts.append(t("don_update_note", lang, note=event.note))
        attachments: tuple[Attachment, ...] = ()
        if event.photo and event.photo.startswith(("http://", "https://")):
            parts.append(t("don_update_photo", lang, url=event.photo))
        elif event.photo and Path(event.photo).is_file():
            attachments = (Attachment("image", Path(event.photo).name, event.photo),)
        choices: tuple[Choice, ...] = ()
        if event.status not in (ShipmentStatus.PREPARING, ShipmentStatus.CANCELLED):
            choices = (
                Choice(f"dl:{event.id}:ok", t("don_btn_received", lang)),
                Choice(f"dl:{event.id}:problem", t("don_btn_problem", lang)),
            )
            parts.append(
                t(
                    "don_update_footer",
                    lang,
                    received=words_for("don_received", lang)[0],
                    problem=words_for("don_problem", lang)[0],
                )  # fmt: skip
            )
        return Outgoing(
            text="\n".join(parts),
            choices=choices,
            attachments=attachments,
            kind="delivery_update",
            meta={
                "ref": request.ref,
                "shipment": shipment.ref,
                "status": status_label(event.status, lang),
            },
        )

    return build


def receipt(
    session: Session, event: DonationShipmentEvent, contact: Contact, now: datetime
) -> tuple[DonationShipment, bool]:
    """Record the city confirming receipt (it also marks a shipment still on its way arrived)."""
    shipment = store.get_shipment(session=session, shipment_id=event.shipment_id)
    assert shipment is not None
    if shipment.status in (
        ShipmentStatus.DISPATCHED,
        ShipmentStatus.IN_TRANSIT,
        ShipmentStatus.CUSTOMS,
    ):
        track(session, shipment, ShipmentStatus.ARRIVED, now, contact.id, source="city",
              note=None)  # fmt: skip
    new = store.confirm_receipt(session=session, shipment=shipment, contact_id=contact.id, now=now)
    if new:
        for request in store.requests_of_shipment(session=session, shipment_id=shipment.id or 0):
            store.add_note(
                session=session, request_id=request.id or 0, kind="receipt", now=now,
                author_contact_id=contact.id, shipment_id=shipment.id,
            )  # fmt: skip
        logger.info("donation receipt shipment=%s contact=%s", shipment.id, contact.id)
    return shipment, new


def problem(
    session: Session,
    shipment: DonationShipment,
    contact: Contact,
    kind: str,
    details: str | None,
    now: datetime,
) -> DonationNote | None:
    """Record a problem the city reports with a shipment and tell staff."""
    store.mark_problem(session=session, shipment=shipment, now=now)
    note = None
    for request in store.requests_of_shipment(session=session, shipment_id=shipment.id or 0):
        note = store.add_note(
            session=session, request_id=request.id or 0, kind="problem", now=now,
            text=f"{kind}: {details}" if details else kind, author_contact_id=contact.id,
            shipment_id=shipment.id,
        )  # fmt: skip
    if note is None:
        return None
    logger.info("donation problem shipment=%s note=%s", shipment.id, note.id)
    for staff_id in store.staff_contact_ids(session=session):

        def build(lang: str, c: Contact) -> Outgoing:
            return Outgoing(
                text=t(
                    "don_staff_problem",
                    lang,
                    shipment=shipment.ref,
                    city=city_label(shipment, lang),
                    problem=t(f"don_problem_{kind}", lang),
                    details=details or "—",
                )  # fmt: skip
            )

        _tell(session, staff_id, f"don:problem:{note.id}:{staff_id}", now, build)
    return note
