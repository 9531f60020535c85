"""Privacy and safety: /forget leaves nothing personal anywhere; logs hold ids, not people."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from scheduler.jobs import redact_erased_sweep
from storage import contacts, surveys
from storage.db import session_scope
from tests.support import Dialog

NAME = "Fatmata Sesay-Quarshie"
ORG = "Kenema District Council Office"
PROJECT = "Solar lanterns for Nyandeyama market"


def _register_and_answer(d: Dialog) -> None:
    """Register with recognisable values and answer the development survey."""
    d.say("Hello, good morning from the district council")
    d.say("yes")
    d.say(NAME)
    d.say("2")
    d.say(ORG)
    d.say("Kenema")
    d.say("1")
    d.say("/needs")
    d.say("1, 5")
    d.say("1")
    d.say(PROJECT)
    d.say("skip")
    d.say("skip")
    d.say("yes")
    d.say("1")


def _every_text_in_the_database(engine: Engine) -> str:
    """Dump every column of every row of every table as one string."""
    dump = []
    with engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):  # noqa: S608
                dump.append(" ".join(str(v) for v in row))
    return "\n".join(dump)


def test_forget_leaves_nothing_personal_in_any_table(
    dialog: Callable[..., Dialog], engine: Engine
) -> None:
    """After /forget the name, organisation, URN and typed texts are in no table at all."""
    urn = "console:fatmata-7731"
    d = dialog(urn)
    _register_and_answer(d)
    before = _every_text_in_the_database(engine)
    assert NAME in before and ORG in before and urn in before
    d.say("/forget")
    d.say("yes")  # the confirmation is delivered (the dialog drains the outbox) …
    assert redact_erased_sweep(engine=engine) >= 1  # … then the sweep blanks it too
    after = _every_text_in_the_database(engine)
    for personal in (NAME, ORG, urn, "Fatmata", PROJECT):
        assert personal not in after, personal
    with session_scope(engine) as session:
        (response,) = surveys.responses(session=session, survey_id="development_needs")
        assert response.contact_id is None and response.city_name is None
        assert response.answers["priorities"] == [
            "covid_health",
            "drr_resilience",
        ]  # aggregates stay
        assert response.answers["projects"] is None  # free text may name people: gone
        assert contacts.get_contact_by_urn(session=session, urn=urn) is None


@pytest.mark.parametrize(
    "hostile",
    [
        "Robert'); DROP TABLE contact;--",
        "1 OR 1=1",
        '" OR ""="',
        "<script>alert(1)</script>",
        "{0.__class__} {name} %s %(x)s",
        "\u202eevil\u202c",
    ],
)
def test_hostile_strings_are_stored_verbatim_and_harmless(
    dialog: Callable[..., Dialog], engine: Engine, hostile: str
) -> None:
    """Injection and format strings are data: stored as typed, tables intact."""
    d = dialog("console:hostile")
    d.say("Hello, good morning to the team")
    d.say("yes")
    d.say(hostile)
    d.say("1")
    d.say(hostile)
    d.say("Kenema")
    assert hostile in d.text()  # the summary shows it back, unformatted
    d.say("1")
    with session_scope(engine) as session:
        contact = contacts.get_contact_by_urn(session=session, urn="console:hostile")
        assert contact is not None and contact.name == hostile and contact.organisation == hostile
    assert "contact" in inspect(engine).get_table_names()


def test_logs_hold_ids_not_names_addresses_or_bodies(
    dialog: Callable[..., Dialog], caplog: pytest.LogCaptureFixture
) -> None:
    """At INFO and above, no name, organisation, URN or typed text is logged."""
    urn = "console:amadu-5512"
    with (
        caplog.at_level(logging.DEBUG, logger="handlers"),
        caplog.at_level(logging.DEBUG, logger="bot"),
    ):
        d = dialog(urn)
        _register_and_answer(d)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert logged  # something was logged …
    for personal in (NAME, ORG, PROJECT, urn, "amadu", "Kenema"):
        assert personal not in logged  # … but nothing about the person
