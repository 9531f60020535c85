"""Staff dialog helpers: officials with profiles and answers, staff roles, the compose walk."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.clock import FixedClock
from handlers import definitions
from storage import audit, contacts, surveys
from storage.db import session_scope
from storage.models import OutboxMessage
from storage.staff_models import Broadcast
from tests.support import Dialog

ADMIN, STAFF = "console:admin", "console:staff"


def person(
    engine: Engine,
    clock: FixedClock,
    urn: str,
    *,
    country: str | None = None,
    language: str = "en",
    role: str | None = "city_official",
    city: str | None = None,
    priorities: list[str] | None = None,
    support: list[str] | None = None,
    seen: timedelta | None = timedelta(hours=1),
    **flags: Any,
) -> int:
    """An official with a profile (and a development-needs answer); return the contact id."""
    with session_scope(engine) as session:
        contact, _ = contacts.get_or_create_contact(session=session, urn=urn, now=clock.now())
        last = clock.now() - seen if seen is not None else None
        contacts.update_contact(
            session=session,
            contact=contact,
            language=language,
            language_source="explicit",
            country_code=country,
            city_name=city,
            role=role,
            name=f"Official {urn}",
            consent_at=clock.now(),
            consent_version="2026-11",
            last_inbound_at=last,
            **flags,
        )
        if last is not None:
            contacts.record_inbound(session=session, seen=[(contact, urn)], now=last)
        if priorities is not None:
            answer(session, contact.id or 0, country, priorities, support or [], clock)
        return contact.id or 0


def answer(
    session: Any,
    contact_id: int,
    country: str | None,
    priorities: list[str],
    support: list[str],
    clock: FixedClock,
) -> None:
    """Store a submitted development-needs response for a contact."""
    definition = definitions.catalog()["development_needs"]
    pinned = surveys.pin_definition(
        session=session,
        survey_id=definition.id,
        version=definition.version,
        digest=definition.digest,
        body=definition.body,
        now=clock.now(),
    )
    run = surveys.start_run(
        session=session,
        contact_id=contact_id,
        survey_id=definition.id,
        definition_id=pinned,
        now=clock.now(),
        expires_at=clock.now() + timedelta(days=1),
    )
    surveys.save_response(
        session=session,
        run=run,
        version=definition.version,
        language="en",
        answers={"priorities": priorities, "support": support, "may_contact": True},
        now=clock.now(),
        contact_id=contact_id,
        country_code=country,
        city_name=None,
    )
    surveys.end_run(session=session, run=run, status="submitted", now=clock.now())


def make_staff(engine: Engine, clock: FixedClock, urns: dict[str, str]) -> None:
    """Bootstrap staff roles as STAFF_URNS does at start-up (with a language chosen)."""
    with session_scope(engine) as session:
        contacts.set_staff_roles(session=session, urns=urns, now=clock.now())
        for urn in urns:
            contact = contacts.get_contact_by_urn(session=session, urn=urn)
            assert contact is not None
            contacts.update_contact(
                session=session, contact=contact, language="en", language_source="explicit"
            )


def staff_dialog(
    dialog: Callable[..., Dialog],
    engine: Engine,
    clock: FixedClock,
    urn: str = STAFF,
    role: str = "staff",
) -> Dialog:
    """A staff member (or an admin) ready to chat."""
    make_staff(engine, clock, {urn: role})
    return dialog(urn)


@pytest.fixture
def files_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Write report and export files under the test's directory."""
    monkeypatch.setenv("CITYBOT_FILES_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def reporter(
    dialog: Callable[..., Dialog],
    engine: Engine,
    clock: FixedClock,
    officials: dict[str, int],
    files_dir: Path,
) -> Dialog:
    """A staff member, after the officials, whose reports and exports go to the test's folder."""
    return staff_dialog(dialog, engine, clock)


def messages(engine: Engine, kind: str = "broadcast") -> list[OutboxMessage]:
    """Outbox rows of a kind, oldest first."""
    with session_scope(engine) as session:
        stmt = select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
        return list(session.exec(stmt))


def actions(engine: Engine) -> list[str]:
    """The audit trail's actions, oldest first."""
    with session_scope(engine) as session:
        return [e.action for e in audit.entries(session=session)]


def latest(engine: Engine) -> Broadcast:
    """The newest broadcast."""
    with session_scope(engine) as session:
        found = session.exec(select(Broadcast).order_by(col(Broadcast.id).desc())).first()
        assert found is not None
        return found


@pytest.fixture
def officials(engine: Engine, clock: FixedClock) -> dict[str, int]:
    """Officials in several countries, languages and channels, with survey answers."""
    return {
        "sl_en": person(
            engine, clock, "console:sl-en", country="SL", priorities=["education", "covid_health"]
        ),
        "sl_fr": person(
            engine,
            clock,
            "console:sl-fr",
            country="SL",
            language="fr",
            priorities=["education"],
        ),
        "ke_ar": person(
            engine, clock, "console:ke-ar", country="KE", language="ar", priorities=["education"]
        ),
        "ke_tg": person(
            engine, clock, "telegram:501", country="KE", language="fr", priorities=["education"]
        ),
        "ke_wa": person(
            engine,
            clock,
            "whatsapp:+254700000001",
            country="KE",
            language="en",
            priorities=["education"],
            seen=timedelta(days=3),
        ),
        "ke_stop": person(
            engine,
            clock,
            "console:ke-stop",
            country="KE",
            priorities=["education"],
            opted_out=True,
        ),
        "ke_gone": person(
            engine,
            clock,
            "console:ke-gone",
            country="KE",
            priorities=["education"],
            unreachable=True,
        ),
        "fr_en": person(engine, clock, "console:fr-en", country="FR", priorities=["education"]),
        "sl_agri": person(
            engine, clock, "console:sl-agri", country="SL", priorities=["agriculture"]
        ),
    }


def compose(d: Dialog, *, segment: str, answers: list[str]) -> None:
    """Walk the compose form: title, English and French texts, the segment and its answers."""
    d.say("/broadcast")
    assert "A short title" in d.text()
    d.say("Webinar week")
    assert "In which languages" in d.text()
    d.say("1, 2")  # English, French
    assert "The text in English" in d.text()
    d.say("Join our webinars this week.")
    assert "The text in French" in d.text()
    d.say("Rejoignez nos webinaires cette semaine.")
    assert "Who should receive it?" in d.text()
    d.say(segment)
    for reply in answers:
        d.say(reply)
    assert "Please check" in d.text() or "✅" in " ".join(d.labels())
    d.say(tap="✅ Submit")
