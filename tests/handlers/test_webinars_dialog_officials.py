"""Webinar dialogs for officials: list, register (button, deep link), .ics, unregister, survey."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from handlers import features, webinars_ics
from handlers import webinars_core as core
from storage import contacts, surveys
from storage import webinars as db
from storage.db import session_scope
from storage.webinars_models import WebinarReminder
from tests.handlers.webinars_dialog_cases import (
    WEBINAR_AT,
    create,
    deliver,
    register_fr,
    registered,
    registrant,
    staff_member,
)
from tests.handlers.webinars_dialog_cases import attachments as attachments  # a fixture
from tests.support import Dialog


def test_list_and_register_with_a_button_in_the_readers_and_the_organisers_time(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """The list and the confirmation show both times, the link and when reminders come."""
    webinar = create(engine, clock, capacity=100)
    d = registered(dialog, "console:amina")
    d.say("/webinars")
    assert "Upcoming webinars" in d.text()
    assert "1. Making cities resilient" in d.text()
    assert "Thursday, November 5, 2026 1:00\u202fPM (UTC, Freetown)" in d.text()
    assert "Registration open" in d.text()
    d.say(tap="1. Making cities resili…")
    assert "Local disaster risk reduction strategies" in d.text()
    assert "Organiser’s time: Thursday, November 5, 2026 9:00\u202fPM (UTC+08:00, Shanghai)" in (
        d.text()
    )
    assert "Duration: 90 minutes" in d.text()
    assert "Interpretation: English, Français, and 中文" in d.text()
    assert "Focus area: Disaster risk reduction, resilient cities" in d.text()
    assert "Places left: 100" in d.text()
    assert "meet.example" not in d.text()  # the link is for registrants
    assert d.labels() == ["Register", "All webinars"]
    d.say(tap="Register")
    assert "You are registered for «Making cities resilient»" in d.text()
    assert "Reminders will come 1 day and 1 hour before the start" in d.text()
    assert "Your time: Thursday, November 5, 2026 1:00\u202fPM (UTC, Freetown)" in d.text()
    assert "Join link: https://meet.example/drr" in d.text()
    assert d.labels() == ["📅 Calendar file", "Unregister", "All webinars"]
    d.say(tap="All webinars")
    assert "✅ You are registered" in d.text()
    with session_scope(engine) as session:
        contact = contacts.get_contact_by_urn(session=session, urn="console:amina")
        assert contact is not None
        registration = db.get_registration(
            session=session, webinar_id=webinar, contact_id=contact.id or 0
        )
        assert registration is not None
        assert (registration.source, registration.timezone, registration.country_code) == (
            "button",
            "Africa/Freetown",
            "SL",
        )


def test_the_calendar_file_is_rfc5545_in_utc(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """DTSTART/DTEND in UTC, SUMMARY, URL, UID; CRLF line ends; long lines folded."""
    webinar = create(engine, clock)
    d = registrant(dialog, "console:ics", webinar)
    d.say(tap="📅 Calendar file")
    (attachment,) = d.last.attachments
    assert (attachment.kind, attachment.filename) == ("document", f"webinar-{webinar}.ics")
    assert Path(attachment.path).parent == webinars_ics.ICS_DIR
    with open(attachment.path, encoding="utf-8", newline="") as handle:
        body = handle.read()
    assert body.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n") and body.endswith(
        "END:VCALENDAR\r\n"
    )
    assert f"UID:webinar-{webinar}@citybot\r\n" in body
    assert "DTSTART:20261105T130000Z\r\n" in body and "DTEND:20261105T143000Z\r\n" in body
    assert "SUMMARY:Making cities resilient\r\n" in body
    assert "URL:https://meet.example/drr\r\n" in body
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))
    assert "\r\n " in body  # the description is folded


def test_unregistering_cancels_the_reminders_and_offers_registering_again(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """After unregistering no reminder comes."""
    webinar = create(engine, clock)
    d = registrant(dialog, "console:leaver", webinar)
    d.say(tap="Unregister")
    assert "You are no longer registered for «Making cities resilient»" in d.text()
    assert d.labels() == ["Register", "All webinars"]
    assert {r.status for r in _rows(engine, webinar)} == {"cancelled"}
    assert deliver(d, engine, clock, WEBINAR_AT - timedelta(minutes=30)) == []
    d.tap_id(f"w:u{webinar}")  # a stale button
    assert "You are not registered for «Making cities resilient»" in d.text()


def test_a_deep_link_registers_and_a_second_tap_says_so(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """`/start w<id>` registers a known contact; again: already; an unknown id: the list."""
    webinar = create(engine, clock)
    d = registrant(dialog, "console:linked", webinar)
    assert "You are registered for «Making cities resilient»" in d.text()
    d.say(f"/start w{webinar}")
    assert "You are already registered" in d.text()
    d.say("/start w999")
    assert "I could not find that webinar" in d.text()
    assert "Upcoming webinars" in d.text()
    with session_scope(engine) as session:
        (registration,) = db.active_registrations(session=session, webinar_id=webinar)
        assert registration.source == "deep_link"


@pytest.mark.skipif(
    not hasattr(features, "follow_link"),
    reason="needs the router change in docs/webinars.md (deep links kept through the welcome)",
)
def test_a_deep_link_from_a_new_contact_registers_after_the_welcome(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """A new contact: language, consent and profile first, then the registration."""
    webinar = create(engine, clock)
    d = dialog("console:newcomer")
    d.say(f"/start w{webinar}", hint="en")
    d.say(tap="Yes")
    d.say("Amina Kamara")
    d.say("3")
    d.say("Koidu City Council")
    d.say("koidu")
    d.say(tap="✅ Submit")
    assert "You are registered for «Making cities resilient»" in d.text()


def test_full_closed_and_cancelled_webinars_say_so(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """No place left, past the deadline, or cancelled: the reader is told, nothing is stored."""
    full = create(engine, clock, capacity=1)
    closing = create(engine, clock, registration_deadline=clock.now() + timedelta(hours=1))
    registrant(dialog, "console:first", full)  # takes the only place
    d = registered(dialog, "console:late")
    d.say(f"/start w{full}")
    assert "Sorry, «Making cities resilient» is full." in d.text()
    assert d.labels() == ["All webinars"]
    clock.advance(timedelta(hours=2))
    d.say(f"/start w{closing}")
    assert "Registration for «Making cities resilient» is closed." in d.text()
    with session_scope(engine) as session:
        core.cancel_webinar(session=session, webinar_id=full, now=clock.now())
    d.tap_id(f"w:s{full}")
    assert "«Making cities resilient» has been cancelled." in d.text()
    with session_scope(engine) as session:
        contact = contacts.get_contact_by_urn(session=session, urn="console:late")
        assert contact is not None
        assert db.registered_webinar_ids(session=session, contact_id=contact.id or 0) == set()


def test_in_french_the_list_the_confirmation_and_the_reminder(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """The French title, French dates, the French keyword, a French reminder."""
    webinar = create(engine, clock)
    d = dialog("console:awa")
    register_fr(d)
    d.say("webinaires")
    assert "Prochains webinaires" in d.text()
    assert "Rendre les villes résilientes" in d.text()
    assert "jeudi 5 novembre 2026 13:00 (UTC, Freetown)" in d.text()
    d.say(tap=d.labels()[0])
    d.say(tap="M’inscrire")
    assert "Vous êtes inscrit(e) à «Rendre les villes résilientes»" in d.text()
    assert "1\xa0jour et 1\xa0heure avant le début" in d.text()
    (reminder,) = deliver(d, engine, clock, WEBINAR_AT - timedelta(hours=1))
    assert reminder.kind == "reminder"
    assert reminder.text.startswith("⏰ Rappel : «Rendre les villes résilientes» commence dans")
    assert "Lien de connexion : https://meet.example/drr" in reminder.text
    assert webinar == reminder.meta["webinar_id"]


def test_the_post_webinar_survey_end_to_end(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """Invited after the end, the survey is stored with the webinar and offered only once."""
    webinar = create(engine, clock)
    d = registrant(dialog, "console:survey", webinar)
    d.tap_id(f"w:f{webinar}")  # before the webinar: not yet
    assert "opens to its registrants once the webinar has started" in d.text()
    delivered = deliver(d, engine, clock, WEBINAR_AT + timedelta(minutes=150))
    (invitation,) = [m for m in delivered if m.kind == "webinar_survey"]
    assert "Thank you for taking part in «Making cities resilient»" in invitation.text
    d.say(tap="Start the survey")
    assert "Did you attend the webinar?" in d.text()
    d.say(tap="Yes")
    assert "how satisfied" in d.text()
    d.say(tap="Very satisfied")
    d.say(tap="A lot")
    d.say("yes")
    assert "Which cities would you like to partner with?" in d.text()
    d.say("Quezon City and Suva")
    d.say("1, 5")
    d.say("Amina Kamara")
    assert "Please check your answers" in d.text()
    d.say(tap="✅ Submit")
    assert "Your answers were saved" in d.text()
    with session_scope(engine) as session:
        (response,) = surveys.responses(session=session, survey_id="webinar_survey")
        contact = contacts.get_contact_by_urn(session=session, urn="console:survey")
        assert contact is not None
        registration = db.get_registration(
            session=session, webinar_id=webinar, contact_id=contact.id or 0
        )
        assert registration is not None
        assert registration.certificate_name == "Amina Kamara"
        assert registration.survey_response_id == response.id
    assert response.answers == {
        "webinar_id": webinar,
        "attended": True,
        "satisfaction": "very_satisfied",
        "knowledge": "a_lot",
        "partnership": True,
        "partner_cities": "Quezon City and Suva",
        "topics": ["covid_health", "drr_resilience"],
        "certificate_requested": True,
    }
    assert response.country_code == "SL"
    d.tap_id(f"w:f{webinar}")
    assert "You have already answered the survey" in d.text()


def test_the_survey_ends_early_for_someone_who_did_not_attend(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """Answering no to attendance stores that and ends the survey."""
    webinar = create(engine, clock)
    d = registrant(dialog, "console:absent", webinar)
    deliver(d, engine, clock, WEBINAR_AT + timedelta(minutes=150))
    d.say(tap="Start the survey")
    d.say(tap="No")
    assert "Send /webinars to see the next webinars" in d.text()
    with session_scope(engine) as session:
        (response,) = surveys.responses(session=session, survey_id="webinar_survey")
    assert response.answers == {
        "webinar_id": webinar,
        "attended": False,
        "certificate_requested": False,
    }


def test_typed_numbers_pick_webinar_buttons(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """On channels without buttons a typed number picks the webinar, then the action."""
    create(engine, clock)
    d = registered(dialog, "console:typist")
    d.say("/webinars")
    d.say("1")
    assert "Local disaster risk reduction strategies" in d.text()
    d.say("1")
    assert "You are registered for «Making cities resilient»" in d.text()
    d.say("7")  # not one of the three buttons: the usual fallback
    assert "I did not understand" in d.text()


def test_a_superscript_digit_is_asked_again_not_a_crash(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """`²` is a digit to str.isdigit() but not to int(): typed, linked or tapped, it is no id."""
    webinar = create(engine, clock)
    d = registered(dialog, "console:superscript")
    d.say("/webinars")
    d.say("²")  # after the webinar buttons: not one of them, the usual fallback
    assert "I did not understand" in d.text()
    d.say("/start w²")
    assert "Upcoming webinars" in d.text()
    d.tap_id("w:r²")
    assert "Upcoming webinars" in d.text()
    staff = staff_member(dialog, engine, "console:staff2")
    for command in ("/webinar_cancel ²", "/webinar_edit ² duration 60"):
        staff.say(command)
        assert "Webinar commands for staff" in staff.text()
    staff.say("/webinar_stats ²")
    assert f"#{webinar} Making cities resilient" in staff.text()


def _rows(engine: Engine, webinar: int) -> list[WebinarReminder]:
    """The scheduled messages of a webinar."""
    with session_scope(engine) as session:
        return list(db.reminders_of(session=session, webinar_id=webinar))
