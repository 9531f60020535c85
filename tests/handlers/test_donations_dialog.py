"""Dialogs for officials: filing a request and its checks, following it, in English and French."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from handlers.config import BotConfig
from handlers.context import Ctx
from handlers.places import Gazetteer
from storage import contacts
from storage import donations as store
from storage.db import session_scope
from storage.donations_models import DonationRequest
from tests.handlers.test_donations_kit import DialogFactory, choice_id, register
from tests.support import Dialog, fragment


def requests_of(
    engine: Engine, contact_id: int
) -> list[tuple[DonationRequest, list[tuple[str, int]]]]:
    """The contact's filed requests (newest first) with their (item, quantity) lines."""
    with session_scope(engine) as session:
        found = store.requests_of_contact(session=session, contact_id=contact_id)
        return [
            (
                r,
                [
                    (line.item_id, line.quantity)
                    for line in store.request_lines(session=session, request_id=r.id or 0)
                ],
            )
            for r in found
        ]


def file_masks(d: Dialog, quantity: str = "20k", *, submit: bool = True) -> list:
    """File a request for surgical masks (English)."""
    d.say("/request")
    d.say("masks")
    d.say(quantity)
    d.say("Koidu Government Hospital")
    d.say("12 Hospital Road, Koidu")
    d.say("Critical: within a week")
    d.say("skip")
    d.say("Health workers of the district hospital")
    return d.say(tap="✅ Submit") if submit else []


def test_file_a_request_in_english(dialog: DialogFactory, engine: Engine) -> None:
    """Items, a quantity each, recipient, address, urgency, date, purpose → a short reference."""
    d = dialog("console:amina")
    register(d)
    d.say("/request")
    assert "Which supplies do you need?" in d.text()
    d.say("masks, gloves")
    assert "How many Surgical masks" in d.text() and "not boxes" in d.text()
    d.say("20k")
    assert "How many Examination gloves" in d.text()
    d.say("5000")
    d.say("Koidu Government Hospital")
    d.say("12 Hospital Road, Koidu")
    d.say("Critical: within a week")
    d.say("2026-11-20")
    d.say("Health workers of the district hospital")
    assert "Please check your answers" in d.text() and "20,000" in d.text()
    replies = d.say(tap="✅ Submit")
    ((request, lines),) = requests_of(engine, 1)
    assert request.status == "submitted" and request.ref is not None
    assert lines == [("surgical_mask", 20000), ("gloves", 5000)]
    assert (request.city_name, request.country_code) == ("Koidu", "SL")
    assert request.institution == "Koidu Government Hospital"
    assert request.needed_by is not None and request.needed_by.isoformat() == "2026-11-20"
    assert request.ref in replies[0].text and "20,000 pieces" in replies[0].text
    assert "5,000 pairs" in replies[0].text
    assert "What would you like to do?" in replies[-1].text


def test_file_a_request_in_french_and_follow_it(dialog: DialogFactory, engine: Engine) -> None:
    """The French keyword starts the form; « demandes » lists it; the reference shows it."""
    d = dialog("console:jean")
    register(d, "fr")
    d.say("demande")
    assert "De quelles fournitures avez-vous besoin ?" in d.text()
    d.say("masques, gants")
    assert "De combien de Masques chirurgicaux" in d.text()
    d.say("200 000")
    d.say("10.000")
    d.say("Hôpital public de Koidu")
    d.say("Route de l’hôpital, Koidu")
    d.say("2")
    d.say("passer")
    d.say("Personnel soignant")
    assert "200\u202f000" in d.text()
    replies = d.say(tap=fragment("summary_confirm", "fr"))
    ((request, lines),) = requests_of(engine, 1)
    assert lines == [("surgical_mask", 200000), ("gloves", 10000)]
    assert request.language == "fr" and request.urgency == "high"
    assert f"Votre demande {request.ref} est déposée" in replies[0].text
    d.say("demandes")
    assert "Vos demandes de don" in d.text() and request.ref in d.text()
    d.tap_id(choice_id(d.last, f"dv:{request.id}"))
    assert f"Demande {request.ref} — En attente d’examen" in d.text()
    assert "demandé 200\u202f000 pièces" in d.text()
    d.say(f"/requests {request.ref.lower().replace('-', '')}")  # typed loosely
    assert f"Demande {request.ref}" in d.text()
    d.say(f"/start {request.ref}")  # a deep link to the request
    assert f"Demande {request.ref}" in d.text()
    d.say("/requests R-2222")
    assert "R-2222" in d.text() and "Je n’ai rien trouvé" in d.text()


