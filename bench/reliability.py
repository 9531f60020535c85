"""The reliability suite at scale, its figures, and docs/RELIABILITY.md regenerated from them.

    .venv/bin/python bench/reliability.py [--scale N] [--expire-leases] [--no-doc]

Runs tests/reliability (SIGKILL of `citybot serve` under inbound load and during a broadcast,
a PostgreSQL outage under load, platform faults) with CITYBOT_RELIABILITY_SCALE=N, and the
webhook property tests (tests/bot/test_webhook_properties.py) when they exist; each scenario
appends a JSON line of figures to the file named by CITYBOT_RELIABILITY_OUT. The runner
prints a table of them and rewrites docs/RELIABILITY.md. PostgreSQL is used when
TEST_DATABASE_URL is set or a server answers on 127.0.0.1:5432 (as .ci/run does). By default
the outbox leases of a killed process are waited out for real (2 minutes, so the run takes
about ten minutes); --expire-leases expires them while serve is down, as CI does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "RELIABILITY.md"
PROPERTIES = ROOT / "tests" / "bot" / "test_webhook_properties.py"
COMMAND = ".venv/bin/python bench/reliability.py"
TESTS = {
    "kill_inbound": "test_sigkill_under_inbound_load_loses_nothing_acknowledged",
    "kill_broadcast": "test_sigkill_during_a_broadcast_loses_none",
    "postgres_outage": "test_a_database_restart_under_load_is_survived_without_a_restart",
    "postgres_record_outage": "test_a_send_finishing_during_an_outage_is_recorded",
    "faults_telegram": "test_telegram_faults_back_off_recover_and_end",
    "faults_whatsapp": "test_whatsapp_faults_back_off_recover_and_end",
    "bad_input": "survives_bad_input",
}
SCENARIOS = """\
- **SIGKILL under inbound load and during a broadcast** (`tests/reliability/test_kill.py`).
  `python -m bot serve` runs as a subprocess (SQLite file; Telegram in webhook mode with its
  secret, WhatsApp through Twilio with signed webhooks, both against the fake platforms on
  loopback). A broadcast to every Telegram contact is confirmed; serve's scheduler queues it
  and its dispatcher sends it. Meanwhile people on both channels type /start, yes and their
  name from eight concurrent clients. With the broadcast 40 % out and the load under way,
  serve is SIGKILLed and restarted on the same port; the clients send again every request
  that got no 2xx (same update_id, same MessageSid), as the platforms do. Counted: messages
  acknowledged with a 2xx but never processed, replies (their outbox rows, keyed by inbox
  event) and broadcast messages that never reached the fake, and those that reached it twice,
  against the rows leased (`sending`) at the kill.
- **PostgreSQL restarted under load** (`tests/reliability/test_postgres_outage.py`). A fresh
  database, upgraded with `python -m bot db upgrade`; serve reaches it through a loopback TCP
  proxy (`tests/reliability/pg_proxy.py`) which, under load, resets every connection,
  terminates the database's server sessions and refuses connections for a few seconds, then
  accepts them again. Requests answered meanwhile must not be 2xx (the platforms retry them);
  nothing acknowledged may be lost; the same process must recover, without a restart. A
  second, smaller check takes the database away while one send is at the platform and looks
  at the row once the database is back.
