"""Inbound WhatsApp messages through POST /whatsapp/inbound: signature check, inbox, `<Response/>`.

The bot runs as `citybot serve` does (uvicorn, one process, SQLite file) in a child process;
this process plays Twilio: it posts signed WhatsApp forms (twilio's RequestValidator, for the
public URL) to the bot on loopback and runs the fake Twilio REST API the replies go to (in a
process of its own as well, it made the paced phase slower still on 2 CPUs: four busy
processes). Two measurements:

1. sustained: as fast as the bot answers, from 32 concurrent connections → messages/s;
2. paced: 200 messages/s offered on a fixed schedule → p50/p99/max latency, measured from each
   message's scheduled time (so a stall counts against every message queued behind it).

By default the webhook runs alone (what Twilio waits for). `--with-worker` also runs the inbox
worker and the dispatcher in the bot process, as `serve` does, with replies going to a fake
Twilio API: the engine then competes for the CPU and the SQLite writer. `--split` runs the
dispatcher in the bot process and the routing in a `citybot worker` process beside it
(`serve --no-worker`); `--split-send` routing and sending in the worker process
(`serve --no-worker --no-send` + `citybot worker --send`), as the README recommends on SQLite.

    .venv/bin/python bench/whatsapp_inbound.py [--sustained 4000] [--rate 200] [--seconds 15]
    .venv/bin/python bench/whatsapp_inbound.py --with-worker --rate 50
    .venv/bin/python bench/whatsapp_inbound.py --split
    .venv/bin/python bench/whatsapp_inbound.py --split-send

With the worker, the paced phase starts once the backlog of the sustained phase is processed
and its replies sent (at WHATSAPP_RATE_PER_SECOND); offer less than the engine processes
(bench/engine_throughput.py) and the sender sends, or the backlog grows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from tests.fakes.twilio_api import FakeTwilioAPI, inbound_form, new_sid, sign  # noqa: E402

ACCOUNT = "AC" + "0" * 32
TOKEN = "bench-auth-token"
PUBLIC = "https://bot.example.org"
TEXTS = [
    "Hello, good morning from the mayor's office",
    "yes",
    "Amina Kamara",
    "3",
    "City Council",
    "koidu",
    "1",
    "/ppe",
]


def bench_settings(db: str, twilio_url: str) -> Any:
    """The bot's settings: the SQLite file, the fake Twilio API, the public URL signed for."""
    from bot.settings import get_settings

    return get_settings(
        database_url=f"sqlite:///{db}",
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
        twilio_whatsapp_from="whatsapp:+14155238886",
        twilio_api_base_url=twilio_url,
        public_base_url=PUBLIC,
        whatsapp_templates_file=f"{db}.templates.yaml",
    )


def serve(db: str, port: int, twilio_url: str, mode: str) -> None:
    """The bot process: the WhatsApp webhook; the dispatcher and worker as `mode` says."""
    import logging

    import uvicorn
    from starlette.applications import Starlette

    from bot.channels.whatsapp import WhatsAppChannel
    from bot.lanes import favour_waiting_threads
    from bot.runtime import build_runtime
    from bot.server import create_app
    from storage.db import make_engine

    logging.basicConfig(level=logging.WARNING)
    favour_waiting_threads()  # as `citybot serve` does
    settings = bench_settings(db, twilio_url)
    engine = make_engine(settings.database_url)
    channel = WhatsAppChannel(settings=settings)
    runtime = build_runtime(
        settings,
        engine=engine,
        channels={"whatsapp": channel},
        with_scheduler=False,
        with_worker=mode == "full",
        with_dispatcher=mode != "split-send",
    )
    channel.attach(runtime)
    app = create_app(runtime) if mode != "webhook" else Starlette(routes=channel.routes())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def work(db: str, twilio_url: str, send: bool) -> None:
    """The `citybot worker [--send]` process: routes the inbox (and sends) until interrupted."""
    import logging

    from bot.worker import run_standalone

    logging.basicConfig(level=logging.WARNING)
    run_standalone(bench_settings(db, twilio_url), send=send)


def forms(count: int, prefix: str) -> list[tuple[dict[str, str], str]]:
    """Signed inbound forms: officials each sending the next line of a conversation."""
    url = PUBLIC + "/whatsapp/inbound"
    signed = []
    for i in range(count):
        official, turn = divmod(i, len(TEXTS))
        form = inbound_form(
            f"+2327{prefix}{official:05d}", TEXTS[turn], sid=new_sid(), account_sid=ACCOUNT
        )
        signed.append((form, sign(TOKEN, url, form)))
    return signed


async def post(
    session: aiohttp.ClientSession, base: str, form: dict[str, str], signature: str
) -> None:
    """Post one signed message and check the TwiML answer."""
    async with session.post(
        base + "/whatsapp/inbound", data=form, headers={"X-Twilio-Signature": signature}
    ) as answer:
        body = await answer.text()
        if answer.status != 200 or not body.endswith("<Response/>"):
            raise RuntimeError(f"unexpected answer {answer.status}: {body[:80]}")


