"""Broadcast throughput and staff data at scale, against the fake platforms.

1. Materialising the recipients of a 10,000-contact broadcast (one INSERT … SELECT), queueing
   their outbox rows, and the preview.
2. Sending it through the real channel senders and the outbox dispatcher, as `citybot serve`
   does: Telegram contacts through python-telegram-bot to the fake Bot API (30 messages/s,
   answering 429 beyond) and WhatsApp contacts through twilio's client to the fake Twilio API
   (80/s, 429 beyond), at the same time. Prints the achieved rate of each channel (from the
   fakes' own clocks, first to last accepted message) and the 429s each answered.
3. Exporting 10,000 development-needs responses as XLSX: time and peak memory.

    .venv/bin/python bench/staff_broadcast.py [--recipients 10000] [--database URL]

By default the recipients are split between the channels in proportion to their limits, so
both finish together (~90 s); `--telegram N --whatsapp N` sets the counts.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from bot.clock import SystemClock  # noqa: E402
from handlers import (  # noqa: E402
    broadcasts_compose,
    broadcasts_preview,
    broadcasts_sending,
    broadcasts_stats,
)
from handlers.definitions import catalog  # noqa: E402
from storage import broadcasts as db  # noqa: E402
from storage import migrate, surveys  # noqa: E402
from storage.db import make_engine, session_scope  # noqa: E402
from storage.models import Contact, ContactURN, SurveyResponse  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402
from tests.fakes.twilio_api import FakeTwilioAPI  # noqa: E402

TELEGRAM_RATE, WHATSAPP_RATE = 30.0, 80.0
LANGS = ("en", "fr", "es", "ar", "ru", "zh", "pt")
COUNTRIES = ("SL", "KE", "GH", "NG", "CN", "BR", "FR", "EG", "IN", "MX")
PRIORITIES = ("education", "covid_health", "agriculture", "drr_resilience", "transport_air")


def serve_fake(kind: str, rate: float, conn: Any) -> None:
    """Run a fake platform in this (child) process until told to stop; send back its figures.

    The fakes run in their own process so that they do not compete with the bot for the GIL:
    a real Telegram or Twilio does not run inside the bot either.
    """
    fake: Any = (
        FakeTelegram(rate_per_second=rate, rate_per_chat=1)
        if kind == "telegram"
        else FakeTwilioAPI(rate_per_second=rate)
    )
    fake.start()
    conn.send(fake.base_url)
    conn.recv()  # "stop"
    if kind == "telegram":
        times = [c.at for c in fake.calls if c.method == "sendMessage" and c.status == 200]
        refused = len(fake.rate_limited)
    else:
        times = [m.at for m in fake.messages]
        refused = fake.throttled
    conn.send((times, refused))
    fake.stop()


class Remote:
    """A fake platform running in a child process."""

    def __init__(self, kind: str, rate: float) -> None:
        """Start the child and wait for its address."""
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve_fake, args=(kind, rate, child), daemon=True)
        self.process.start()
        self.base_url: str = self.conn.recv()

    def finish(self) -> tuple[list[float], int]:
        """Stop the fake; return the times it accepted messages at and the 429s it answered."""
        self.conn.send("stop")
        figures: tuple[list[float], int] = self.conn.recv()
        self.process.join(10)
        return figures


def engine_for(url: str | None) -> Engine:
    """A fresh migrated database (a temporary SQLite file unless a URL is given)."""
    if url is None:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='citybot-bench-')}/bench.db"
    engine = make_engine(url)
    migrate.upgrade(engine=engine)
    return engine


def seed(engine: Engine, telegram: int, whatsapp: int, now: datetime) -> None:
    """Officials on Telegram and WhatsApp (in the 24-hour window) and their survey answers."""
    total = telegram + whatsapp
    with session_scope(engine) as session:
        session.execute(
            insert(Contact.__table__),  # type: ignore[attr-defined]
            [
                {
                    "language": LANGS[i % len(LANGS)],
                    "country_code": COUNTRIES[i % len(COUNTRIES)],
                    "role": "city_official",
                    "opted_out": False,
                    "unreachable": False,
                    "prompt_data": {},
                    "created_at": now,
                    "last_inbound_at": now - timedelta(hours=1),
                }
                for i in range(total)
            ],
        )
        ids = list(session.exec(select(Contact.id).order_by(col(Contact.id))))
        session.execute(
            insert(ContactURN.__table__),  # type: ignore[attr-defined]
            [
                {
                    "urn": f"telegram:{100000 + i}" if n < telegram else f"whatsapp:+2327{i:07d}",
                    "channel": "telegram" if n < telegram else "whatsapp",
                    "contact_id": i,
                }
                for n, i in enumerate(ids)
            ],
        )
        definition = catalog()["development_needs"]
        pinned = surveys.pin_definition(
            session=session,
            survey_id=definition.id,
            version=definition.version,
            digest=definition.digest,
            body=definition.body,
            now=now,
        )
        session.execute(
            insert(SurveyResponse.__table__),  # type: ignore[attr-defined]
            [
                {
                    "run_id": n,
                    "survey_id": definition.id,
                    "version": definition.version,
                    "definition_id": pinned,
                    "contact_id": i,
                    "country_code": COUNTRIES[n % len(COUNTRIES)],
                    "city_name": None,
                    "language": LANGS[n % len(LANGS)],
                    "answers": {
                        "priorities": [PRIORITIES[n % 5], PRIORITIES[(n + 2) % 5]],
                        "support": ["advisory", "knowledge_sharing"],
                        "projects": "Waste sorting plant looking for partners" if n % 3 else None,
                        "partner_cities": None,
                        "un_agencies": ["undp"],
                        "may_contact": bool(n % 2),
                    },
                    "submitted_at": now,
                }
                for n, i in enumerate(ids)
            ],
        )


def prepare(engine: Engine, now: datetime, *, spread: bool) -> tuple[int, dict[str, float]]:
    """Create the broadcast; time the preview, the materialisation and the queueing."""
    timings: dict[str, float] = {}
    with session_scope(engine) as session:
        draft = broadcasts_compose.create_draft(
            session=session,
            title="Bench",
            texts={lang: f"Announcement in {lang}: the webinar series starts." for lang in LANGS},
            segment={},
            default_language="en",
            now=now,
            created_by=None,
            via="cli",
        )
        broadcasts_compose.schedule(
            session=session, broadcast=draft, at=None, now=now, actor=None, via="cli"
        )
        started = time.perf_counter()
        broadcasts_preview.preview(
            session=session, broadcast=draft, now=now, templates=frozenset()
        )
        timings["preview"] = time.perf_counter() - started
        broadcast_id = draft.id or 0
    with session_scope(engine) as session:
        found = db.get_broadcast(session=session, broadcast_id=broadcast_id)
        assert found is not None
        started = time.perf_counter()
        broadcasts_sending.start(session=session, broadcast=found, now=now)
    timings["materialise"] = time.perf_counter() - started
    started = time.perf_counter()
    rates = {"telegram": TELEGRAM_RATE, "whatsapp": WHATSAPP_RATE} if spread else {}
    while True:
        with session_scope(engine) as session:
            if not broadcasts_sending.queue_next(
                session=session, broadcast_id=broadcast_id, now=SystemClock().now(), rates=rates
            ):
                break
    timings["queue"] = time.perf_counter() - started
    return broadcast_id, timings


async def send(
    engine: Engine,
    tg_url: str,
    tw_url: str,
    folder: str,
    broadcast_id: int,
    headroom: float = 1.0,
) -> float:
    """Run the channels and the dispatcher until every message of the broadcast is out."""
    from bot.channels.telegram import TelegramChannel
    from bot.channels.whatsapp import WhatsAppChannel
    from bot.runtime import build_runtime
    from bot.settings import get_settings

    settings = get_settings(
        database_url="sqlite://",
        telegram_bot_token="123:TEST",
        telegram_webhook_secret="Webhook_secret-0123456789",
        telegram_api_base_url=tg_url,
        telegram_mode="webhook",
        public_base_url="https://bot.example.org",
        telegram_rate_per_second=TELEGRAM_RATE * headroom,
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token="test-auth-token",
        twilio_whatsapp_from="whatsapp:+14155238886",
        twilio_api_base_url=tw_url,
        whatsapp_rate_per_second=WHATSAPP_RATE * headroom,
        whatsapp_burst_seconds=0.05,  # the fake refuses more than 50 ms ahead of the rate
        whatsapp_templates_file=f"{folder}/none.yaml",
        staff_urns={},
    )
    runtime = build_runtime(settings, engine=engine, channels={}, with_scheduler=False)
    telegram = TelegramChannel(settings=settings, runtime=runtime)
    whatsapp = WhatsAppChannel(settings=settings)
    whatsapp.attach(runtime)
    for name, channel in (("telegram", telegram), ("whatsapp", whatsapp)):
        runtime.channels[name] = channel  # type: ignore[assignment]
        runtime.dispatcher.senders[name] = channel.sender
    started = time.perf_counter()
    await runtime.start()
    try:
        while True:
            await asyncio.sleep(5.0)
            found = await asyncio.to_thread(_stats, engine, broadcast_id)
            print(
                f"  {time.perf_counter() - started:6.1f}s  sent {found.processed:6d}"
                f" / {found.to_send}",
                flush=True,
            )
            if found.waiting == 0:
                break
    finally:
        await runtime.stop()
    elapsed = time.perf_counter() - started
    final = await asyncio.to_thread(_stats, engine, broadcast_id)
    shown = {k: n for k, n in broadcasts_stats.shown_counts(final).items() if n}
    print(f"outcome: {shown} (outbox statuses {final.by_status})")
    return elapsed


def _stats(engine: Engine, broadcast_id: int) -> db.BroadcastStats:
    """The broadcast's stats, read fresh."""
    with session_scope(engine) as session:
        return db.stats(session=session, broadcast_id=broadcast_id)


