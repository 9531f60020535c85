"""The console simulator as a user runs it: `python -m bot chat` with a transcript on stdin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def chat(db: Path, lines: list[str], urn: str = "console:amina") -> str:
    """Run one simulator process on `db` with these lines on stdin; return what it printed."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "CITYBOT_BOOTSTRAPPED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--as", urn],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_piped_transcript_prints_each_line_and_its_replies(tmp_path: Path) -> None:
    """Lines are echoed with `> ` and every one gets a reply; comments and blanks are ignored."""
    out = chat(
        tmp_path / "bot.db", ["# a comment", "Hello, good morning to the team", "", "maybe"]
    )
    assert "> Hello, good morning to the team" in out
    assert "Do you agree?" in out
    assert "> maybe" in out and "Please answer yes or no." in out
    assert "  1. Yes\n  2. No" in out


def test_a_half_done_survey_resumes_in_a_new_process(tmp_path: Path) -> None:
    """State lives in the database: a second process continues where the first stopped."""
    db = tmp_path / "bot.db"
    first = chat(db, ["Hello, good morning to the team", "no", "/ppe", "gloves, masks"])
    assert "How many Gloves" in first  # in the order they were typed
    second = chat(db, ["help"])
    assert "Answer the question below" in second
    assert "How many Gloves" in second
    third = chat(db, ["20k", "300", "1", "skip", "2", "1"])
    assert "Your city's needs were saved" in third


def test_people_are_kept_apart(tmp_path: Path) -> None:
    """Two console users on one database have their own conversations."""
    db = tmp_path / "bot.db"
    chat(db, ["Bonjour, je voudrais m'inscrire s'il vous plaît"], urn="console:fr")
    out = chat(db, ["Hello, I would like to register please"], urn="console:en")
    assert "Do you agree?" in out


def test_db_upgrade_reports_the_revision(tmp_path: Path) -> None:
    """`citybot db upgrade` brings a new database to the code's head revision."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "CITYBOT_BOOTSTRAPPED": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=True,
    ).stdout
    revision = out.split("revision ", 1)[1].split(" ", 1)[0]
    assert revision != "None" and f"code head {revision})" in out