async def sustained(base: str, signed: list[tuple[dict[str, str], str]]) -> float:
    """Send everything from 32 connections as fast as answered; return messages/s."""
    queue = list(reversed(signed))
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            """One connection sending until the queue is empty."""
            while queue:
                form, signature = queue.pop()
                await post(session, base, form, signature)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(32)))
        return len(signed) / (time.perf_counter() - started)


async def paced(base: str, signed: list[tuple[dict[str, str], str]], rate: float) -> list[float]:
    """Offer `rate` messages/s on a fixed schedule; return each latency from its slot (s)."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter() + 0.2

        async def one(index: int, form: dict[str, str], signature: str) -> None:
            """Send one message at its slot and record its latency."""
            slot = start + index / rate
            await asyncio.sleep(max(0.0, slot - time.perf_counter()))
            await post(session, base, form, signature)
            latencies.append(time.perf_counter() - slot)

        await asyncio.gather(*(one(i, f, s) for i, (f, s) in enumerate(signed)))
    return latencies


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the sorted values fall."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def main() -> None:
    """Start the bot, warm it up, measure, print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sustained", type=int, default=4000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--with-worker", action="store_true")
    parser.add_argument("--split", action="store_true", help="route in a worker process")
    parser.add_argument(
        "--split-send", action="store_true", help="route and send in a worker process"
    )
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--work", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        db, port, url, mode = args.serve
        serve(db, int(port), url, mode)
        return
    if args.work:
        with contextlib.suppress(KeyboardInterrupt):
            db, url, send = args.work
            work(db, url, send == "1")
        return
    mode = (
        "split-send"
        if args.split_send
        else "split"
        if args.split
        else "full"
        if args.with_worker
        else "webhook"
    )
    from storage import migrate
    from storage.db import make_engine

    folder = tempfile.mkdtemp(prefix="citybot-wa-inbound-")
    db = f"{folder}/bench.db"
    engine = make_engine(f"sqlite:///{db}")
    migrate.upgrade(engine=engine)
    engine.dispose()
    port = 18000 + os.getpid() % 1000
    with FakeTwilioAPI(account_sid=ACCOUNT, auth_token=TOKEN) as fake:
        twilio_url = fake.base_url
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", db, str(port), twilio_url, mode], cwd=ROOT
        )
        worker = (
            subprocess.Popen(
                [sys.executable, __file__, "--work", db, twilio_url]
                + ["1" if mode == "split-send" else "0"],
                cwd=ROOT,
            )
            if mode.startswith("split")
            else None
        )
        base = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(wait_ready(base))
            asyncio.run(sustained(base, forms(300, "0")))  # warm-up
            rate = asyncio.run(sustained(base, forms(args.sustained, "1")))
            backlog = wait_for_worker(db) if mode != "webhook" else 0.0
            time.sleep(1.0)
            count = int(args.rate * args.seconds)
            latencies = asyncio.run(paced(base, forms(count, "2"), args.rate))
            load = os.getloadavg()[0]
        finally:
            for process in (server, worker):
                if process is not None:
                    stop(process)
        described = {
            "webhook": "webhook alone, one process",
            "full": "webhook + inbox worker + dispatcher, one process",
            "split": "webhook + dispatcher, and a worker process routing",
            "split-send": "webhook alone, and a worker process routing and sending",
        }[mode]
        print(f"mode: {described}; SQLite file; uvicorn ({http_implementation()}); loopback")
        print(
            f"sustained: {rate:,.0f} messages/s ({args.sustained} signed messages, 32 connections)"
        )
        print(
            f"at {args.rate:.0f}/s offered for {args.seconds:.0f} s ({count} messages): "
            f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
            f"max {max(latencies) * 1000:.1f} ms"
        )
        print(f"load average during the run: {load:.2f} (1 min), {os.cpu_count()} CPUs")
        if mode != "webhook":
            print(f"backlog of the sustained phase processed and answered in {backlog:.1f} s")
            print(f"replies accepted by the fake Twilio meanwhile: {accepted(db)}")


def accepted(db: str) -> int:
    """Outbound messages Twilio accepted (they have its message SID)."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as connection:
        found = connection.execute(
            "SELECT count(*) FROM outboxmessage WHERE provider_id IS NOT NULL"
        ).fetchone()
    return int(found[0])


def stop(process: subprocess.Popen[bytes]) -> None:
    """Interrupt a child as Ctrl-C would; kill it if it ignores that (SIGINT ignored in jobs)."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(30)


def http_implementation() -> str:
    """The HTTP parser uvicorn picks: httptools when installed, else h11."""
    import importlib.util

    return "httptools" if importlib.util.find_spec("httptools") else "h11"


def wait_for_worker(db: str) -> float:
    """Wait until the worker processed the inbox and the replies left; return how long."""
    started = time.perf_counter()
    busy = (
        "SELECT (SELECT count(*) FROM inboxevent WHERE processed_at IS NULL)"
        " + (SELECT count(*) FROM outboxmessage WHERE status IN ('pending', 'sending'))"
    )
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as connection:
        while connection.execute(busy).fetchone()[0]:
            time.sleep(0.2)
    return time.perf_counter() - started


async def wait_ready(base: str) -> None:
    """Wait until the bot answers on its port."""
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.post(base + "/whatsapp/inbound") as answer:
                    if answer.status == 403:
                        return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise RuntimeError("the bot did not start")


if __name__ == "__main__":
    main()
