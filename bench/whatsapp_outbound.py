"""Outbound WhatsApp: a 5,000-message broadcast at the sender's configured 80 messages/s.

This process plays Twilio: the fake Twilio API (tests/fakes/twilio_api.py) on loopback, which
enforces 80 messages/s itself (GCRA, 50 ms of tolerance) and answers 429/20429 beyond it. The
bot runs in a child process as `serve` does: SQLite file, the dispatcher draining the outbox
through the WhatsApp sender and twilio's own async client. Half the contacts wrote within the
last 24 hours (free text), half did not (an approved template with variables).

Printed: the rate the fake received (first to last message), as a share of the limit, the 429s
provoked, and the time until every outbox row was sent.

    .venv/bin/python bench/whatsapp_outbound.py [--messages 5000] [--rate 80]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.twilio_api import FakeTwilioAPI  # noqa: E402

ACCOUNT = "AC" + "0" * 32
TOKEN = "bench-auth-token"
TEMPLATE = "HX" + "7" * 32


def seed(db: str, count: int) -> None:
    """Create the contacts and queue one broadcast message to each."""
    from storage import contacts, migrate, outbox
    from storage.db import make_engine, session_scope

    engine = make_engine(f"sqlite:///{db}")
    migrate.upgrade(engine=engine)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        for i in range(count):
            urn = f"whatsapp:+2327{i:07d}"
            contact, _ = contacts.get_or_create_contact(session=session, urn=urn, now=now)
            wrote = now - (timedelta(hours=2) if i % 2 else timedelta(days=3))
            contacts.update_contact(
                session=session, contact=contact, language="en", last_inbound_at=wrote
            )
            outbox.enqueue(
                session=session,
                idempotency_key=f"broadcast:1:{i}",
                urn=urn,
                channel="whatsapp",
                body={
                    "text": "The Cities Project webinar on waste management starts on 4 Nov.",
                    "choices": [],
                    "multi": False,
                    "attachments": [],
                    "meta": {"title": "Waste management", "starts": "4 Nov, 14:00 GMT"},
                },
                now=now,
                contact_id=contact.id,
                kind="broadcast",
                language="en",
            )
    engine.dispose()


def run_bot(db: str, twilio_url: str, rate: float, count: int) -> None:
    """The bot process: start the runtime and wait until every message left the outbox."""
    import asyncio
    import logging

    from bot.channels.whatsapp import WhatsAppChannel
    from bot.runtime import build_runtime
    from bot.settings import get_settings
    from storage import outbox
    from storage.db import make_engine, session_scope

    logging.basicConfig(level=logging.WARNING)
    templates = Path(f"{db}.templates.yaml")
    templates.write_text(
        f"broadcast:\n  en: {{content_sid: {TEMPLATE}, variables: [title, starts]}}\n",
        encoding="utf-8",
    )
    settings = get_settings(
        database_url=f"sqlite:///{db}",
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
        twilio_whatsapp_from="whatsapp:+14155238886",
        twilio_api_base_url=twilio_url,
        public_base_url="https://bot.example.org",
        whatsapp_templates_file=str(templates),
        whatsapp_rate_per_second=rate,
        whatsapp_burst_seconds=0.05,  # the fake refuses more than 50 ms ahead of the rate
    )
    engine = make_engine(settings.database_url)
    channel = WhatsAppChannel(settings=settings)
    runtime = build_runtime(
        settings, engine=engine, channels={"whatsapp": channel}, with_scheduler=False
    )
    channel.attach(runtime)

    def statuses() -> dict[str, int]:
        """Count the outbox rows per status."""
        with session_scope(engine) as session:
            return outbox.count_by_status(session=session, channel="whatsapp")

    async def main() -> dict[str, object]:
        """Run until the outbox is empty."""
        started = time.perf_counter()
        await runtime.start()
        try:
            while True:
                found = await asyncio.to_thread(statuses)
                if not found.get("pending") and not found.get("sending"):
                    break
                await asyncio.sleep(0.25)
        finally:
            await runtime.stop()
        return {"seconds": time.perf_counter() - started, "statuses": found}

    print(json.dumps(asyncio.run(main())), flush=True)


def main() -> None:
    """Seed, run the bot against the fake, print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=80.0)
    parser.add_argument("--bot", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bot:
        db, url, rate, count = args.bot
        run_bot(db, url, float(rate), int(count))
        return
    db = f"{tempfile.mkdtemp(prefix='citybot-wa-outbound-')}/bench.db"
    seed(db, args.messages)
    with FakeTwilioAPI(account_sid=ACCOUNT, auth_token=TOKEN, rate_per_second=args.rate) as fake:
        done = subprocess.run(
            [sys.executable, __file__, "--bot", db, fake.base_url, str(args.rate)]
            + [str(args.messages)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        load = os.getloadavg()[0]
        sent = fake.sent()
        times = sorted(m.at for m in sent)
        achieved = (len(times) - 1) / (times[-1] - times[0])
        templated = sum(1 for m in sent if m.content_sid == TEMPLATE)
        window = [times[i + int(args.rate)] - times[i] for i in range(len(times) - int(args.rate))]
        print(f"messages: {args.messages} to {args.messages} contacts; limit {args.rate:g}/s")
        print(
            f"received by the fake: {len(sent)} ({templated} as templates, "
            f"{len(sent) - templated} as text)"
        )
        print(
            f"achieved: {achieved:.2f} messages/s = {100 * achieved / args.rate:.1f} % of the "
            f"limit, first to last message {times[-1] - times[0]:.1f} s"
        )
        print(f"shortest time for {int(args.rate) + 1} consecutive messages: {min(window):.3f} s")
        print(f"429s provoked: {fake.throttled}")
        print(f"outbox after {result['seconds']:.1f} s: {result['statuses']}")
        print(f"load average during the run: {load:.2f} (1 min), {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
