"""`citybot outbox held|requeue|cancel`: staff act on messages held as needs_template.

The CLI runs on the test database file; held messages come from the storage functions, and
once end to end from the real WhatsApp sender against the fake Twilio API on loopback.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import Engine

from bot.cli import run
from bot.clock import FixedClock
from handlers.places import Gazetteer
from storage import audit, contacts, outbox
from storage.db import session_scope
from storage.models import OutboxMessage
from tests.fakes.twilio_api import FakeTwilioAPI, WhatsAppBot

HX_REMINDER_FR = "HX" + "4" * 32
TEMPLATES: dict[str, Any] = {
    "reminder": {"fr": {"content_sid": HX_REMINDER_FR, "variables": ["text"]}},
}


@pytest.fixture
def cli(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the CLI at the test database and a templates file with reminder/fr only."""
    templates = tmp_path / "templates.yaml"
    templates.write_text(yaml.safe_dump(TEMPLATES), encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", str(engine.url))
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    monkeypatch.setenv("COLUMNS", "120")  # rich's table width, whatever the terminal
    monkeypatch.setenv("WHATSAPP_TEMPLATES_FILE", str(templates))
    monkeypatch.chdir(tmp_path)
    return templates


def message(
    engine: Engine,
    clock: FixedClock,
    n: int,
    *,
    kind: str = "reminder",
    language: str = "fr",
    channel: str = "whatsapp",
    status: str = "needs_template",
) -> int:
    """Queue one message and leave it in `status` (held by default); return its id."""
    urn = f"{channel}:+2327700{n:04d}" if channel == "whatsapp" else f"{channel}:{n}"
    with session_scope(engine) as session:
        message_id = outbox.enqueue(
            session=session,
            idempotency_key=f"cli-test:{n}",
            urn=urn,
            channel=channel,
            body={"text": f"News {n}"},
            now=clock.now(),
            kind=kind,
            language=language,
        )
        assert message_id is not None
        outbox.claim_due(session=session, channel=channel, now=clock.now(), limit=100)
        if status != "sending":
            outbox.mark_failed(
                session=session,
                message_id=message_id,
                now=clock.now(),
                code="63016-local",
                reason=f"no approved template for {kind}/{language}",
                status=status,
            )
    return message_id


def rows(engine: Engine) -> dict[int, OutboxMessage]:
    """Every outbox row by id, read fresh."""
    with session_scope(engine) as session:
        found = {m: outbox.get_message(session=session, message_id=m) for m in range(1, 50)}
        for row in found.values():
            if row is not None:
                session.expunge(row)
    return {m: row for m, row in found.items() if row is not None}


def audited(engine: Engine, action: str) -> list[dict[str, Any]]:
    """The details of the audit entries of one action."""
    with session_scope(engine) as session:
        return [dict(e.details) for e in audit.entries(session=session, action=action)]


@pytest.fixture
def held(engine: Engine, clock: FixedClock) -> dict[str, list[int]]:
    """Held reminders in fr (3) and es (1), a held broadcast in en, and rows left alone."""
    groups = {
        "reminder_fr": [message(engine, clock, n) for n in range(3)],
        "reminder_es": [message(engine, clock, 10, language="es")],
        "broadcast_en": [message(engine, clock, 20, kind="broadcast", language="en")],
        "failed": [message(engine, clock, 30, status="failed")],
        "sending": [message(engine, clock, 31, status="sending")],
        "erased": [message(engine, clock, 32)],
    }
    with session_scope(engine) as session:  # a held message of a contact who was forgotten
        row = outbox.get_message(session=session, message_id=groups["erased"][0])
        assert row is not None
        row.urn, row.body = "erased", {}
        session.add(row)
    return groups


def test_held_lists_counts_by_kind_language_channel_and_template_now(
    cli: Path, held: dict[str, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Largest group first; whether a template exists now; erased and other statuses left out."""
    assert run(["outbox", "held"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    table = [cells for cells in lines if cells and cells[0] in ("│", "┃") and len(cells) > 9]
    assert [[c for c in cells if c not in ("│", "┃")] for cells in table[1:]] == [
        ["reminder", "fr", "whatsapp", "3", "yes"],
        ["broadcast", "en", "whatsapp", "1", "no"],
        ["reminder", "es", "whatsapp", "1", "no"],
    ]
    assert ["5", "held", "in", "all"] in lines
    assert run(["outbox", "held", "--kind", "reminder", "--language", "es"]) == 0
    assert "1 held in all" in capsys.readouterr().out


def test_held_says_so_when_nothing_is_held(
    cli: Path, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty outbox: one line, exit code 0."""
    assert run(["outbox", "held"]) == 0
    assert capsys.readouterr().out.strip() == "no held messages"


def test_requeue_puts_the_picked_messages_back_due_now_and_is_audited(
    cli: Path, engine: Engine, held: dict[str, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Only reminder/fr: pending, due, attempts and error cleared; the others stay held."""
    assert run(["outbox", "requeue", "--kind", "reminder", "--language", "fr"]) == 0
    assert "3 held messages queued again" in capsys.readouterr().out
    found = rows(engine)
    for message_id in held["reminder_fr"]:
        row = found[message_id]
        assert (row.status, row.attempts, row.error_code, row.error_reason) == (
            "pending",
            0,
            None,
            None,
        )
    others = held["reminder_es"] + held["broadcast_en"] + held["erased"]
    assert {found[m].status for m in others} == {"needs_template"}
    assert found[held["failed"][0]].status == "failed"
    assert found[held["sending"][0]].status == "sending"
    [entry] = audited(engine, "cli:outbox_requeue")
    assert (entry["count"], entry["kind"], entry["language"], entry["via"]) == (
        3,
        "reminder",
        "fr",
        "cli",
    )
    assert run(["outbox", "requeue", "--kind", "reminder", "--language", "fr"]) == 0
    assert "0 held messages queued again" in capsys.readouterr().out


def test_cancel_ends_them_with_the_reason_and_is_audited(
    cli: Path, engine: Engine, held: dict[str, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    """`cancel --channel whatsapp --reason …` cancels every held WhatsApp message (not erased)."""
    reason = "the campaign is over"
    assert run(["outbox", "cancel", "--channel", "whatsapp", "--reason", reason]) == 0
    assert "5 held messages cancelled" in capsys.readouterr().out
    found = rows(engine)
    picked = held["reminder_fr"] + held["reminder_es"] + held["broadcast_en"]
    assert {(found[m].status, found[m].error_reason) for m in picked} == {("cancelled", reason)}
    assert found[held["erased"][0]].status == "needs_template"
    [entry] = audited(engine, "cli:outbox_cancel")
    assert (entry["count"], entry["channel"]) == (5, "whatsapp")
    assert "kind" not in entry
    assert run(["outbox", "held"]) == 0
    assert capsys.readouterr().out.strip() == "no held messages"


def test_a_requeued_message_goes_out_with_the_template_added_since(
    cli: Path,
    engine: Engine,
    clock: FixedClock,
    places: Gazetteer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Held by the real sender (no template), requeued by staff once the template exists: the
    restarted bot sends it as that template through twilio's client to the fake."""
    address = "+23277009999"
    with session_scope(engine) as session:
        contact, _ = contacts.get_or_create_contact(
            session=session, urn=f"whatsapp:{address}", now=clock.now()
        )
        contacts.update_contact(
            session=session,
            contact=contact,
            language="fr",
            last_inbound_at=clock.now() - timedelta(days=3),
        )
    with FakeTwilioAPI() as fake:
        with WhatsAppBot(fake, engine=engine, clock=clock, folder=tmp_path, places=places) as bot:
            message_id = bot.enqueue(address, "Le webinaire commence demain", language="fr")
            row = bot.wait_row(message_id, lambda r: r.status == "needs_template")
        assert fake.requests == 0
        assert run(["outbox", "requeue", "--channel", "whatsapp"]) == 0
        assert "1 held message queued again" in capsys.readouterr().out
        # the CLI queues them for the real now: the bot's clock moves past it, whatever today is
        clock.advance(datetime.now(UTC) - clock.now() + timedelta(minutes=1))
        with WhatsAppBot(
            fake, engine=engine, clock=clock, folder=tmp_path, places=places, templates=TEMPLATES
        ) as bot:
            bot.wake()
            row = bot.wait_row(message_id, lambda r: r.status == "queued")
        [sent] = fake.sent()
        assert sent.content_sid == HX_REMINDER_FR and sent.address == address
        assert sent.content_variables == {"1": "Le webinaire commence demain"}
        assert row.provider_id == sent.sid and row.attempts == 1