- **Platform faults** (`tests/reliability/test_platform_faults.py`). The runtime `serve`
  builds, in process, sends through python-telegram-bot and twilio's client to the fakes
  (`tests/reliability/faulty.py` adds slow and garbled answers): a 429 storm with retry_after,
  500/502/503 (JSON and a proxy's HTML page), malformed JSON with a 200, answers slower than
  the send timeout, 403 blocks, 400s, Twilio's 20429 with Retry-After, 21610 (opted out),
  63003/21211 (unreachable). The dispatcher runs on a clock moved to each next attempt, so
  every backoff is read from the rows: the platform's delay for 429s, exponential with jitter
  otherwise; transient faults end delivered, permanent ones `failed` with the reason after at
  most SEND_MAX_ATTEMPTS attempts; the loop ends (nothing retried forever).
- **Bad input** (`tests/bot/test_webhook_properties.py`, when present). Hypothesis posts
  random and hostile bodies to the three webhooks; never a 5xx, nothing stored for a refusal.
"""
LIMITS = """\
- A message leased by a process that dies stays leased for the outbox lease (`serve` uses
  max(60 s, 3 × SEND_TIMEOUT_SECONDS); `bot/runtime.py`) before another process sends it; the
  same person's later messages wait behind it (their order is kept). The figures count them
  as *in flight*: each may have reached the platform already, so it may be duplicated, never
  lost. CI expires those leases while serve is down (the state after the lease's downtime);
  this runner waits them out for real unless given --expire-leases.
- When the database fails between a send and its record, the dispatcher keeps trying to
  record the outcome (about a minute, inside the lease: `bot/dispatcher.py`,
  `RECORD_RETRY_PAUSES`), so such a message is not sent again.
- A restart of serve takes the time shown; the gazetteer is built in the background after
  start-up, so webhooks are answered meanwhile (refused only while the process is down, and
  the platforms retry those).
- Telegram has no idempotency key: a send that timed out is retried and may arrive twice.
  WhatsApp sends that time out are not retried (failed, reason `timeout`), so they are never
  duplicated, but one Twilio did accept is marked failed.
"""


def postgres_url() -> str | None:
    """TEST_DATABASE_URL, or the local server .ci/run would use when it answers."""
    if os.environ.get("TEST_DATABASE_URL"):
        return os.environ["TEST_DATABASE_URL"]
    with socket.socket() as sock:
        sock.settimeout(1)
        try:
            sock.connect(("127.0.0.1", 5432))
        except OSError:
            return None
    return "postgresql://postgres@127.0.0.1:5432/test"


def run_pytest(paths: list[str], env: dict[str, str], junit: Path) -> tuple[int, float]:
    """Run pytest on some paths; return its exit code and the seconds it took."""
    began = time.monotonic()
    command = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider"]
    command += ["-rA", f"--junitxml={junit}"]
    code = subprocess.call(command, cwd=ROOT, env=env)
    return code, time.monotonic() - began


def outcomes(junit: Path) -> dict[str, str]:
    """Test name → passed, failed, skipped or xfailed, from a JUnit XML report."""
    if not junit.exists():
        return {}
    found: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        children = {child.tag for child in case}
        skipped = case.find("skipped")
        if "failure" in children or "error" in children:
            found[case.get("name", "")] = "FAILED"
        elif skipped is not None:
            kind = skipped.get("type", "")
            found[case.get("name", "")] = "xfail" if "xfail" in kind else "skipped"
        else:
            found[case.get("name", "")] = "passed"
    return found


def result_of(suite: str, results: dict[str, str]) -> str:
    """The outcome of the test behind a suite."""
    wanted = TESTS.get(suite, "")
    matches = [v for k, v in results.items() if wanted and wanted in k]
    if not matches:
        return "?"
    return "FAILED" if "FAILED" in matches else matches[0]


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines the scenarios wrote."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _kinds(counts: dict[str, int]) -> str:
    """`429×30, 500×10` from a tally."""
    return ", ".join(f"{k}×{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def row(line: dict[str, Any]) -> dict[str, str]:
    """One table row from a scenario's figures."""
    suite = line["suite"]
    dash = "–"
    if suite == "kill_inbound":
        return {
            "scenario": "SIGKILL under inbound load",
            "load": f"{line.get('inbound_per_second')} msg/s in ({line['messages']} messages)",
            "faults": f"1 SIGKILL; restart {line['restart_seconds']} s; "
            f"{line['resent']} unacknowledged attempts re-sent",
            "bad": dash,
            "lost": f"{line['inbound_lost']} in / {line['outbound_lost']} out",
            "dup": str(line["duplicated"]),
            "flight": str(line["in_flight_at_kill"]),
        }
    if suite == "kill_broadcast":
        return {
            "scenario": "SIGKILL during a broadcast",
            "load": f"{line.get('outbound_per_second')} msg/s out "
            f"({line['recipients']} recipients)",
            "faults": f"same SIGKILL at {line['sent_at_kill']} sent",
            "bad": dash,
            "lost": f"– / {line['outbound_lost']} out",
            "dup": str(line["duplicated"]),
            "flight": str(line["in_flight_at_kill"]),
        }
    if suite == "postgres_outage":
        answers = line.get("answers_during_outage", {})
        return {
            "scenario": "PostgreSQL restart under load",
            "load": f"{line.get('inbound_per_second')} msg/s in ({line['messages']} messages)",
            "faults": f"{line['outage_seconds']:g} s outage, {line['connections_reset']} "
            f"connections reset; answered meanwhile: {_kinds(answers)}",
            "bad": dash,
            "lost": f"{line['inbound_lost']} in / {line['outbound_lost']} out",
            "dup": str(line["duplicated"]),
            "flight": str(line["in_flight_at_outage"]),
        }
    if suite == "postgres_record_outage":
        return {
            "scenario": "PostgreSQL away while a send is recorded",
            "load": "1 message",
            "faults": f"outage during the send; the row is `{line['status']}` "
            f"({line['lease_left_seconds']:.0f} s of lease left) once the database is back",
            "bad": dash,
            "lost": "–",
            "dup": f"{line['copies'] - 1} now, {line['copies']} once the lease ends"
            if line["status"] == "sending"
            else str(max(0, line["copies"] - 1)),
            "flight": "1",
        }
    if suite.startswith("faults_"):
        name = "Telegram" if suite.endswith("telegram") else "WhatsApp"
        return {
            "scenario": f"{name} platform faults",
            "load": f"{line['messages']} messages",
            "faults": f"{line['faults_total']} ({_kinds(line['faults_served'])}); "
            f"{line['failed_with_reason']} failed with the reason",
            "bad": dash,
            "lost": f"– / {line['outbound_lost']} out",
            "dup": str(line["duplicated"]),
            "flight": f"{line['faults_served'].get('slow', 0)} timed out",
        }
    if suite == "bad_input":
        return {
            "scenario": f"Bad input {line.get('endpoint', '')}",
            "load": dash,
            "faults": f"{line.get('server_errors', 0)} server errors",
            "bad": f"{line.get('examples', 0)} ({_kinds(line.get('statuses', {}))})",
            "lost": f"{line.get('rows_written_by_rejected', 0)} rows by refusals",
            "dup": dash,
            "flight": dash,
        }
    return {"scenario": suite, "load": dash, "faults": dash, "bad": dash, "lost": dash,
            "dup": dash, "flight": dash}  # fmt: skip


COLUMNS = (
    ("scenario", "Scenario"),
    ("load", "Load held"),
    ("faults", "Faults survived"),
    ("bad", "Bad inputs tried"),
    ("lost", "Lost"),
    ("dup", "Duplicated"),
    ("flight", "In flight at kill/outage"),
    ("result", "Result"),
)


def table(lines: list[dict[str, Any]], results: dict[str, str]) -> str:
    """The Markdown figures table."""
    out = ["| " + " | ".join(title for _, title in COLUMNS) + " |"]
    out.append("|" + "---|" * len(COLUMNS))
    for line in lines:
        cells = row(line) | {"result": result_of(line["suite"], results)}
        out.append("| " + " | ".join(cells[key] for key, _ in COLUMNS) + " |")
    return "\n".join(out)


def totals(lines: list[dict[str, Any]]) -> dict[str, int]:
    """Faults survived, bad inputs tried, messages lost and duplicated, over all scenarios."""
    found = {"faults": 0, "bad_inputs": 0, "lost": 0, "duplicated": 0, "kills": 0}
    for line in lines:
        found["faults"] += int(line.get("faults_total", 0))
        found["bad_inputs"] += int(line.get("examples", 0)) if line["suite"] == "bad_input" else 0
        found["lost"] += int(line.get("inbound_lost", 0)) + int(line.get("outbound_lost", 0))
        found["lost"] += int(line.get("rows_written_by_rejected", 0))
        found["duplicated"] += int(line.get("duplicated", 0))
        found["kills"] += 1 if line["suite"] == "kill_inbound" else 0
        found["faults"] += 1 if line["suite"] in ("kill_inbound", "postgres_outage") else 0
    return found


def raw(line: dict[str, Any]) -> str:
    """A scenario's figures as compact JSON, without the suite name."""
    return json.dumps({k: v for k, v in line.items() if k != "suite"}, sort_keys=True)


def document(lines: list[dict[str, Any]], results: dict[str, str], context: dict[str, Any]) -> str:
    """docs/RELIABILITY.md."""
    summed = totals(lines)
    details = "\n".join(f"- `{line['suite']}`: `{raw(line)}`" for line in lines)
    return f"""# Reliability

Generated by `{COMMAND} --scale {context["scale"]:g}{context["flags"]}` on
{context["date"]} ({context["machine"]}). Do not edit by hand: run the command again
(about ten minutes; `--expire-leases` saves the two-minute lease waits). CI runs the same
scenarios at scale 1 in `tests/reliability/` with the normal test run (the PostgreSQL ones
when TEST_DATABASE_URL is set).

## What is tried

{SCENARIOS}
## Figures

{table(lines, results)}

Over all scenarios: **{summed["faults"]} faults survived** (platform faults served, kills and
outages), **{summed["bad_inputs"]} bad inputs tried**, **{summed["lost"]} messages lost**,
**{summed["duplicated"]} duplicated**. Lost counts inbound messages acknowledged with a 2xx
and never processed, and replies or broadcast messages that never reached the platform;
duplicated counts extra copies the platform received; every duplicate must be a message in
flight (leased, or its answer timed out) when the fault struck.

Run: scale {context["scale"]:g}; leases {context["leases"]}; PostgreSQL {context["postgres"]};
pytest exit codes {context["codes"]} in {context["seconds"]:.0f} s.

## Limits the figures show

{LIMITS}
## Raw figures

{details}
"""


def parse() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=3.0, help="load multiplier (CI: 1)")
    parser.add_argument(
        "--expire-leases", action="store_true", help="expire leases while serve is down"
    )
    parser.add_argument("--no-doc", action="store_true", help="print, do not rewrite the doc")
    parser.add_argument("--no-properties", action="store_true", help="skip the bad-input tests")
    parser.add_argument(
        "--render", type=Path, metavar="DIR", help="only rewrite the doc from an earlier run's DIR"
    )
    return parser.parse_args()


def publish(folder: Path, context: dict[str, Any], *, doc: bool) -> None:
    """Print the table of a run's folder and, with `doc`, rewrite docs/RELIABILITY.md."""
    lines = read_lines(folder / "figures.jsonl")
    results: dict[str, str] = {}
    for junit in sorted(folder.glob("*.xml")):
        results |= outcomes(junit)
    print()
    print(table(lines, results))
    print(totals(lines))
    if doc:
        DOC.write_text(document(lines, results, context), encoding="utf-8")
        print(f"wrote {DOC.relative_to(ROOT)}")


def main() -> int:
    """Run the scenarios, print the table, rewrite the doc."""
    args = parse()
    if args.render is not None:
        context = json.loads((args.render / "context.json").read_text())
        publish(args.render, context, doc=not args.no_doc)
        return 0
    folder = Path(tempfile.mkdtemp(prefix="citybot-reliability-"))
    env = {
        **os.environ,
        "CITYBOT_RELIABILITY_OUT": str(folder / "figures.jsonl"),
        "CITYBOT_RELIABILITY_SCALE": f"{args.scale:g}",
        "CITYBOT_RELIABILITY_WAIT_LEASES": "" if args.expire_leases else "1",
    }
    url = postgres_url()
    if url:
        env["TEST_DATABASE_URL"] = url
    began = time.monotonic()
    load = os.getloadavg()[0]
    codes = [run_pytest(["tests/reliability"], env, folder / "reliability.xml")[0]]
    if PROPERTIES.exists() and not args.no_properties:
        paths = [str(PROPERTIES.relative_to(ROOT))]
        codes.append(run_pytest(paths, env, folder / "properties.xml")[0])
    context = {
        "scale": args.scale,
        "flags": " --expire-leases" if args.expire_leases else "",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} CPUs shared with other work, Python "
        f"{platform.python_version()}, load average {load:.1f} at the start and "
        f"{os.getloadavg()[0]:.1f} at the end",
        "leases": "expired while serve was down" if args.expire_leases else "waited out (2 min)",
        "postgres": "yes" if url else "not available (scenario skipped)",
        "codes": codes,
        "seconds": time.monotonic() - began,
    }
    (folder / "context.json").write_text(json.dumps(context))
    publish(folder, context, doc=not args.no_doc)
    print(f"figures kept in {folder}")
    return 0 if all(c == 0 for c in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
