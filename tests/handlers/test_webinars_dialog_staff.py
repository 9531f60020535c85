"""Webinar dialogs for staff in chat: create, edit, cancel, figures; officials refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from storage import audit
from storage import webinars as db
from storage.db import session_scope
from tests.handlers.webinars_dialog_cases import (
    WEBINAR_AT,
    create,
    deliver,
    registered,
    registrant,
    staff_member,
)
from tests.handlers.webinars_dialog_cases import attachments as attachments  # a fixture
from tests.support import Dialog


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
