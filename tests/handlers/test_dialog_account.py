"""Dialogs about the person: /mydata, stop and start, expiry, language changes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.engine import Engine

from scheduler.jobs import expire_runs_sweep
from storage import audit, surveys
from storage.db import session_scope
from tests.handlers.test_dialog_en import register
from tests.support import Dialog, fragment


def test_mydata_shows_everything_stored(dialog: Callable[..., Dialog]) -> None:
    """/mydata lists the profile, channels, consent and surveys answered."""
    d = dialog("console:me")
    register(d)
    d.say("/mydata")
    text = d.text()
    for shown in (
        "Amina Kamara",
        "City official",
        "Koidu City Council",
        "Koidu, Sierra Leone",
        "Africa/Freetown",
        "English",
        "console:me",
        "version 2026-11",
    ):
        assert shown in text


def test_stop_opts_out_and_start_opts_back_in(
    dialog: Callable[..., Dialog], engine: Engine
) -> None:
    """STOP ends the survey and silences the bot but for its status; START brings it back."""
    d = dialog("console:stop")
    register(d)
    d.say("/ppe")
    d.say("STOP")
    assert fragment("stopped", "en") in d.text()
    d.say("gloves")
    assert fragment("still_stopped", "en") in d.text() and not d.last.choices
    d.say("start")
    assert fragment("restarted", "en") in d.text()
    with session_scope(engine) as session:
        assert surveys.active_run(session=session, contact_id=1) is None
        assert [e.action for e in audit.entries(session=session)][-2:] == ["opt_out", "opt_in"]


def test_survey_expires_after_a_week_and_offers_a_restart(dialog: Callable[..., Dialog]) -> None:
    """Coming back after the expiry: told it expired, offered to start again."""
    d = dialog("console:late")
    register(d)
    d.say("/ppe")
    d.say("gloves")
    d.clock.advance(timedelta(days=6))
    d.say("100")  # still alive after six days
    assert "Who will receive" in d.text()
    d.clock.advance(timedelta(days=7, minutes=1))
    d.say("1")
    assert "has expired" in d.text()
    d.say(tap="Start again")
    assert "Which supplies" in d.text()


def test_sweep_expires_runs_and_the_person_is_told_next_time(
    dialog: Callable[..., Dialog], engine: Engine
) -> None:
    """The scheduler's sweep expires idle runs (idempotently); the next message explains."""
    d = dialog("console:swept")
    register(d)
    d.say("/needs")
    now = d.clock.advance(timedelta(days=8))
    assert expire_runs_sweep(engine=engine, now_iso=now.isoformat()) == 1
    assert expire_runs_sweep(engine=engine, now_iso=now.isoformat()) == 0
    d.say("1, 2")
    assert "has expired" in d.text()
    d.say("2")
    assert "What would you like to do?" in d.text()


def test_custom_expiry_is_honoured(dialog: Callable[..., Dialog]) -> None:
    """RUN_EXPIRY_HOURS shortens the expiry."""
    d = dialog("console:short", run_expiry=timedelta(hours=2))
    d.say("Hello, good morning to the team")
    d.clock.advance(timedelta(hours=3))
    d.say("yes")
    assert "has expired" in d.text()


def test_language_menu_then_explicit_choice_is_never_overridden(
    dialog: Callable[..., Dialog],
) -> None:
    """A chosen language stays even when the person writes a sentence in another one."""
    d = dialog("console:lang")
    d.say("ok")
    assert d.labels()[0] == "English"
    d.say("Français")
    assert fragment("language_set", "fr", language="Français") in d.text()
    d.say("non")
    d.say("Hello, I would like to see the main menu please")
    assert fragment("not_understood", "fr") in d.text()


def test_platform_hint_decides_the_first_language(dialog: Callable[..., Dialog]) -> None:
    """Telegram's language_code is used when nothing was chosen."""
    d = dialog("console:hint")
    d.say("/start", hint="pt-BR")
    assert fragment("welcome", "pt") in d.text()


def test_short_replies_never_switch_language(dialog: Callable[..., Dialog]) -> None:
    """A detected language survives 'ok', 'sí', '2' and the like."""
    d = dialog("console:short-replies")
    d.say("Bonjour, je voudrais inscrire notre mairie")
    assert fragment("welcome", "fr") in d.text()
    for reply in ("ok", "sí", "2", "hello"):
        d.say(reply)
    d.say("/mydata")
    assert fragment("mydata_title", "fr") in d.text()
