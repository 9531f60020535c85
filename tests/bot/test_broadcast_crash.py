"""A 5,000-recipient broadcast killed with SIGKILL, twice, and restarted.

`citybot broadcast send --deliver` runs as a subprocess delivering through the console channel
(paced, each send appended to a record file the moment it happens). It is killed once while
queueing and once while sending, then run to the end. Every recipient must end with exactly
one message, except at most those in flight (leased) at the second kill; the test counts them
and reports the figures.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from handlers import broadcasts_compose
from storage import migrate
from storage.db import make_engine, session_scope
from storage.models import Contact, ContactURN, OutboxMessage
from storage.staff_models import Broadcast, BroadcastRecipient

ROOT = Path(__file__).resolve().parents[2]
RECIPIENTS = 5000
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def seed(engine: Engine) -> None:
    """5,000 console contacts and a draft broadcast to all of them in two languages."""
    with session_scope(engine) as session:
        session.execute(
            insert(Contact.__table__),  # type: ignore[attr-defined]
            [
                {
                    "language": "fr" if i % 2 else "en",
                    "opted_out": False,
                    "unreachable": False,
                    "prompt_data": {},
                    "created_at": NOW,
                }
                for i in range(RECIPIENTS)
            ],
        )
        ids = list(session.exec(select(Contact.id).order_by(col(Contact.id))))
        session.execute(
            insert(ContactURN.__table__),  # type: ignore[attr-defined]
            [{"urn": f"console:c{i}", "channel": "console", "contact_id": i} for i in ids],
        )
        broadcasts_compose.create_draft(
            session=session,
            title="Crash test",
            texts={"en": "Hello", "fr": "Bonjour"},
            segment={},
            default_language="en",
            now=NOW,
            created_by=None,
            via="cli",
        )


def start(db: Path, record: Path, *extra: str) -> subprocess.Popen[str]:
    """Start `citybot broadcast send 1 --deliver` on the database."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db}",
        "CITYBOT_BOOTSTRAPPED": "1",
        "LOG_LEVEL": "WARNING",
        "STAFF_URNS": "",
    }
    command = [sys.executable, "-m", "bot", "broadcast", "send", "1", "--deliver", "--quiet"]
    command += ["--rate", "2000", "--record", str(record), *extra]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def wait_for(condition: Any, what: str, timeout: float = 60.0) -> None:
    """Poll until a condition holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def queued(engine: Engine) -> int:
    """Recipients with their outbox row."""
    with session_scope(engine) as session:
        return int(
            session.exec(
                select(func.count()).where(col(BroadcastRecipient.outbox_id).is_not(None))
            ).one()
        )


def lines(record: Path) -> int:
    """Sends recorded so far."""
    return record.read_text().count("\n") if record.exists() else 0


def kill(process: subprocess.Popen[str]) -> None:
    """SIGKILL the process and reap it."""
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL


def test_a_killed_broadcast_resumes_without_losing_or_repeating(
    tmp_path: Path, record_property: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed while queueing and while sending, then finished: one message per recipient
    except at most those in flight at the kill."""
    db, record = tmp_path / "bot.db", tmp_path / "sent.tsv"
    engine = make_engine(f"sqlite:///{db}")
    migrate.upgrade(engine=engine)
    seed(engine)

    first = start(db, record, "--batch", "1")  # one per transaction: slow enough to be caught
    wait_for(lambda: queued(engine) >= 1500, "queueing to be under way")
    kill(first)
    queued_at_first_kill = queued(engine)
    assert 0 < queued_at_first_kill < RECIPIENTS and lines(record) == 0

    second = start(db, record)
    wait_for(lambda: lines(record) >= RECIPIENTS // 2, "half the messages to be sent")
    kill(second)
    sent_before = lines(record)
    with session_scope(engine) as session:
        in_flight = int(
            session.exec(
                select(func.count()).where(
                    OutboxMessage.kind == "broadcast", OutboxMessage.status == "sending"
                )
            ).one()
        )
    assert sent_before < RECIPIENTS

    third = start(db, record)
    output, _ = third.communicate(timeout=90)
    assert third.returncode == 0, output

    counts = Counter(line.split("\t")[0] for line in record.read_text().splitlines())
    duplicates = {urn: n for urn, n in counts.items() if n > 1}
    with session_scope(engine) as session:
        urns = set(session.exec(select(ContactURN.urn)))
        statuses = Counter(
            session.exec(select(OutboxMessage.status).where(OutboxMessage.kind == "broadcast"))
        )
        keys = list(session.exec(select(OutboxMessage.idempotency_key)))
        broadcast = session.get(Broadcast, 1)
        assert broadcast is not None
        status = broadcast.status
    report = (
        f"crash test: {RECIPIENTS} recipients; first kill while queueing after "
        f"{queued_at_first_kill} queued; second kill after {sent_before} sent with {in_flight} "
        f"in flight; re-sent after restart: {sum(n - 1 for n in duplicates.values())}; "
        f"never sent: {len(urns - set(counts))}"
    )
    with capsys.disabled():
        print("\n" + report)
    record_property("crash_in_flight", in_flight)
    record_property("crash_duplicates", sum(n - 1 for n in duplicates.values()))
    assert set(counts) == urns  # nobody lost
    assert all(n == 2 for n in duplicates.values())  # a repeat is a single re-send …
    assert len(duplicates) <= in_flight  # … of a message in flight at the kill
    assert len(keys) == len(set(keys)) and statuses == {"delivered": RECIPIENTS}
    assert status == "done"
    assert "in flight when the last run stopped" in output or in_flight == 0
