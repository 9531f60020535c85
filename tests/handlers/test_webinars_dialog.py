"""Webinar dialogs: list, register (button, deep link), .ics, unregister, survey; staff in chat."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from handlers import features, webinars_ics
from handlers import webinars_core as core
from handlers.messages import Outgoing
from scheduler.webinars import run_sweep
from storage import audit, contacts, surveys
from storage import webinars as db
from storage.db import session_scope
from storage.webinars_models import WebinarReminder
from tests.handlers.test_dialog_en import register
from tests.support import Dialog

WEBINAR_AT = datetime(2026, 11, 5, 13, 0, tzinfo=UTC)  # Thursday 21:00 in Shanghai


@pytest.fixture(autouse=True)
def attachments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Write calendar files under the test's directory."""
    folder = tmp_path / "attachments"
    monkeypatch.setattr(webinars_ics, "ICS_DIR", folder)
    return folder


def create(engine: Engine, clock: FixedClock, **overrides: object) -> int:
    """A webinar organised from Shanghai, with a French title; return its id."""
    fields: dict[str, object] = {
        "title": {"en": "Making cities resilient", "fr": "Rendre les villes résilientes"},
        "description": {"en": "Local disaster risk reduction strategies, with Sendai targets."},
        "starts_at": WEBINAR_AT,
        "timezone": "Asia/Shanghai",
        "duration_minutes": 90,
        "join_url": "https://meet.example/drr",
        "interpretation": ["en", "fr", "zh"],
        "focus_area": "drr_resilience",
        **overrides,
    }
    with session_scope(engine) as session:
        webinar = core.create_webinar(
            session=session,
            spec=core.WebinarSpec(**fields),  # type: ignore[arg-type]
            now=clock.now(),
        )
        assert webinar.id is not None
        return webinar.id


def deliver(d: Dialog, engine: Engine, clock: FixedClock, when: datetime) -> list[Outgoing]:
    """Move the clock to `when`, run the webinar sweep, send what it queued; return it."""
    clock.advance(when - clock.now())
    run_sweep(engine=engine, clock=clock)
    before = len(d.sender.sent)

    async def drain() -> None:
        """Send everything queued."""
        while await d.dispatcher.drain("console"):
            pass

    asyncio.run(drain())
    new = [m for urn, m in d.sender.sent[before:] if urn == d.urn]
    d.replies += new
    return new


def make_staff(engine: Engine, urn: str) -> None:
    """Give a contact the staff role."""
    with session_scope(engine) as session:
        contact = contacts.get_contact_by_urn(session=session, urn=urn)
        assert contact is not None
        contacts.update_contact(session=session, contact=contact, staff_role="staff")


def registered(dialog: Callable[..., Dialog], urn: str) -> Dialog:
    """A contact who walked the registration form (an official of Koidu)."""
    d = dialog(urn)
    register(d)
    return d


def registrant(dialog: Callable[..., Dialog], urn: str, webinar: int) -> Dialog:
    """A registered official who registered for a webinar with its deep link."""
    d = registered(dialog, urn)
    d.say(f"/start w{webinar}")
    return d


def staff_member(dialog: Callable[..., Dialog], engine: Engine, urn: str) -> Dialog:
    """A registered contact with the staff role."""
    d = registered(dialog, urn)
    make_staff(engine, urn)
    return d


def register_fr(d: Dialog) -> None:
    """Walk the registration form in French (Koidu)."""
    d.say("Bonjour, je représente la mairie de Koidu")
    assert "Acceptez-vous ?" in d.text()
    d.say("oui")
    d.say("Awa Sesay")
    d.say("3")
    d.say("Mairie de Koidu")
    d.say("koidu")
    d.say(tap="✅ Envoyer")


# --- officials ----------------------------------------------------------------------------------


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


# --- staff ---------------------------------------------------------------------------------


