"""Dialogs in English: onboarding, both surveys, and the words that work everywhere."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine

from storage import contacts, surveys
from storage.db import session_scope
from tests.support import Dialog, fragment


def register(d: Dialog) -> None:
    """Walk the registration form in English with a city the gazetteer knows."""
    d.say("Hello, I am writing from the mayor's office")
    assert "Do you agree?" in d.text()
    d.say(tap="Yes")
    assert "full name" in d.text()
    d.say("Amina Kamara")
    d.say("3")  # City official
    d.say("Koidu City Council")
    d.say("koidu")
    assert "Koidu, Sierra Leone" in d.text()  # the summary shows the resolved city
    d.say(tap="✅ Submit")


def profile(engine: Engine, urn: str) -> dict[str, object]:
    """Read a contact's stored profile."""
    with session_scope(engine) as session:
        c = contacts.get_contact_by_urn(session=session, urn=urn)
        assert c is not None
        return c.model_dump()


def test_registration_stores_profile_consent_and_city_time_zone(
    dialog: Callable[..., Dialog], engine: Engine
) -> None:
    """Typed city names resolve to a canonical city with its country and time zone."""
    d = dialog("console:amina")
    register(d)
    assert "your office is registered" in d.text()
    p = profile(engine, "console:amina")
    assert p["name"] == "Amina Kamara"
    assert p["role"] == "city_official"
    assert (p["city_name"], p["country_code"], p["timezone"]) == ("Koidu", "SL", "Africa/Freetown")
    assert p["consent_version"] == "2026-11" and p["consent_at"] is not None
    assert p["language"] == "en"


def test_consent_refused_stores_nothing_personal(
    dialog: Callable[..., Dialog], engine: Engine
) -> None:
    """Without consent the bot says so and asks nothing personal."""
    d = dialog("console:refuser")
    d.say("Good morning to the whole team")
    d.say(tap="No")
    assert "will not store your name" in d.text()
    assert "What would you like to do?" in d.text()
    p = profile(engine, "console:refuser")
    assert p["name"] is None and p["consent_at"] is None and p["consent_refused_at"] is not None


def test_development_needs_survey_end_to_end(
    dialog: Callable[..., Dialog], engine: Engine
) -> None:
    """Priorities (max 3, with Other), support, optional texts skipped, agencies, contact."""
    d = dialog("console:dev")
    register(d)
    d.say("/needs")
    assert "top three development priorities" in d.text()
    d.say("1, 2, 3, 4")
    assert "between 1 and 3" in d.text()
    d.say("1, 5, 15")  # COVID, DRR, Other
    assert "Which other priority" in d.text()
    d.say("Informal markets")
    d.say("capacity development, knowledge sharing")
    d.say("skip")  # projects (optional)
    d.say("Durban and Manchester")
    d.say(tap="UNDP")
    d.say(tap="WHO")
    assert "Selected: UNDP, WHO" in d.text()
    d.say(tap="✔ Done")
    d.say("yes")
    assert "Please check your answers" in d.text()
    assert "(skipped)" in d.text()
    d.say(tap="✅ Submit")
    assert "Your answers were saved" in d.text()
    with session_scope(engine) as session:
        (response,) = surveys.responses(session=session, survey_id="development_needs")
    assert response.answers == {
        "priorities": ["covid_health", "drr_resilience", "other"],
        "priorities_other": "Informal markets",
        "support": ["capacity_development", "knowledge_sharing"],
        "projects": None,
        "partner_cities": "Durban and Manchester",
        "un_agencies": ["undp", "who"],
        "may_contact": True,
    }
    assert response.country_code == "SL" and response.contact_id is not None


def test_emergency_survey_quantities_in_every_notation(
    dialog: Callable[..., Dialog], engine: Engine
) -> None:
    """A quantity per selected supply, read from any notation; anything else is asked again."""
    d = dialog("console:ppe")
    register(d)
    d.say("/ppe")
    d.say("surgical masks, gloves, 8")
    assert "Which other supplies" in d.text()
    d.say("Thermometers")
    assert "How many Surgical masks" in d.text()
    d.say("lots")
    assert fragment("invalid_number", "en") in d.text()
    d.say("200 000")
    assert "How many Gloves" in d.text()
    d.say("0")
    assert "between 1 and 100,000,000" in d.text()
    d.say("٥٠٠٠")
    assert "How many Thermometers" in d.text()
    d.say("1.5k")
    d.say("1")  # hospitals
    d.say("Koidu Government Hospital")
    d.say("Critical: within a week")
    assert "200,000" in d.text()  # summary shows the quantity grouped
    d.say("1")
    with session_scope(engine) as session:
        (response,) = surveys.responses(session=session, survey_id="emergency_needs")
    assert response.answers["quantities"] == {
        "surgical_masks": 200000,
        "gloves": 5000,
        "other": 1500,
    }
    assert response.answers["urgency"] == "critical"
    assert response.answers["recipients"] == "hospitals"


