"""Dialogs with staff: review, ask for information, pledges, shipments, delivery updates."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from storage import audit
from storage import donations as store
from storage.db import session_scope
from tests.handlers.test_donations_kit import (
    DialogFactory,
    choice_id,
    make_staff,
    outbox_rows,
    register,
    sent_to,
)
from tests.support import Dialog, fragment

STAFF = "console:staff"


def filed(d: Dialog, lang: str = "en") -> str:
    """Register `d` and file a masks request; return its reference."""
    register(d, lang)
    if lang == "fr":
        for answer in ("demande", "masques", "20000", "Hôpital de Koidu", "Route 1, Koidu", "1"):
            d.say(answer)
        d.say("passer")
        d.say("Personnel soignant")
        replies = d.say(tap=fragment("summary_confirm", "fr"))
    else:
        for answer in ("/request", "masks", "20000", "Koidu Hospital", "Road 1, Koidu", "1"):
            d.say(answer)
        d.say("skip")
        d.say("Health workers")
        replies = d.say(tap="✅ Submit")
    return next(w for w in replies[0].text.split() if w.startswith("R-"))


def staff_dialog(dialog: DialogFactory, engine: Engine, clock: FixedClock) -> Dialog:
    """A staff member (no registration needed for staff commands)."""
    make_staff(engine, clock, STAFF)
    return dialog(STAFF)


def filed_for_staff(
    dialog: DialogFactory, engine: Engine, clock: FixedClock, urn: str, lang: str = "en"
) -> tuple[Dialog, Dialog, str]:
    """A staff member, and an official who filed a masks request; return both and its reference."""
    staff = staff_dialog(dialog, engine, clock)
    official = dialog(urn)
    return staff, official, filed(official, lang)


def test_staff_review_and_approve(
    dialog: DialogFactory, engine: Engine, clock: FixedClock
) -> None:
    """The new request reaches staff with buttons; /review lists it; approving tells the city."""
    staff, official, ref = filed_for_staff(dialog, engine, clock, "console:amina")
    card = sent_to(STAFF, official)[-1]
    assert f"New donation request {ref} from Koidu, Sierra Leone" in card.text
    assert [c.label for c in card.choices] == ["✅ Approve", "❌ Decline", "❓ Ask a question"]
    staff.say("/review")
    assert "Requests waiting for review" in staff.text() and ref in staff.text()
    staff.tap_id(staff.last.choices[0].id)
    assert "From: Amina Kamara (Koidu City Council)" in staff.text()
    assert "Recipient: Koidu Hospital" in staff.text()
    staff.tap_id(choice_id(staff.last, "ds:1:a"))
    assert f"{ref} approved; the official was told." in staff.text()
    told = sent_to("console:amina", staff)[-1]
    assert f"Your request {ref} was approved and shared with donor partners" in told.text
    staff.say(f"/approve {ref}")  # twice: a clear error, nothing changed
    assert "cannot go from “Approved, shared with donors” to “Approved" in staff.text()
    with session_scope(engine) as session:
        actions = [e.action for e in audit.entries(session=session)]
    assert "donation_approve" in actions and "staff:approve" in actions


def test_ask_for_information_loop_in_french(
    dialog: DialogFactory, engine: Engine, clock: FixedClock
) -> None:
    """Staff ask; the French official gets the question, answers it; it comes back to staff."""
    staff, official, ref = filed_for_staff(dialog, engine, clock, "console:jean", "fr")
    staff.say(f"/askinfo {ref} How many health workers will use the masks?")
    assert f"Question on {ref} sent to the official" in staff.text()
    question = sent_to("console:jean", staff)[-1]
    assert f"L’équipe du programme a une question sur votre demande {ref}" in question.text
    assert "How many health workers" in question.text and "« répondre »" in question.text
    official.tap_id(choice_id(question, "di:"))
    assert "Tapez votre réponse." in official.text()
    official.say("Environ 350 agents de santé")
    assert "Votre réponse a été transmise" in official.text()
    answer = sent_to(STAFF, official)[-1]
    assert "Answer about" in answer.text and "Environ 350 agents de santé" in answer.text
    with session_scope(engine) as session:
        request = store.request_by_ref(session=session, ref=ref)
        assert request is not None and request.status == "submitted"
        kinds = [n.kind for n in store.notes_of(session=session, request_id=request.id or 0)]
    assert kinds == ["question", "answer"]
    official.say("répondre")  # nothing left to answer
    assert "aucune question en attente" in official.text()


def test_decline_with_a_reason_typed_after_the_button(
    dialog: DialogFactory, engine: Engine, clock: FixedClock
) -> None:
    """The Decline button asks staff for the reason; the official receives it."""
    staff, official, ref = filed_for_staff(dialog, engine, clock, "console:amina")
    staff.say(f"/review {ref}")
    staff.tap_id(choice_id(staff.last, "ds:1:d"))
    assert f"Why is {ref} declined?" in staff.text()
    replies = staff.say("Masks are covered by the national programme this month")
    assert f"{ref} declined; the official received the reason" in replies[0].text
    told = sent_to("console:amina", staff)[-1]
    assert f"Your request {ref} was declined. Reason: Masks are covered" in told.text
    official.say(f"/requests {ref}")
    assert "Declined" in official.text() and "Reason given: Masks are covered" in official.text()


def test_only_staff_may_review(dialog: DialogFactory, engine: Engine, clock: FixedClock) -> None:
    """An official's /approve or review button gets the ordinary help; both are audited."""
    official = dialog("console:amina")
    ref = filed(official)
    official.say(f"/approve {ref}")
    assert fragment("help_text", "en") in official.text()
    official.tap_id("ds:1:a")
    assert fragment("help_text", "en") in official.text()
    with session_scope(engine) as session:
        denied = audit.entries(session=session, action="staff_denied")
        request = store.request_by_ref(session=session, ref=ref)
    assert len(denied) == 2 and request is not None and request.status == "submitted"


