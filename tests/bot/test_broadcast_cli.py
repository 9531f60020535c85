"""The staff CLI: broadcasts from YAML and Markdown files, preview, send through the console
channel, stats, cancel, retry; reports with charts, exports, staff roles; all audited."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.cli import run
from bot.cli_staff_broadcast_files import read_file
from bot.clock import FixedClock
from storage import audit, contacts, outbox
from storage.db import make_engine, session_scope
from storage.models import OutboxMessage
from storage.staff_models import Broadcast
from tests.handlers.staff_cases import person

MARKDOWN = """---
title: Webinar week
segment:
  country: [SL, Kenya]
---
# en
Join our **webinars** this week.

# Français
Rejoignez nos webinaires cette semaine.
"""
YAML = """title: Needs survey reminder
segment:
  focus: [education]
texts:
  en: Please answer the needs survey.
  es: Por favor responda la encuesta.
"""


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """A database file the CLI is pointed at, with officials in it."""
    path = tmp_path / "cli.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    monkeypatch.setenv("STAFF_URNS", "telegram:1=admin")
    monkeypatch.chdir(tmp_path)
    engine = make_engine(f"sqlite:///{path}")
    from storage import migrate

    migrate.upgrade(engine=engine)
    clock = FixedClock(datetime.now(UTC))
    person(engine, clock, "console:sl", country="SL", priorities=["education"])
    person(engine, clock, "console:ke", country="KE", language="fr", priorities=["agriculture"])
    person(engine, clock, "console:fr", country="FR", language="es", priorities=["education"])
    person(engine, clock, "telegram:55", country="SL", language="fr", priorities=["education"])
    return engine


def test_broadcast_files_yaml_and_markdown(tmp_path: Path) -> None:
    """One text per language: a YAML mapping, or Markdown sections headed by the language."""
    (tmp_path / "a.md").write_text(MARKDOWN)
    (tmp_path / "b.yaml").write_text(YAML)
    assert read_file(tmp_path / "a.md") == {
        "title": "Webinar week",
        "segment": {"country": ["SL", "Kenya"]},
        "texts": {
            "en": "Join our **webinars** this week.",
            "fr": "Rejoignez nos webinaires cette semaine.",
        },
    }
    assert read_file(tmp_path / "b.yaml")["texts"]["es"] == "Por favor responda la encuesta."


def test_new_preview_send_stats_through_the_console(
    db: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Markdown broadcast to Sierra Leone and Kenya: console recipients get it from `send
    --deliver`, the Telegram one waits for `serve`; stats say so."""
    (tmp_path / "a.md").write_text(MARKDOWN)
    assert run(["broadcast", "new", str(tmp_path / "a.md"), "--draft"]) == 0
    out = capsys.readouterr().out
    assert "Recipients: 3 (of 3 matching contacts)" in out
    assert "By channel: Console 2, Telegram 1" in out and "draft #1 saved" in out
    assert run(["broadcast", "preview", "1"]) == 0
    assert "console" in capsys.readouterr().out
    record = tmp_path / "sent.tsv"
    assert run(["broadcast", "send", "1", "--deliver", "--record", str(record)]) == 0
    out = capsys.readouterr().out
    assert "[console:sl] Join our **webinars** this week." in out
    assert "[console:ke] Rejoignez nos webinaires cette semaine." in out
    assert sorted(line.split("\t")[0] for line in record.read_text().splitlines()) == [
        "console:ke",
        "console:sl",
    ]
    assert run(["broadcast", "stats", "1"]) == 0
    out = capsys.readouterr().out
    assert "Status: sending" in out and "queued 1" in out and "delivered 2" in out
    with session_scope(db) as session:
        (telegram,) = session.exec(
            select(OutboxMessage).where(OutboxMessage.channel == "telegram")
        ).all()
        outbox.mark_failed(
            session=session,
            message_id=telegram.id or 0,
            now=telegram.created_at,
            code="403",
            reason="Forbidden: bot was blocked by the user",
        )
    assert run(["broadcast", "retry", "1"]) == 0
    assert "1 failed messages are queued again" in capsys.readouterr().out
    assert run(["broadcast", "cancel", "1"]) == 0
    assert "1 messages not yet sent were withdrawn" in capsys.readouterr().out
    assert run(["broadcast", "list"]) == 0
    assert "cancelled" in capsys.readouterr().out
    with session_scope(db) as session:
        trail = [e.action for e in audit.entries(session=session)]
    for action in (
        "broadcast_created",
        "cli:broadcast_new",
        "broadcast_scheduled",
        "cli:broadcast_send",
        "broadcast_retry",
        "broadcast_cancelled",
    ):
        assert action in trail, action


def test_new_with_filters_and_yes_schedules_and_refuses_nonsense(
    db: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--where adds filters (ANDed); --yes confirms; an unknown filter is refused."""
    (tmp_path / "b.yaml").write_text(YAML)
    code = run(
        ["broadcast", "new", str(tmp_path / "b.yaml"), "--where", "language=es,en", "--yes"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Recipients: 2 (of 2 matching contacts)" in out  # education AND (es or en)
    assert "scheduled now" in out
    with session_scope(db) as session:
        broadcast = session.get(Broadcast, 1)
        assert broadcast is not None and broadcast.status == "scheduled"
        assert broadcast.segment == {"focus": ["education"], "language": ["en", "es"]}
    assert run(["broadcast", "new", str(tmp_path / "b.yaml"), "--where", "planet=mars"]) == 2
    assert "not understood: planet=mars" in capsys.readouterr().out


def test_report_export_and_staff_roles(
    db: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`citybot report` prints and draws; `export` writes the file; `staff` changes roles."""
    assert run(["report", "--section", "surveys", "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert "Development needs survey: 4 respondents" in out
    charts = sorted((tmp_path / "rep").glob("*.png"))
    assert len(charts) == 2  # priorities, and by region (nobody chose a support type)
    assert run(["export", "responses", "--format", "csv", "--lang", "es", "--out", "r.csv"]) == 0
    assert "4 rows written to r.csv" in capsys.readouterr().out
    with open(tmp_path / "r.csv", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle))
    assert "País" in header
    assert run(["export", "nothing"]) == 2
    assert run(["staff", "promote", "console:ke", "staff"]) == 0
    assert run(["staff", "list"]) == 0
    out = capsys.readouterr().out
    assert "console:ke" in out and "telegram:1" in out
    assert run(["staff", "demote", "telegram:1"]) == 1  # the last admin stays
    assert run(["staff", "demote", "console:ke"]) == 0
    with session_scope(db) as session:
        ke = contacts.get_contact_by_urn(session=session, urn="console:ke")
        assert ke is not None and ke.staff_role is None
        actions = [e.action for e in audit.entries(session=session)]
    assert actions.count("staff_promote") == 1 and actions.count("staff_demote") == 1
    assert "report" in actions and "export" in actions
