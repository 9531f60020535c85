"""Telegram inbound: updates POSTed to /telegram/webhook on loopback, stored in SQLite.

A child process runs what `citybot serve` runs in webhook mode: our app under uvicorn on
127.0.0.1 (secret check, update → inbox row, 200), the inbox worker routing every message and
the dispatcher sending the replies, with python-telegram-bot talking over HTTP to the fake Bot
API (tests/fakes/telegram_api.py, 30 messages/s), which runs in a process of its own as
Telegram would. This process is the load, with the secret header, each update from its own
chat:

With `--split` routing runs in a second process (`serve --no-worker` + `citybot worker`); with
`--split-send` routing and sending do (`serve --no-worker --no-send` + `citybot worker --send`),
as recommended on SQLite; either way it reports how long routing took to catch up.

1. sustained: `--updates` updates over `--concurrency` connections, each sent as soon as the
   previous one is acknowledged; prints acknowledged updates/s.
2. offered: `--rate` updates/s for `--seconds`, open loop (each update leaves at its scheduled
   time, latency counted from then, so a slow server cannot hide its queue); prints p50/p99.

Both phases follow a warm-up of 300 updates (the gazetteer and language models load in the
first seconds). Then it checks every acknowledged update is stored exactly once.
`--store-only` leaves the inbox worker idle, to measure the acceptance path alone.

    .venv/bin/python bench/telegram_inbound.py [--updates 4000] [--rate 200] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

SECRET = "bench_secret-0123456789abcdef"
TEXTS = [
    "Hello, good morning from the mayor's office",
    "Bonjour, je vous écris de la mairie",
    "Hola, buenos días desde la alcaldía",
    "/start",
    "/start needs",
]


def bench_settings(folder: str, api: tuple[str, str]) -> Any:
    """The bot's settings: webhook mode against the fake Bot API, the bench's SQLite file."""
    from bot.settings import get_settings

    token, base_url = api
    return get_settings(
        telegram_bot_token=token,
        telegram_webhook_secret=SECRET,
        telegram_api_base_url=base_url,
        public_base_url="https://bot.example.org",
        telegram_mode="webhook",
        database_url=f"sqlite:///{folder}/bench.db",
    )


def worker_child(folder: str, api: tuple[str, str], send: bool) -> None:
    """`citybot worker [--send]` on the same database: routes (and sends) what serve stores."""
    import logging

    from bot.worker import run_standalone

    logging.basicConfig(level=logging.WARNING)
    run_standalone(bench_settings(folder, api), poll_seconds=0.05, send=send)


def fake_child(ready: Any) -> None:
    """Telegram's side: the fake Bot API (30 messages/s, 1 per chat) in a process of its own."""
    import logging

    from tests.fakes.telegram_api import FakeTelegram

    logging.basicConfig(level=logging.WARNING)
    fake = FakeTelegram(rate_per_second=30, rate_per_chat=1).start()
    ready.put((fake.token, fake.base_url))
    while True:
        time.sleep(3600)