def test_a_quantity_above_the_bound_is_questioned_and_corrected(
    dialog: DialogFactory, engine: Engine
) -> None:
    """50 million masks: asked back; "No, I will correct it" asks again; the new one is filed."""
    d = dialog("console:big")
    register(d)
    replies = file_masks(d, "50 million")
    assert "50,000,000 pieces is more than one city usually asks for" in replies[0].text
    assert "Is this quantity right?" in d.text()
    assert requests_of(engine, 1) == []  # nothing filed yet
    replies = d.say("2")
    assert "Surgical masks: please type the quantity again." in replies[0].text
    assert "How many do you need?" in d.text()
    replies = d.say("500000")
    ((request, lines),) = requests_of(engine, 1)
    assert lines == [("surgical_mask", 500000)] and request.status == "submitted"
    assert request.ref in replies[0].text


def test_a_large_quantity_can_be_kept_and_staff_see_it_was_checked(
    dialog: DialogFactory, engine: Engine
) -> None:
    """Keeping the figure files it, with the check recorded for the staff review."""
    d = dialog("console:keep")
    register(d)
    file_masks(d, "6000000")
    d.say(tap="Yes, it is right")
    ((request, lines),) = requests_of(engine, 1)
    assert lines == [("surgical_mask", 6000000)]
    assert request.checks["confirmed"] == [{"kind": "bound", "line": 1, "answer": "keep"}]


def test_boxes_or_pieces(dialog: DialogFactory, engine: Engine) -> None:
    """200 gloves may be 200 boxes of 50: the official says boxes, 10,000 pairs are filed."""
    d = dialog("console:boxes")
    register(d)
    d.say("/request")
    d.say("gloves")
    replies = d.say("200")
    for answer in ("Clinic", "Main Street", "3", "skip", "Nurses"):
        replies = d.say(answer)
    replies = d.say(tap="✅ Submit")
    assert "These usually come in boxes of 50" in replies[0].text
    assert "200 boxes are 10,000 pairs" in replies[0].text
    d.say(tap="Boxes")
    ((request, lines),) = requests_of(engine, 1)
    assert lines == [("gloves", 10000)]
    assert request.checks["confirmed"][0]["answer"] == "boxes"


def test_a_duplicate_open_request_of_the_city_is_questioned(
    dialog: DialogFactory, engine: Engine
) -> None:
    """A second open request of Koidu for masks: the first is named; cancelling files nothing."""
    d = dialog("console:dup")
    register(d)
    file_masks(d)
    ((first, _),) = requests_of(engine, 1)
    other = dialog("console:dup2")  # another official of the same city
    register(other)
    replies = file_masks(other, "30000")
    assert (
        f"already has an open request for some of these supplies: {first.ref}" in replies[0].text
    )
    other.say(tap="Cancel it")
    assert "is cancelled; nothing was filed" in other.replies[-2].text
    assert [r.status for r, _ in requests_of(engine, 2)] == ["cancelled"]
    file_masks(other, "30000")
    other.say(tap="File it too")
    second, _ = requests_of(engine, 2)[0]
    assert second.status == "submitted"
    assert second.checks["confirmed"] == [
        {"kind": "duplicate", "other": first.id, "answer": "file"}
    ]


