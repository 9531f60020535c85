"""Every staff command, on every channel, is refused to a contact without the role: they get
the ordinary help, nothing happens, and the attempt is in the audit log."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from bot.clock import FixedClock
from handlers import features
from handlers.config import BotConfig
from handlers.i18n import t
from handlers.inbound import process_pending, receive
from handlers.messages import Inbound, Outgoing
from handlers.places import Gazetteer
from storage import audit, contacts
from storage.db import session_scope
from storage.models import AuditEntry, OutboxMessage, SurveyRun
from storage.staff_models import Broadcast

URNS = ("console:outsider", "telegram:9001", "whatsapp:+15550001")
ADMIN_ONLY = {"promote", "demote", "audit"}
_ids = itertools.count(1)


def turn(
    engine: Engine, config: BotConfig, clock: FixedClock, places: Gazetteer, urn: str, text: str
) -> list[Outgoing]:
    """One message through inbox → router → outbox, on any channel; return the replies queued."""
    clock.advance(timedelta(seconds=1))
    inbound = Inbound(urn=urn, text=text, received_at=clock.now())
    with session_scope(engine) as session:
        before = session.exec(select(func.max(OutboxMessage.id))).one() or 0
        receive(session=session, inbound=inbound, external_id=f"auth{next(_ids)}")
        process_pending(session=session, urn=urn, config=config, now=clock.now(), places=places)
        rows = session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.urn == urn, col(OutboxMessage.id) > before)
            .order_by(col(OutboxMessage.id))
        )
        return [Outgoing.from_body(r.body, kind=r.kind) for r in rows]


def known(engine: Engine, clock: FixedClock, urn: str, role: str | None) -> None:
    """A contact who chose a language (so the welcome does not come first), with a role."""
    with session_scope(engine) as session:
        contact, _ = contacts.get_or_create_contact(session=session, urn=urn, now=clock.now())
        contacts.update_contact(
            session=session,
            contact=contact,
            language="en",
            language_source="explicit",
            staff_role=role,
        )


def test_the_staff_commands_are_registered() -> None:
    """The registry holds this feature's commands with their roles."""
    features.load()
    mine = {
        "staff",
        "team",
        "promote",
        "demote",
        "audit",
        "broadcast",
        "broadcasts",
        "bcpreview",
        "bcsend",
        "bcstats",
        "bccancel",
        "bcretry",
        "report",
        "export",
    }
    assert mine <= set(features.STAFF)
    assert {n for n in mine if features.STAFF[n].role == "admin"} == ADMIN_ONLY


@pytest.mark.parametrize("urn", URNS)
def test_every_staff_command_is_refused_to_non_staff(
    engine: Engine, config: BotConfig, clock: FixedClock, places: Gazetteer, urn: str
) -> None:
    """Each registered staff command answers a non-staff contact with the help, audited."""
    features.load()
    known(engine, clock, urn, None)
    names = sorted(features.STAFF)
    for name in names:
        replies = turn(engine, config, clock, places, urn, f"/{name} 1 now")
        assert len(replies) == 1, name
        assert t("help_text", "en") in replies[0].text, name
        assert not replies[0].attachments
    with session_scope(engine) as session:
        denied = list(session.exec(select(AuditEntry).where(AuditEntry.action == "staff_denied")))
        assert [e.subject for e in denied] == names
        contact = contacts.get_contact_by_urn(session=session, urn=urn)
        assert contact is not None and contact.staff_role is None
        assert {e.actor_contact_id for e in denied} == {contact.id}
        assert session.exec(select(func.count()).select_from(SurveyRun)).one() == 0
        assert session.exec(select(func.count()).select_from(Broadcast)).one() == 0
        assert not [e for e in audit.entries(session=session) if e.action.startswith("staff:")]


@pytest.mark.parametrize("urn", URNS)
def test_staff_may_not_run_admin_commands(
    engine: Engine, config: BotConfig, clock: FixedClock, places: Gazetteer, urn: str
) -> None:
    """A staff member gets the help for admin-only commands; their staff commands work."""
    features.load()
    known(engine, clock, urn, "staff")
    for name in sorted(ADMIN_ONLY):
        (reply,) = turn(engine, config, clock, places, urn, f"/{name} telegram:5 admin")
        assert t("help_text", "en") in reply.text, name
    (reply,) = turn(engine, config, clock, places, urn, "/broadcasts")
    assert "No broadcasts yet" in reply.text
    with session_scope(engine) as session:
        trail = [(e.action, e.subject) for e in audit.entries(session=session)]
    assert trail == [("staff_denied", n) for n in sorted(ADMIN_ONLY)] + [
        ("staff:broadcasts", "broadcasts")
    ]
    with session_scope(engine) as session:
        assert contacts.get_contact_by_urn(session=session, urn="telegram:5") is None


@pytest.mark.parametrize("urn", URNS)
def test_admins_may_run_every_staff_command(
    engine: Engine,
    config: BotConfig,
    clock: FixedClock,
    places: Gazetteer,
    urn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An admin gets an answer other than the help to each of this feature's commands."""
    monkeypatch.setenv("CITYBOT_FILES_DIR", str(tmp_path))
    features.load()
    known(engine, clock, urn, "admin")
    for name in ("staff", "team", "audit", "broadcasts", "bcstats", "report", "export"):
        replies = turn(engine, config, clock, places, urn, f"/{name}")
        assert replies and t("help_text", "en") not in replies[0].text, name
    with session_scope(engine) as session:
        actions = [e.action for e in audit.entries(session=session)]
    assert "staff_denied" not in actions and "staff:report" in actions