def rate(times: list[float]) -> float:
    """Messages a second from the first to the last accepted message."""
    if len(times) < 2:
        return 0.0
    times = sorted(times)
    return (len(times) - 1) / (times[-1] - times[0])


def export(engine: Engine, folder: str) -> dict[str, Any]:
    """Export every development-needs response as XLSX: rows, seconds, peak memory.

    Timed once as it runs (RSS growth from the OS), then once more under tracemalloc for the
    peak of Python allocations (tracemalloc slows the code, so that run is not timed).
    """
    from handlers import exports
    from handlers.i18n import strings

    strings()  # the UI strings load once per process; not part of an export

    def once(path: Path) -> Any:
        with session_scope(engine) as session:
            return exports.export(
                session=session,
                kind="responses",
                fmt="xlsx",
                lang="fr",
                path=path,
                survey="development_needs",
            )

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    done = once(Path(folder) / "responses.xlsx")
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    once(Path(folder) / "responses-traced.xlsx")
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "rows": done.rows,
        "seconds": elapsed,
        "python_peak_mb": peak / 1e6,
        "rss_growth_mb": max(0, after - before) / 1024,
        "file_mb": done.path.stat().st_size / 1e6,
    }


def main() -> None:
    """Run the three measurements and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--telegram", type=int)
    parser.add_argument("--whatsapp", type=int)
    parser.add_argument("--database", help="a database URL (default: a temporary SQLite file)")
    parser.add_argument("--no-spread", action="store_true", help="queue every message due at once")
    parser.add_argument(
        "--headroom",
        type=float,
        default=1.0,
        help="configure the senders at this share of the platforms' limits (e.g. 0.98)",
    )
    args = parser.parse_args()
    share = TELEGRAM_RATE / (TELEGRAM_RATE + WHATSAPP_RATE)
    n_tg = args.telegram if args.telegram is not None else round(args.recipients * share)
    n_wa = args.whatsapp if args.whatsapp is not None else args.recipients - n_tg
    folder = tempfile.mkdtemp(prefix="citybot-bench-")
    engine = engine_for(args.database)
    now = datetime.now(UTC)
    print(
        f"recipients: {n_tg} on Telegram, {n_wa} on WhatsApp ({engine.url.get_backend_name()});"
        f" senders at {100 * args.headroom:g}% of the limits;"
        f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    seed(engine, n_tg, n_wa, now)
    broadcast_id, timings = prepare(engine, SystemClock().now(), spread=not args.no_spread)
    print(
        f"preview {timings['preview']:.2f}s · materialise {n_tg + n_wa} recipients "
        f"{timings['materialise']:.2f}s · queue {timings['queue']:.2f}s"
    )
    tg, tw = Remote("telegram", TELEGRAM_RATE), Remote("whatsapp", WHATSAPP_RATE)
    cpu = time.process_time()
    elapsed = asyncio.run(
        send(engine, tg.base_url, tw.base_url, folder, broadcast_id, args.headroom)
    )
    cpu = time.process_time() - cpu
    (tg_times, tg_429), (wa_times, wa_429) = tg.finish(), tw.finish()
    tg_rate, wa_rate = rate(tg_times), rate(wa_times)
    print(f"sent in {elapsed:.1f}s (bot process CPU {cpu:.1f}s, {100 * cpu / elapsed:.0f}%)")
    print(
        f"telegram: {len(tg_times)} messages, {tg_rate:.2f}/s = "
        f"{100 * tg_rate / TELEGRAM_RATE:.1f}% of {TELEGRAM_RATE:g}/s, 429s: {tg_429}"
    )
    print(
        f"whatsapp: {len(wa_times)} messages, {wa_rate:.2f}/s = "
        f"{100 * wa_rate / WHATSAPP_RATE:.1f}% of {WHATSAPP_RATE:g}/s, 429s: {wa_429}"
    )
    figures = export(engine, folder)
    print(
        f"xlsx export: {figures['rows']} responses in {figures['seconds']:.2f}s, python peak "
        f"{figures['python_peak_mb']:.1f} MB, RSS growth {figures['rss_growth_mb']:.1f} MB, "
        f"file {figures['file_mb']:.2f} MB"
    )


if __name__ == "__main__":
    main()