def test_the_emergency_survey_becomes_a_request_in_one_step(
    dialog: DialogFactory, engine: Engine
) -> None:
    """After /ppe, /request offers the survey answers; two questions later it is filed."""
    d = dialog("console:ppe")
    register(d)
    d.say("/ppe")
    d.say("surgical masks, gloves")
    d.say("200 000")
    d.say("5000")
    d.say("1")
    d.say("Koidu Government Hospital")
    d.say("Critical: within a week")
    d.say("1")
    d.say("/request")
    assert "You answered the emergency (PPE) survey on" in d.text()
    assert "• Surgical masks: 200,000 pieces" in d.text()
    d.say(tap="Use my survey answers")
    assert "delivery address" in d.text()
    d.say("12 Hospital Road, Koidu")
    replies = d.say("Health workers and volunteers")
    ((request, lines),) = requests_of(engine, 1)
    assert lines == [("surgical_mask", 200000), ("gloves", 5000)]
    assert request.source == "survey" and request.survey_response_id is not None
    assert (request.institution, request.urgency) == ("Koidu Government Hospital", "critical")
    assert request.ref in replies[0].text
    d.say("/request")  # the survey was used: a new request starts from scratch
    assert "Which supplies do you need?" in d.text()


def test_an_official_cancels_a_request(dialog: DialogFactory, engine: Engine) -> None:
    """From the status view, with a confirmation."""
    d = dialog("console:cancel")
    register(d)
    file_masks(d)
    ((request, _),) = requests_of(engine, 1)
    d.say(f"/requests {request.ref}")
    d.tap_id(choice_id(d.last, f"dv:{request.id}:cancel"))
    assert "Partners will no longer see it" in d.text() or "no longer see it" in d.text()
    d.tap_id(choice_id(d.last, f"dv:{request.id}:cancelok"))
    assert f"Request {request.ref} is cancelled." in d.text()
    ((request, _),) = requests_of(engine, 1)
    assert request.status == "cancelled"


def test_others_cannot_see_a_request(dialog: DialogFactory, engine: Engine) -> None:
    """Another official's reference is not found."""
    d = dialog("console:owner")
    register(d)
    file_masks(d)
    ((request, _),) = requests_of(engine, 1)
    stranger = dialog("console:stranger")
    register(stranger)
    stranger.say(f"/requests {request.ref}")
    assert "I found nothing with the reference" in stranger.text()


def test_an_unregistered_contact_registers_first(dialog: DialogFactory) -> None:
    """/request before registering: registration, then the request form."""
    d = dialog("console:new")
    d.say("Hello there, good morning to you")
    d.say("/request")
    assert "please register your office and city" in d.text()


def test_a_reference_alone_shows_the_request(
    dialog: DialogFactory, engine: Engine, places: Gazetteer
) -> None:
    """`R-7K3F` typed alone (the router hook in docs/donations.md): the request's status."""
    from handlers import donations_status, features

    d = dialog("console:typed")
    register(d)
    file_masks(d)
    ((request, _),) = requests_of(engine, 1)
    assert request.ref is not None
    with session_scope(engine) as session:
        contact = contacts.get_contact_by_urn(session=session, urn="console:typed")
        assert contact is not None
        ctx = Ctx(
            session=session, contact=contact, urn="console:typed", config=BotConfig(),
            now=d.clock.now(), lang="en", places=places,
        )  # fmt: skip
        replies = donations_status.typed(ctx, request.ref.lower().replace("-", " "))
        assert (
            replies is not None and f"Request {request.ref} — Awaiting review" in replies[0].text
        )
        assert donations_status.typed(ctx, "hello") is None
        assert donations_status.typed(ctx, "S-2222") is None
    if hasattr(features, "text_handler"):  # once the router consults feature text handlers
        d.say(request.ref)
        assert f"Request {request.ref} — Awaiting review" in d.text()