def test_back_skip_cancel_help_work_everywhere(
    dialog: Callable[..., Dialog], engine: Engine
) -> None:
    """back shows the earlier answer; skip refuses required questions; cancel keeps nothing."""
    d = dialog("console:nav")
    register(d)
    d.say("/needs")
    d.say("back")
    assert "This is the first question" in d.text()
    d.say("2")
    assert "What support" in d.text()
    d.say("skip")
    assert "This question needs an answer" in d.text()
    d.say("back")
    assert "top three" in d.text() and "Your answer so far: Sustainable agriculture" in d.text()
    d.say("help")
    assert "Answer the question below" in d.text() and "top three" in d.text()
    d.say("cancel")
    assert "Nothing from this survey was saved" in d.text()
    with session_scope(engine) as session:
        assert surveys.responses(session=session) == []
        assert surveys.active_run(session=session, contact_id=1) is None


def test_summary_edit_changes_one_answer(dialog: Callable[..., Dialog], engine: Engine) -> None:
    """From the summary an answer can be changed, then the summary comes back."""
    d = dialog("console:edit")
    register(d)
    d.say("/ppe")
    d.say("gloves")
    d.say("100")
    d.say("2")
    d.say("skip")
    d.say("4")
    d.say(tap="✏️ Change an answer")
    assert "Which answer do you want to change?" in d.text()
    d.say("2")  # the gloves quantity
    assert "How many Gloves" in d.text() and "Your answer so far: 100" in d.text()
    d.say("250")
    assert "Please check your answers" in d.text() and "250" in d.text()
    d.say(tap="✅ Submit")
    with session_scope(engine) as session:
        (response,) = surveys.responses(session=session)
    assert response.answers["quantities"] == {"gloves": 250}


def test_stale_button_cannot_answer_a_new_question(dialog: Callable[..., Dialog]) -> None:
    """A button from an earlier question is refused and the current question is asked again."""
    d = dialog("console:stale")
    register(d)
    d.say("/ppe")
    old = d.last.choices[0].id
    d.say("gloves")
    d.tap_id(old)
    assert fragment("stale_button", "en") in d.text()
    assert "How many Gloves" in d.text()


def test_every_bad_input_gets_a_clear_reask(dialog: Callable[..., Dialog]) -> None:
    """Empty, emoji, out-of-range numbers, unknown options: always a re-ask with the options."""
    d = dialog("console:bad")
    d.say("🙂")
    assert d.labels()[:2] == ["English", "Français"]  # cannot tell: the language menu
    d.say("9")
    assert fragment("invalid_choice", "en") in d.text()
    d.say("1")
    d.say("maybe")
    assert fragment("invalid_yes_no", "en") in d.text() and d.labels() == ["Yes", "No"]
    d.say("yes")
    d.say("x" * 101)
    assert "under 100 characters" in d.text()
    d.say("Amina")
    d.say("astronaut")
    assert fragment("invalid_choice", "en") in d.text() and len(d.labels()) == 9
    d.say("12")
    assert "from 1 to 9" in d.text()
    d.say("mayor")
    d.say("Koidu council")
    d.say("Xyzzyville")
    assert "could not find" in d.text() and d.labels() == ["My city is not listed"]
    d.say(tap="My city is not listed")
    d.say("Xyzzyville")
    d.say("Narnia")
    assert "could not find the country" in d.text()
    d.say("Sierra Leone")
    assert "Xyzzyville, Sierra Leone" in d.text()


def test_ambiguous_city_offers_a_choice(dialog: Callable[..., Dialog], engine: Engine) -> None:
    """A name several cities share gives a choice with their countries."""
    d = dialog("console:sj")
    d.say("Hello there, good morning")
    d.say("yes")
    d.say("Rosa")
    d.say("1")
    d.say("Municipalidad")
    d.say("San Jose")
    assert "Several places" in d.text()
    assert "San José, Costa Rica" in d.labels()
    d.say(tap="San José, Costa Rica")
    d.say(tap="✅ Submit")
    assert profile(engine, "console:sj")["timezone"] == "America/Costa_Rica"