def test_pledge_shipment_updates_receipt_and_problem_in_french(
    dialog: DialogFactory, engine: Engine, clock: FixedClock
) -> None:
    """Each shipment event is a delivery update in French; receipt and a problem are recorded."""
    staff, official, ref = filed_for_staff(dialog, engine, clock, "console:jean", "fr")
    staff.say(f"/approve {ref}")
    staff.say("/donor Provincial Government of Henan; CN; government")
    assert "Donor D1 recorded" in staff.text()
    staff.say(f"/pledge Henan surgical_mask=10000 {ref} logistics")
    assert f"recorded for {ref}" in staff.text()
    pledged = sent_to("console:jean", staff)[-1]
    assert "Provincial Government of Henan a promis 10\u202f000 pièces de Masques" in pledged.text
    pledge_ref = staff.text().split()[2]
    staff.say(f"/ship {pledge_ref}")
    shipment_ref = staff.text().split()[2]
    preparing = sent_to("console:jean", staff)[-1]
    assert f"prépare l’expédition {shipment_ref}" in preparing.text and not preparing.choices
    staff.say(f"/track {shipment_ref} dispatched Air freight via Addis Ababa")
    assert f"{shipment_ref}: “Dispatched” recorded" in staff.text()
    update = sent_to("console:jean", staff)[-1]
    assert (
        f"l’expédition {shipment_ref} de Provincial Government of Henan est partie le"
        in update.text
    )
    assert (
        "• Masques chirurgicaux : 10\u202f000 pièces" in update.text
        or "10\u202f000" in update.text
    )
    assert "Remarque : Air freight via Addis Ababa" in update.text
    assert [c.label for c in update.choices] == ["✅ Bien reçu", "⚠️ Signaler un problème"]
    official.tap_id(choice_id(update, "dl:"))  # received: the shipment is marked arrived
    assert f"La réception de l’expédition {shipment_ref} est enregistrée" in official.text()
    official.tap_id(choice_id(update, "dl:"))
    assert "était déjà enregistrée" in official.text()
    official.say("problème")
    assert (
        f"Expédition {shipment_ref} :" in official.text()
        and "Quel est le problème ?" in official.text()
    )
    official.say("2")
    official.say("500 masques manquants")
    assert "Le problème a été enregistré" in official.text()
    alert = sent_to(STAFF, official)[-1]
    assert f"Problem reported with shipment {shipment_ref}" in alert.text
    assert "Items missing" in alert.text and "500 masques manquants" in alert.text
    with session_scope(engine) as session:
        shipment = store.shipment_by_ref(session=session, ref=shipment_ref)
        assert shipment is not None
        assert shipment.status == "arrived" and shipment.receipt_confirmed_at is not None
        request = store.request_by_ref(session=session, ref=ref)
        assert request is not None
        (line,) = store.request_lines(session=session, request_id=request.id or 0)
        kinds = [n.kind for n in store.notes_of(session=session, request_id=request.id or 0)]
    assert (line.quantity_pledged, line.quantity_shipped, line.quantity_delivered) == (
        10000,
        10000,
        10000,
    )
    assert kinds == ["receipt", "problem"]