def test_staff_create_a_webinar_in_chat(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """The form's time in the organiser's city is stored in UTC, with the translations."""
    d = staff_member(dialog, engine, "console:staff")
    d.say("/webinar_new")
    assert "What is the webinar's title (in English)?" in d.text()
    d.say("Travel South over Cloud: inclusive tourism")
    d.say("Cities share how tourism recovers after COVID-19.")
    d.say(
        "fr: Voyage au Sud dans le nuage | Les villes partagent leurs pratiques. es: Viaje al Sur"
    )
    d.say("2026-12-03")
    d.say("14:30")
    d.say("Beijing")
    d.say("90")
    d.say("meet.example/tourism")
    d.say("English, Chinese")  # typed labels in any language
    d.say(tap="Sustainable tourism, heritage and creative economy")
    d.say("500")
    d.say("24")
    assert "Please check your answers" in d.text()
    replies = d.say(tap="✅ Submit")
    assert "✅ Webinar #1 created: «Travel South over Cloud: inclusive tourism»" in replies[0].text
    assert "Registration link: /start w1" in replies[0].text
    with session_scope(engine) as session:
        webinar = db.get_webinar(session=session, webinar_id=1)
        assert webinar is not None
        assert webinar.starts_at == datetime(2026, 12, 3, 6, 30, tzinfo=UTC)
        assert webinar.timezone == "Asia/Shanghai"
        assert webinar.title == {
            "en": "Travel South over Cloud: inclusive tourism",
            "fr": "Voyage au Sud dans le nuage",
            "es": "Viaje al Sur",
        }
        assert webinar.description["fr"] == "Les villes partagent leurs pratiques."
        assert webinar.join_url == "https://meet.example/tourism"
        assert (webinar.interpretation, webinar.focus_area) == (["en", "zh"], "tourism_heritage")
        assert webinar.capacity == 500
        assert webinar.registration_deadline == webinar.starts_at - timedelta(hours=24)
        assert [e.subject for e in audit.entries(session=session, action="webinar_created")] == [
            "webinar:1"
        ]


def test_staff_edit_and_cancel_in_chat_and_registrants_are_told(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """A new start reaches the registrant in their local time; the cancellation too."""
    webinar = create(engine, clock)
    official = registrant(dialog, "console:official", webinar)
    d = staff_member(dialog, engine, "console:boss")
    d.say(f"/webinar_edit {webinar} start 2026-11-06 22:00")
    assert f"Webinar #{webinar} updated (starts_at); 1 registrants will be told." in d.text()
    (notice,) = deliver(official, engine, clock, clock.now())
    assert "«Making cities resilient» has changed" in notice.text
    assert "Friday, November 6, 2026 2:00\u202fPM (UTC, Freetown)" in notice.text
    d.say(f"/webinar_edit {webinar} link not a link")
    assert "That did not work: not a link" in d.text()
    d.say(f"/webinar_cancel {webinar}")
    assert "Its 1 registrants will be told" in d.text()
    d.say(tap="Yes, cancel it")
    assert f"Webinar #{webinar} cancelled; 1 registrants will be told." in d.text()
    (cancelled,) = deliver(official, engine, clock, clock.now() + timedelta(minutes=1))
    assert "«Making cities resilient», planned for Friday, November 6, 2026" in cancelled.text
    assert "has been cancelled" in cancelled.text
    assert deliver(official, engine, clock, datetime(2026, 11, 6, 13, tzinfo=UTC)) == []


def test_staff_figures_by_country_language_and_delivery(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """/webinar_stats: registrations by country and language, and what became of reminders."""
    webinar = create(engine, clock)
    official = registrant(dialog, "console:counted", webinar)
    deliver(official, engine, clock, WEBINAR_AT - timedelta(hours=1))
    d = staff_member(dialog, engine, "console:analyst")
    d.say(f"/webinar_stats {webinar}")
    assert "Registered: 1; unregistered: 0" in d.text()
    assert "By country: SL 1" in d.text()
    assert "By language: en 1" in d.text()
    assert "Reminders: reminder: queued 1, skipped 1; survey: scheduled 1" in d.text()
    assert "Delivery: reminder: sent 1" in d.text()
    assert "Skipped or cancelled: superseded 1" in d.text()
    d.say("/webinar_stats")
    assert f"#{webinar} Making cities resilient" in d.text()


def test_officials_cannot_run_webinar_staff_commands_or_buttons(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """The router refuses (and audits) the commands; the cancel button is checked too."""
    webinar = create(engine, clock)
    d = registered(dialog, "console:curious")
    d.say("/webinar_new")
    assert "What would you like to do?" in d.text()
    d.tap_id(f"w:k{webinar}")
    with session_scope(engine) as session:
        assert len(audit.entries(session=session, action="staff_denied")) == 2
        found = db.get_webinar(session=session, webinar_id=webinar)
        assert found is not None and found.status == "scheduled"


def _rows(engine: Engine, webinar: int) -> list[WebinarReminder]:
    """The scheduled messages of a webinar."""
    with session_scope(engine) as session:
        return list(db.reminders_of(session=session, webinar_id=webinar))