def serve_child(
    port: int, folder: str, api: tuple[str, str], store_only: bool, split: str = ""
) -> None:
    """The server: our app under uvicorn on 127.0.0.1:port, sending to the fake Bot API."""
    import logging

    import uvicorn

    from bot.channels.telegram import TelegramChannel
    from bot.lanes import favour_waiting_threads
    from bot.runtime import build_runtime
    from bot.server import create_app
    from storage import migrate
    from storage.db import make_engine

    logging.basicConfig(level=logging.WARNING)
    favour_waiting_threads()  # as `citybot serve` does
    settings = bench_settings(folder, api)
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine=engine)
    runtime = build_runtime(
        settings,
        engine=engine,
        channels={},
        with_scheduler=False,
        with_worker=not split,
        with_dispatcher=split != "send",
    )
    channel = TelegramChannel(settings=settings, runtime=runtime)
    runtime.channels["telegram"] = channel
    runtime.dispatcher.senders["telegram"] = channel.sender
    if store_only:

        async def idle() -> None:
            await asyncio.Event().wait()

        runtime.worker.run_forever = idle  # type: ignore[method-assign]
    config = uvicorn.Config(
        create_app(runtime), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    uvicorn.Server(config).run()


def update(n: int) -> bytes:
    """Update number n, a message from chat n."""
    chat = 10_000 + n
    text = TEXTS[n % len(TEXTS)]
    body: dict[str, Any] = {
        "update_id": 500_000 + n,
        "message": {
            "message_id": 1,
            "from": {"id": chat, "is_bot": False, "first_name": "O", "language_code": "en"},
            "chat": {"id": chat, "type": "private", "first_name": "O"},
            "date": int(time.time()),
            "text": text,
        },
    }
    if text.startswith("/"):
        body["message"]["entities"] = [{"type": "bot_command", "offset": 0, "length": 6}]
    return json.dumps(body).encode()


class Connection:
    """A bare HTTP/1.1 keep-alive connection: the load generator must cost less than httpx."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Wrap an open stream."""
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        """Connect to the server on loopback."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post(self, body: bytes, secret: str = SECRET) -> int:
        """POST one update to the webhook; return the status."""
        head = (
            "POST /telegram/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\n"
            f"X-Telegram-Bot-Api-Secret-Token: {secret}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header.split(b" ", 2)[1])
        length = 0
        for line in header.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        """Close the stream."""
        self.writer.close()


WARM_UP = 300  # updates sent first, not measured: the gazetteer and language models load


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of sorted values."""
    return values[min(len(values) - 1, int(len(values) * p))]


async def sustained(port: int, total: int, concurrency: int, first: int) -> tuple[float, int]:
    """Send `total` updates over `concurrency` connections back to back; (updates/s, ok)."""
    bodies = [update(first + n) for n in range(total)]
    connections = [await Connection.open(port) for _ in range(concurrency)]
    ok = 0

    async def lane(lane_no: int) -> None:
        nonlocal ok
        for body in bodies[lane_no::concurrency]:
            status = await connections[lane_no].post(body)
            ok += status == 200

    started = time.perf_counter()
    await asyncio.gather(*(lane(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return ok / elapsed, ok


async def offered(port: int, rate: float, seconds: float, first: int) -> tuple[list[float], int]:
    """Offer `rate` updates/s for `seconds`, open loop; (sorted latencies in s, ok)."""
    count = int(rate * seconds)
    bodies = [update(first + n) for n in range(count)]
    idle: list[Connection] = [await Connection.open(port) for _ in range(8)]
    latencies: list[float] = []
    ok = 0
    start = time.perf_counter() + 0.5

    async def one(n: int) -> None:
        nonlocal ok
        due = start + n / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        connection = idle.pop() if idle else await Connection.open(port)
        try:
            status = await connection.post(bodies[n])
        except (asyncio.IncompleteReadError, ConnectionError):  # closed while idle: again
            connection = await Connection.open(port)
            status = await connection.post(bodies[n])
        latencies.append(time.perf_counter() - due)
        idle.append(connection)
        ok += status == 200

    await asyncio.gather(*(one(n) for n in range(count)))
    for connection in idle:
        connection.close()
    return sorted(latencies), ok


async def forge(port: int) -> int:
    """POST an update with a wrong secret; return the status."""
    connection = await Connection.open(port)
    try:
        return await connection.post(update(999_999), secret="forged")
    finally:
        connection.close()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(port: int) -> None:
    """Wait until the server answers /healthz."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    sys.exit("the server did not start")


def main() -> None:
    """Start the server, run both phases, print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--store-only", action="store_true", help="leave the inbox worker idle")
    parser.add_argument(
        "--split",
        action="store_true",
        help="route in a separate worker process (serve --no-worker + citybot worker)",
    )
    parser.add_argument(
        "--split-send",
        action="store_true",
        help="route and send in a worker process (serve --no-worker --no-send + worker --send)",
    )
    args = parser.parse_args()
    split = "send" if args.split_send else "route" if args.split else ""
    folder = tempfile.mkdtemp(prefix="citybot-tg-bench-")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Queue()
    fake = spawn.Process(target=fake_child, args=(ready,), daemon=True)
    fake.start()
    api = ready.get(timeout=60)
    child = spawn.Process(
        target=serve_child, args=(port, folder, api, args.store_only, split), daemon=True
    )
    child.start()
    worker = spawn.Process(target=worker_child, args=(folder, api, split == "send"), daemon=True)
    try:
        wait_ready(port)
        if split:
            worker.start()
        mode = (
            "store only (worker idle)"
            if args.store_only
            else "serve --no-worker --no-send + a worker process routing and sending"
            if split == "send"
            else "serve --no-worker + a worker process routing"
            if split
            else "full runtime (worker routing in the same process)"
        )
        print(f"POST /telegram/webhook on loopback, SQLite, {mode}")
        print(f"machine: {os.cpu_count()} CPUs, load average before: {os.getloadavg()[0]:.2f}")
        pid = child.pid or 0
        asyncio.run(sustained(port, WARM_UP, args.concurrency, 0))  # warm-up, not measured
        cpu = cpu_seconds(pid)
        rate, ok1 = asyncio.run(sustained(port, args.updates, args.concurrency, WARM_UP))
        cpu = cpu_seconds(pid) - cpu
        print(
            f"sustained: {ok1} updates acknowledged at {rate:,.0f} updates/s "
            f"({args.concurrency} connections); server CPU {cpu / ok1 * 1000:.2f} ms per update"
        )
        time.sleep(1.0)
        latencies, ok2 = asyncio.run(
            offered(port, args.rate, args.seconds, WARM_UP + args.updates)
        )
        print(
            f"offered {args.rate:.0f} updates/s for {args.seconds:.0f} s: {ok2} of "
            f"{len(latencies)} acknowledged; latency p50 "
            f"{statistics.median(latencies) * 1000:.1f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
        )
        forged = asyncio.run(forge(port))
        acked = time.perf_counter()
        stored, processed = counts(folder)
        print(
            f"inbox rows: {stored} for {WARM_UP + ok1 + ok2} acknowledged updates "
            f"({processed} routed so far); forged update → {forged}"
        )
        if not args.store_only:
            while processed < stored and time.perf_counter() - acked < 300:
                time.sleep(0.2)
                stored, processed = counts(folder)
            print(
                f"all {processed} of {stored} routed {time.perf_counter() - acked:.1f} s after "
                "the last acknowledgement"
            )
            print(f"replies by status so far (30/s to the fake): {replies(folder)}")
        if stored != WARM_UP + ok1 + ok2 or forged != 403:
            sys.exit("stored rows do not match acknowledged updates: the benchmark is not valid")
    finally:
        child.terminate()
        child.join(timeout=20)
        fake.terminate()
        fake.join(timeout=20)
        if worker.is_alive():
            worker.terminate()
            worker.join(timeout=20)


def replies(folder: str) -> dict[str, int]:
    """Outbox rows by status."""
    with sqlite3.connect(f"{folder}/bench.db", timeout=30) as db:
        rows = db.execute("SELECT status, count(*) FROM outboxmessage GROUP BY status").fetchall()
    return {str(status): int(n) for status, n in rows}


def counts(folder: str) -> tuple[int, int]:
    """Inbox rows stored and routed so far."""
    with sqlite3.connect(f"{folder}/bench.db", timeout=30) as db:
        stored = db.execute("SELECT count(*) FROM inboxevent").fetchone()[0]
        processed = db.execute(
            "SELECT count(*) FROM inboxevent WHERE processed_at IS NOT NULL"
        ).fetchone()[0]
    return int(stored), int(processed)


if __name__ == "__main__":
    main()
