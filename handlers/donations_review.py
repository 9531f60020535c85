"""Reviewing donation requests (chat and CLI): filing, approval, decline, questions, answers.

Each operation changes the records, audits staff actions and queues what the official (and
staff) must be told, in the caller's transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from handlers.donations_notify import Build, audit_action, tell
from handlers.donations_text import city_label, line_texts
from handlers.i18n import t, words_for
from handlers.messages import Choice, Outgoing
from storage import donations as store
from storage.donations import DonationError, RequestStatus
from storage.donations_models import DonationNote, DonationRequest
from storage.models import Contact

logger = logging.getLogger(__name__)


def review_buttons(request: DonationRequest, lang: str) -> tuple[Choice, ...]:
    """Approve, decline and ask buttons for staff."""
    rid = request.id
    return (
        Choice(f"ds:{rid}:a", t("don_btn_approve", lang)),
        Choice(f"ds:{rid}:d", t("don_btn_decline", lang)),
        Choice(f"ds:{rid}:q", t("don_btn_ask", lang)),
    )


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

    tell(session, request.contact_id, f"don:filed:{request.id}", now, filed)
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

        tell(session, staff_id, f"don:new:{request.id}:{staff_id}", now, card)


def approve(session: Session, request: DonationRequest, now: datetime, actor: int | None) -> None:
    """Approve a request and tell the official it is shared with donor partners."""
    store.set_request_status(
        session=session, request=request, status=RequestStatus.APPROVED, now=now
    )
    audit_action(session, "approve", now, actor, request.ref or "")
    tell(
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
    audit_action(session, "decline", now, actor, request.ref or "")
    tell(
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
    audit_action(session, "ask", now, actor, request.ref or "", note=note.id)
    tell(
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

        tell(session, staff_id, f"don:answer:{reply.id}:{staff_id}", now, build)
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