def test_the_same_event_recorded_twice_notifies_once(
    dialog: DialogFactory, engine: Engine, clock: FixedClock
) -> None:
    """Recording "dispatched" again changes nothing and queues no second delivery update."""
    staff, official, ref = filed_for_staff(dialog, engine, clock, "console:amina")
    staff.say(f"/approve {ref}")
    staff.say("/donor CATIS; CN; business")
    staff.say(f"/pledge D1 surgical_mask=2000 {ref}")
    staff.say(f"/ship {staff.text().split()[2]}")
    shipment_ref = staff.text().split()[2]
    staff.say(f"/track {shipment_ref} dispatched")
    staff.say(f"/track {shipment_ref} dispatched")
    assert "was already recorded; nobody is told twice" in staff.text()
    updates = [r.idempotency_key for r in outbox_rows(engine, "delivery_update")]
    assert len(updates) == 2 and len(set(updates)) == 2  # preparing and dispatched, once each
    assert all(key.startswith("ship:") for key in updates)
    staff.say(f"/track {shipment_ref} handed_over")  # skipping arrival: refused, nothing changed
    assert "cannot go from “Dispatched” to “Handed over”" in staff.text()
    assert len(outbox_rows(engine, "delivery_update")) == 2


def test_matches_are_proposed_across_equivalent_items(
    dialog: DialogFactory, engine: Engine, clock: FixedClock
) -> None:
    """An unsolicited KN95 offer is proposed for an approved N95 request and confirmed."""
    staff = staff_dialog(dialog, engine, clock)
    official = dialog("console:amina")
    register(official)
    for answer in ("/request", "n95", "3000", "Koidu Hospital", "Road 1", "2", "skip", "ICU"):
        official.say(answer)
    replies = official.say(tap="✅ Submit")
    ref = next(w for w in replies[0].text.split() if w.startswith("R-"))
    staff.say("/matches")
    assert "No match to propose" in staff.text()
    staff.say(f"/approve {ref}")
    staff.say("/donor Shenzhen Federation of Youth Entrepreneurship Promotion; CN; ngo")
    staff.say("/pledge Shenzhen kn95_respirator=5000")
    assert "recorded as an offer" in staff.text()
    replies = staff.say("/matches")
    assert "Proposed matches (1)" in replies[0].text
    proposal = replies[1]
    assert f"→ {ref} (Koidu, Sierra Leone, High): N95 respirators" in proposal.text
    assert "3,000 pieces of KN95 respirators" in proposal.text
    staff.tap_id(choice_id(proposal, "dm:"))
    assert "confirmed; the official was told" in staff.text()
    told = sent_to("console:amina", staff)[-1]
    assert "pledged 3,000 pieces of N95 respirators" in told.text
    staff.say("/matches")
    assert "No match to propose" in staff.text()


def test_impact_report_in_chat(dialog: DialogFactory, engine: Engine, clock: FixedClock) -> None:
    """/impact totals the delivered shipments; /impact shipments lists those behind a figure."""
    from handlers import donations_demo

    with session_scope(engine) as session:
        donations_demo.load(session)
    staff = staff_dialog(dialog, engine, clock)
    staff.say("/impact")
    assert "Impact report (all time), from shipment records" in staff.text()
    assert "Delivered: Surgical masks 1,073,000 pieces" in staff.text()
    assert "reached 10 cities in 9 countries" in staff.text()
    assert "Under way, not delivered yet: Surgical masks 200,000" in staff.text()
    staff.say("/impact shipments country GM")
    assert "Shipments behind country GM" in staff.text()
    assert "3 shipment lines: Surgical masks 220,000" in staff.text()
    staff.say("/impact 2021")
    assert "2021-01 – 2021-12" in staff.text() and "Surgical masks 400,000 pieces" in staff.text()
