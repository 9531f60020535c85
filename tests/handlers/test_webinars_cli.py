"""`citybot webinar …`: create, list, edit (registrants told), stats, sweep, cancel."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot import cli_webinars
from bot.clock import FixedClock
from storage import webinars as db
from storage.db import session_scope
from tests.scheduler.webinar_cases import make_contact, register, sent


def run(engine: Engine, clock: FixedClock, *argv: str) -> tuple[int, str]:
    """Parse `webinar …` as citybot does and run it; return the code and the output."""
    parser = argparse.ArgumentParser(prog="citybot")
    cli_webinars.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["webinar", *argv])
    out = io.StringIO()
    code = cli_webinars.run_action(args, engine=engine, clock=clock, out=out)
    return code, out.getvalue()


def test_the_webinar_lifecycle_from_the_command_line(
    engine: Engine, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """Create, list, move (registrants told), figures, sweep, cancel; refused input exits 2."""
    code, out = run(
        engine,
        clock,
        "create",
        "--title",
        "en=Cross-border e-commerce",
        "--title",
        "zh=跨境电子商务",
        "--description",
        "en=Digital innovation for sustainable development.",
        "--start",
        "2026-11-20 15:00",
        "--tz",
        "Asia/Shanghai",
        "--duration",
        "1.5h",
        "--link",
        "https://meet.example/ec",
        "--interpretation",
        "en,zh,es",
        "--focus",
        "ecommerce_smart_city",
        "--capacity",
        "300",
        "--deadline",
        "2026-11-19 18:00",
        "--reminders",
        "2d,1h",
        "--survey-delay",
        "2h",
        "--quiet-hours",
        "21:00-08:00",
    )
    assert (code, out) == (0, "webinar 1 created; registration link: /start w1\n")
    with session_scope(engine) as session:
        webinar = db.get_webinar(session=session, webinar_id=1)
        assert webinar is not None
        assert webinar.starts_at == datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
        assert webinar.title["zh"] == "跨境电子商务" and webinar.duration_minutes == 90
        assert webinar.reminder_offsets == [2880, 60] and webinar.survey_delay_minutes == 120
        assert (webinar.quiet_start_minute, webinar.quiet_end_minute) == (1260, 480)
        assert webinar.registration_deadline == datetime(2026, 11, 19, 10, 0, tzinfo=UTC)
    person = make_contact(engine, "console:cli", clock.now(), tz="Africa/Freetown")
    assert register(engine, 1, person, clock.now()) == "registered"
    code, out = run(engine, clock, "list")
    assert code == 0 and "0/300" not in out and "1/300 registered  Cross-border e-commerce" in out
    code, out = run(
        engine, clock, "edit", "1", "--start", "2026-11-21 15:00", "--capacity", "none"
    )
    assert code == 0
    assert out == "webinar 1 updated (starts_at, capacity); 1 registrants will be told\n"
    code, out = run(engine, clock, "sweep")
    assert (code, out) == (0, "queued 1, skipped 0, cancelled 0, deferred 0\n")
    assert [m.kind for m in sent(engine)] == ["webinar_update"]
    code, out = run(engine, clock, "stats", "1", "--json")
    figures = json.loads(out)
    assert figures["registered"] == 1 and figures["by_country"] == {"unknown": 1}
    assert figures["by_kind"]["reminder"] == {"scheduled": 2}
    assert figures["delivery"] == {"changed": {"pending": 1}}
    code, out = run(engine, clock, "stats")
    assert code == 0 and "per_webinar:" in out and "registered: 1" in out
    code, _ = run(engine, clock, "edit", "1", "--link", "not a link")
    assert code == 2 and "not a link" in capsys.readouterr().err
    code, _ = run(engine, clock, "create", "--title", "en=x", "--start", "2020-01-01 10:00",
                  "--tz", "UTC")  # fmt: skip
    assert code == 2 and "future" in capsys.readouterr().err
    code, out = run(engine, clock, "cancel", "1", "--yes")
    assert out == "webinar 1 cancelled; 1 registrants will be told\n"
    clock.advance(timedelta(minutes=1))
    run(engine, clock, "sweep")
    assert [m.kind for m in sent(engine)] == ["webinar_update", "webinar_update"]
    assert "has been cancelled" in sent(engine)[-1].body["text"]
    code, out = run(engine, clock, "list", "--all")
    assert "cancelled" in out


def test_citybot_runs_the_webinar_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`citybot webinar list` on the configured database (migrated on the way)."""
    from bot.cli import run as citybot

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.delenv("STAFF_URNS", raising=False)
    assert citybot(["webinar", "list"]) == 0
    assert capsys.readouterr().out == "no webinars\n"
