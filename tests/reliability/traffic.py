"""Inbound load over real HTTP: people typing on Telegram and WhatsApp, retried like platforms.

Each person types a short script, one message after the other: a message is typed once its
predecessor was acknowledged. Every request is signed (Telegram's secret header, Twilio's
signature for the public URL) and posted to `serve` on loopback. What did not get a 2xx is
sent again, the same update or MessageSid, after a short pause, as Telegram and Twilio do,
until it is acknowledged. The ledger keeps every acknowledged message and every answer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.fakes.twilio_api import inbound_form, new_sid, sign
from tests.reliability.process import PUBLIC, SECRET, TWILIO_SID, TWILIO_TOKEN

TELEGRAM_SCRIPT = ("/start", "yes", "Name {n}")
WHATSAPP_SCRIPT = ("Hello", "yes", "Name {n}")
RETRY_PAUSE = 0.1  # seconds before a platform sends an unacknowledged request again


@dataclass
class Attempt:
    """One HTTP request: when it left, when it ended, and its status (0: no answer)."""

    sent: float
    ended: float
    status: int
    error: str = ""


@dataclass
class Ledger:
    """What the platforms sent and what `serve` acknowledged."""

    acked: dict[tuple[str, str], float] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    typed: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float = 0.0

    def statuses(self) -> Counter[str]:
        """Answers by status (`refused`, `timeout` … when there was none)."""
        return Counter(str(a.status) if a.status else a.error for a in self.attempts)

    def retries(self) -> int:
        """Requests sent again because the previous attempt got no 2xx."""
        return len(self.attempts) - len(self.acked)

    def between(self, start: float, end: float) -> list[Attempt]:
        """Attempts that left and ended within [start, end]."""
        return [a for a in self.attempts if a.sent >= start and a.ended <= end]


class Platforms:
    """Telegram's and Twilio's side of the webhooks, aimed at one `serve` address."""

    def __init__(self, base_url: str, *, timeout: float = 15.0) -> None:
        """Post to `base_url` (the loopback address of serve)."""
        self.base_url = base_url
        self.ledger = Ledger()
        self.client = httpx.AsyncClient(
            timeout=timeout, limits=httpx.Limits(max_connections=64, max_keepalive_connections=0)
        )
        self._update_ids = itertools.count(900_000)
        self._message_ids: dict[int, itertools.count[int]] = {}

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()

    def telegram_update(self, chat_id: int, text: str) -> dict[str, Any]:
        """A private-chat text update, as Telegram builds it."""
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        user = {"id": chat_id, "is_bot": False, "first_name": f"U{chat_id}", "language_code": "en"}
        message: dict[str, Any] = {
            "message_id": next(counter),
            "from": user,
            "chat": {"id": chat_id, "type": "private", "first_name": f"U{chat_id}"},
            "date": int(time.time()),
            "text": text,
        }
        if text.startswith("/"):
            length = len(text.split(" ", 1)[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return {"update_id": next(self._update_ids), "message": message}

    async def _post(self, path: str, **kwargs: Any) -> Attempt:
        """One POST; the status, or 0 with the kind of failure."""
        sent = time.monotonic()
        try:
            answer = await self.client.post(self.base_url + path, **kwargs)
        except httpx.TimeoutException:
            return Attempt(sent, time.monotonic(), 0, "timeout")
        except httpx.ConnectError:
            return Attempt(sent, time.monotonic(), 0, "refused")
        except httpx.HTTPError as error:
            return Attempt(sent, time.monotonic(), 0, type(error).__name__)
        return Attempt(sent, time.monotonic(), answer.status_code)

    async def _until_acked(self, key: tuple[str, str], path: str, **kwargs: Any) -> None:
        """Send a request again and again until it gets a 2xx."""
        while True:
            attempt = await self._post(path, **kwargs)
            self.ledger.attempts.append(attempt)
            if 200 <= attempt.status < 300:
                self.ledger.acked[key] = attempt.ended
                return
            if attempt.status in (400, 403, 404, 405, 413):
                raise AssertionError(f"{path} refused a valid request: {attempt.status}")
            await asyncio.sleep(RETRY_PAUSE)

    async def telegram(self, chat_id: int, text: str) -> None:
        """Deliver one Telegram message until acknowledged."""
        update = self.telegram_update(chat_id, text)
        self.ledger.typed += 1
        await self._until_acked(
            ("telegram", str(update["update_id"])),
            "/telegram/webhook",
            content=json.dumps(update).encode(),
            headers={
                "Content-Type": "application/json",
                "X-Telegram-Bot-Api-Secret-Token": SECRET,
            },
        )

    async def whatsapp(self, phone: str, text: str) -> None:
        """Deliver one signed WhatsApp message until acknowledged."""
        sid = new_sid()
        form = inbound_form(phone, text, sid=sid, account_sid=TWILIO_SID)
        signature = sign(TWILIO_TOKEN, PUBLIC + "/whatsapp/inbound", form)
        self.ledger.typed += 1
        await self._until_acked(
            ("whatsapp", sid),
            "/whatsapp/inbound",
            data=form,
            headers={"X-Twilio-Signature": signature},
        )


@dataclass(frozen=True)
class Person:
    """Someone who types a script on one channel."""

    channel: str
    address: str  # chat id or phone number
    script: tuple[str, ...]
    n: int

    @property
    def urn(self) -> str:
        """The URN the bot knows them by."""
        return f"{self.channel}:{self.address}"


def people(
    telegram: int,
    whatsapp: int,
    *,
    offset: int = 0,
    telegram_script: tuple[str, ...] = TELEGRAM_SCRIPT,
    whatsapp_script: tuple[str, ...] = WHATSAPP_SCRIPT,
) -> list[Person]:
    """Telegram and WhatsApp people, interleaved (ids from `offset`, unique per test)."""
    found: list[Person] = []
    for i in range(max(telegram, whatsapp)):
        n = offset + i
        if i < telegram:
            found.append(Person("telegram", str(5_000_000 + n), telegram_script, n))
        if i < whatsapp:
            found.append(Person("whatsapp", f"+2327{n:07d}", whatsapp_script, n))
    return found


async def drive(
    platforms: Platforms,
    crowd: list[Person],
    *,
    concurrency: int = 8,
    think: Callable[[], float] = lambda: 0.0,
) -> None:
    """Let `concurrency` typists work through the crowd, each person's messages in order."""
    queue: asyncio.Queue[Person] = asyncio.Queue()
    for person in crowd:
        queue.put_nowait(person)

    async def typist() -> None:
        """Take people from the queue and type their scripts."""
        while not queue.empty():
            person = queue.get_nowait()
            for text in person.script:
                line = text.format(n=person.n)
                if person.channel == "telegram":
                    await platforms.telegram(int(person.address), line)
                else:
                    await platforms.whatsapp(person.address, line)
                pause = think()
                if pause:
                    await asyncio.sleep(pause)

    platforms.ledger.started = time.monotonic()
    await asyncio.gather(*(typist() for _ in range(concurrency)))
    platforms.ledger.finished = time.monotonic()


async def until(
    condition: Callable[[], bool],
    what: str,
    within: float = 120.0,
    detail: Callable[[], str] = lambda: "",
) -> None:
    """Poll a condition from the event loop; fail with `detail()` when it never holds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{detail()}")
        await asyncio.sleep(0.01)


async def finish(
    task: asyncio.Task[None], what: str, within: float, detail: Callable[[], str]
) -> None:
    """Wait for a task; cancel it and fail with `detail()` when it takes longer than `within`."""
    try:
        await asyncio.wait_for(task, within)
    except TimeoutError:
        raise AssertionError(f"{what} not done within {within:.0f}s\n{detail()}") from None


def explain(platforms: Platforms, serve: Any) -> Callable[[], str]:
    """What the webhooks answered so far and the end of serve's log, for a failure message."""
    return lambda: f"answers: {dict(platforms.ledger.statuses())}\nserve log:\n{serve.log(30)}"
