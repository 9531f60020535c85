"""Telegram out: the outbox dispatcher and our sender against the fake Bot API over HTTP.

Rendering (keyboards, long texts, files), our own throttling (no 429 provoked), and what each
failure does: a 429 holds that chat only, a 403 marks the contact unreachable, a 5xx is
retried with backoff and then failed with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.channels.telegram import TelegramChannel
from bot.channels.telegram_limits import ChatSpacing, WindowLimiter
from bot.channels.telegram_render import RenderError, keyboard, render, split_text
from bot.channels.telegram_sender import ServerError, classify
from bot.clock import FixedClock
from bot.dispatcher import Dispatcher
from handlers.messages import Attachment, Choice, Outgoing
from handlers.places import Gazetteer
from storage import contacts, outbox
from storage.db import session_scope
from tests.fakes.telegram_api import FakeTelegram, wire

SECRET = "Webhook_secret-0123456789"


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    """The fake Bot API with Telegram's limits: 30 messages/s overall, 1/s per chat."""
    with FakeTelegram(rate_per_second=30, rate_per_chat=1) as server:
        yield server


@contextlib.asynccontextmanager
async def sending(
    fake: FakeTelegram,
    engine: Engine,
    clock: FixedClock,
    places: Gazetteer,
    **overrides: Any,
) -> AsyncIterator[tuple[TelegramChannel, Dispatcher]]:
    """A started channel and a dispatcher with a short retry policy."""
    values: dict[str, Any] = {"telegram_rate_per_chat": 1.0, **overrides}
    fake.set_limits(rate_per_chat=values["telegram_rate_per_chat"])  # the same on both sides
    runtime, channel = wire(
        fake, engine, clock, places, SECRET, "https://bot.example.org", "webhook", **values
    )
    await channel.start()
    dispatcher = Dispatcher(engine, {"telegram": channel.sender}, clock, max_attempts=3)
    try:
        yield channel, dispatcher
    finally:
        await channel.stop()


def queue(engine: Engine, clock: FixedClock, *items: tuple[int, Outgoing]) -> None:
    """Put messages for chats in the outbox, with their contacts."""
    with session_scope(engine) as session:
        for index, (chat, message) in enumerate(items):
            urn = f"telegram:{chat}"
            contact, _ = contacts.get_or_create_contact(session=session, urn=urn, now=clock.now())
            outbox.enqueue(
                session=session,
                idempotency_key=f"t{chat}:{index}:{time.monotonic_ns()}",
                urn=urn,
                channel="telegram",
                body=message.to_body(),
                now=clock.now(),
                contact_id=contact.id,
            )


async def drain(dispatcher: Dispatcher) -> None:
    """Send everything due now."""
    while await dispatcher.drain("telegram"):
        pass


def rows(engine: Engine, chat: int) -> list[tuple[str, str, str | None, str | None, int]]:
    """(text, status, error code, error reason, attempts) of a chat's messages."""
    with session_scope(engine) as session:
        return [
            (m.body["text"], m.status, m.error_code, m.error_reason, m.attempts)
            for m in outbox.messages_for(session=session, urn=f"telegram:{chat}")
        ]


def text(body: str) -> Outgoing:
    """A plain text message."""
    return Outgoing(text=body)


# -- rendering ---------------------------------------------------------------------------


def test_keyboard_layout_and_callback_data() -> None:
    """Short labels two a row, long ones one a row; choice ids are the callback data."""
    short = keyboard(
        (Choice("l:en", "English"), Choice("l:fr", "Français"), Choice("l:zh", "中文"))
    )
    assert short is not None
    assert [[b.text for b in row] for row in short.inline_keyboard] == [
        ["English", "Français"],
        ["中文"],
    ]
    assert short.inline_keyboard[0][1].callback_data == "l:fr"
    long = keyboard((Choice("s1:a", "Sustainable agriculture value chains"), Choice("s1:b", "B")))
    assert long is not None and [len(row) for row in long.inline_keyboard] == [1, 1]
    wide = keyboard((Choice("a", "个人防护装备和消毒用品"), Choice("b", "否")))  # 22 columns
    assert wide is not None and [len(row) for row in wide.inline_keyboard] == [1, 1]
    assert keyboard(()) is None


@pytest.mark.parametrize("bad", ["x" * 65, "s1:é", ""])
def test_choice_ids_must_be_short_ascii(bad: str) -> None:
    """Callback data is at most 64 bytes: ids are short ASCII, never labels."""
    with pytest.raises(RenderError):
        render(Outgoing(text="Pick", choices=(Choice(bad, "Label"),)))
    assert render(Outgoing(text="Pick", choices=(Choice("y" * 64, "Label"),)))


def test_long_text_is_split_at_line_breaks_with_the_keyboard_last() -> None:
    """Over 4096 characters: several messages, the buttons on the last one."""
    body = "\n".join(f"Line {i}: " + "x" * 90 for i in range(80))
    pieces = render(Outgoing(text=body, choices=(Choice("s1:#yes", "Yes"),)))
    assert len(pieces) == 2 and all(len(p.text) <= 4096 for p in pieces)
    assert pieces[0].keyboard is None and pieces[1].keyboard is not None
    assert "\n".join(p.text for p in pieces) == body
    assert split_text("a" * 5000) == ["a" * 4096, "a" * 904]


# -- sending -----------------------------------------------------------------------------


async def test_keyboards_files_and_provider_ids(
    fake: FakeTelegram, engine: Engine, clock: FixedClock, places: Gazetteer, tmp_path: Path
) -> None:
    """Choices become an inline keyboard; files go as documents and photos, before it."""
    report = tmp_path / "summary.pdf"
    report.write_bytes(b"%PDF-1.4 summary")
    photo = tmp_path / "map.png"
    photo.write_bytes(b"\x89PNG map")
    message = Outgoing(
        text="Your summary. Is it correct?",
        choices=(Choice("s4:#yes", "Yes"), Choice("s4:#no", "No")),
        attachments=(
            Attachment("document", "summary.pdf", str(report), "Summary"),
            Attachment("image", "map.png", str(photo), ""),
        ),
    )
    async with sending(fake, engine, clock, places, telegram_rate_per_chat=50.0) as (_, d):
        queue(engine, clock, (11, message), (12, text("Plain")))
        await drain(d)
    sent = fake.messages_to(11)
    assert [m.method for m in sent] == ["sendDocument", "sendPhoto", "sendMessage"]
    assert sent[0].text == "Summary" and sent[0].extra["document"]["file_name"] == "summary.pdf"
    assert sent[0].extra["document"]["file_size"] == len(b"%PDF-1.4 summary")
    assert sent[2].labels() == ["Yes", "No"] and sent[2].button_data("No") == "s4:#no"
    assert fake.messages_to(12)[0].reply_markup is None
    with session_scope(engine) as session:
        (row,) = outbox.messages_for(session=session, urn="telegram:11")
    assert row.status == "sent" and row.provider_id == f"11:{sent[2].message_id}"


async def test_a_missing_file_or_an_overlong_id_fails_without_a_call(
    fake: FakeTelegram, engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """What cannot be rendered fails at once with the reason; Telegram is not called."""
    missing = Outgoing(text="x", attachments=(Attachment("document", "a.pdf", "/nope/a.pdf"),))
    overlong = Outgoing(text="Pick", choices=(Choice("z" * 70, "Z"),))
    async with sending(fake, engine, clock, places) as (_, d):
        queue(engine, clock, (13, missing), (14, overlong))
        await drain(d)
    assert rows(engine, 13) == [("x", "failed", "file", "attachment 'a.pdf' missing", 1)]
    assert rows(engine, 14)[0][1:3] == ("failed", "render")
    assert not fake.calls_of("sendMessage") and not fake.calls_of("sendDocument")


async def test_our_throttle_provokes_no_429(
    fake: FakeTelegram, engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """Two messages to one chat a second apart, others at once: the fake never says 429."""
    async with sending(fake, engine, clock, places) as (_, d):
        queue(
            engine,
            clock,
            (21, text("one")),
            (21, text("two")),
            *[(100 + n, text(f"hello {n}")) for n in range(10)],
        )
        started = time.monotonic()
        await drain(d)
        elapsed = time.monotonic() - started
    assert fake.rate_limited == []
    assert [m.text for m in fake.messages_to(21)] == ["one", "two"]
    first, second = (m.at for m in fake.messages_to(21))
    assert second - first >= 1.0
    assert all(len(fake.messages_to(100 + n)) == 1 for n in range(10))
    assert 1.0 <= elapsed < 3.0


async def test_the_overall_limit_is_kept_across_chats(
    engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """15 chats at 10 messages/s overall: paced over 1 s, nothing refused, nobody skipped."""
    with FakeTelegram(rate_per_second=10, rate_per_chat=1) as fake:
        async with sending(fake, engine, clock, places, telegram_rate_per_second=10.0) as (_, d):
            queue(engine, clock, *[(200 + n, text(f"news {n}")) for n in range(15)])
            started = time.monotonic()
            await drain(d)
            elapsed = time.monotonic() - started
        assert fake.rate_limited == [] and len(fake.calls_of("sendMessage")) == 15
        assert len(fake.messages) == 15 and 1.0 <= elapsed < 3.0


async def test_a_429_holds_that_chat_only(
    fake: FakeTelegram, engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """retry_after is honoured for that chat, in order; other chats go on at once."""
    fake.fail(status=429, method="sendMessage", chat_id=31, retry_after=7)
    async with sending(fake, engine, clock, places, telegram_rate_per_chat=50.0) as (_, d):
        queue(engine, clock, (31, text("a1")), (31, text("a2")), (32, text("b1")))
        queue(engine, clock, (32, text("b2")))
        await drain(d)
        assert [m.text for m in fake.messages_to(32)] == ["b1", "b2"]
        assert fake.messages_to(31) == [] and len(fake.calls_of("sendMessage", 31)) == 1
        (first, second) = rows(engine, 31)
        assert first[1:3] == ("pending", "429") and second[1] == "pending"
        with session_scope(engine) as session:
            (row, _) = outbox.messages_for(session=session, urn="telegram:31")
        assert row.next_attempt_at == clock.now() + timedelta(seconds=7)
        clock.advance(timedelta(seconds=6))
        await drain(d)
        assert fake.messages_to(31) == []  # not before Telegram said
        clock.advance(timedelta(seconds=1))
        await drain(d)
        assert [m.text for m in fake.messages_to(31)] == ["a1", "a2"]
    assert [r[1] for r in rows(engine, 31)] == ["sent", "sent"]
    assert fake.rate_limited == []  # the scripted 429 was the only one


async def test_a_block_marks_the_contact_unreachable_and_stops(
    fake: FakeTelegram, engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """403 "bot was blocked by the user": failed with the reason, contact unreachable."""
    fake.fail(status=403, chat_id=41, times=5)
    async with sending(fake, engine, clock, places) as (_, d):
        queue(engine, clock, (41, text("hello")), (42, text("hello")))
        await drain(d)
        clock.advance(timedelta(hours=1))
        await drain(d)
    assert rows(engine, 41) == [
        ("hello", "failed", "403", "Forbidden: bot was blocked by the user", 1)
    ]
    assert len(fake.calls_of("sendMessage", 41)) == 1
    with session_scope(engine) as session:
        blocked = contacts.get_contact_by_urn(session=session, urn="telegram:41")
        other = contacts.get_contact_by_urn(session=session, urn="telegram:42")
    assert blocked is not None and blocked.unreachable
    assert other is not None and not other.unreachable


async def test_5xx_is_retried_with_backoff_then_failed_with_the_reason(
    fake: FakeTelegram, engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """502 (an HTML page), 500, 503: three attempts, spaced by backoff, then failed."""
    fake.fail(status=502, chat_id=51, body=b"<html>502 Bad Gateway</html>")
    fake.fail(status=500, chat_id=51)
    fake.fail(status=503, chat_id=51)
    fake.fail(status=500, chat_id=52)  # once: the retry succeeds
    async with sending(fake, engine, clock, places, telegram_rate_per_chat=50.0) as (_, d):
        queue(engine, clock, (51, text("report")), (52, text("report")))
        await drain(d)
        assert rows(engine, 51) == [("report", "pending", "502", "HTTP 502", 1)]
        for attempt in (2, 3):
            await drain(d)
            assert rows(engine, 51)[0][4] == attempt - 1  # not due yet: backoff
            clock.advance(timedelta(seconds=d.max_backoff))
            await drain(d)
            assert rows(engine, 51)[0][4] == attempt
    assert rows(engine, 51) == [("report", "failed", "503", "Service Unavailable", 3)]
    assert len(fake.calls_of("sendMessage", 51)) == 3
    assert rows(engine, 52)[0][1] == "sent" and len(fake.calls_of("sendMessage", 52)) == 2


async def test_a_network_error_is_retried(
    fake: FakeTelegram, engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """Telegram unreachable (connection refused): the message waits for another attempt."""
    async with sending(fake, engine, clock, places) as (_, d):
        fake.stop()
        queue(engine, clock, (81, text("hello")))
        await drain(d)
        ((body, status, code, reason, attempts),) = rows(engine, 81)
    assert (status, code, attempts) == ("pending", "network", 1) and reason


async def test_a_bad_request_is_fatal(
    fake: FakeTelegram, engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """400 (chat not found): failed at once with Telegram's reason."""
    fake.fail(status=400, chat_id=61)
    async with sending(fake, engine, clock, places) as (_, d):
        queue(engine, clock, (61, text("hello")))
        await drain(d)
    assert rows(engine, 61) == [("hello", "failed", "400", "Chat not found", 1)]


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (RetryAfter(12), "retry", "429"),
        (Forbidden("Forbidden: user is deactivated"), "blocked", "403"),
        (BadRequest("Bad Request: chat not found"), "fatal", "400"),
        (ServerError(502, "Bad Gateway"), "retry", "502"),
        (TimedOut(), "retry", "timeout"),
        (NetworkError("httpx.ConnectError: refused"), "retry", "network"),
    ],
)
def test_error_classification(error: Exception, kind: str, code: str) -> None:
    """Each PTB error maps to what the dispatcher does next."""
    failure = classify(error)  # type: ignore[arg-type]
    assert (failure.kind, failure.code) == (kind, code)
    if code == "429":
        assert failure.retry_after == 12.0


async def test_logs_carry_ids_only(
    fake: FakeTelegram,
    engine: Engine,
    clock: FixedClock,
    places: Gazetteer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At INFO nothing logs the bot token (it is in every API URL) or a message body."""
    caplog.set_level(logging.DEBUG, logger="bot")
    caplog.set_level(logging.INFO)
    fake.fail(status=403, chat_id=72)
    async with sending(fake, engine, clock, places) as (_, d):
        queue(engine, clock, (71, text("Amina Kamara, Koidu")), (72, text("Amina Kamara")))
        await drain(d)
    assert fake.messages_to(71)
    assert "123:TEST" not in caplog.text and "Amina" not in caplog.text
    assert "message=" in caplog.text  # ids are logged


async def test_limiters_on_their_own() -> None:
    """The window counts from completion; chat spacing serialises one chat only."""
    window = WindowLimiter(4)
    assert (window.limit, window.window) == (4, 1.0)
    assert (WindowLimiter(0.5).limit, WindowLimiter(0.5).window) == (1, 2.0)
    started = time.monotonic()

    async def one() -> float:
        async with window.slot():
            return time.monotonic() - started

    times = sorted(await asyncio.gather(*(one() for _ in range(6))))
    assert max(times[:4]) < 0.2 and min(times[4:]) >= 1.0
    spacing = ChatSpacing(10)
    started = time.monotonic()

    async def turn(chat: int) -> float:
        async with spacing.turn(chat):
            return time.monotonic() - started

    a1, a2, b1 = await asyncio.gather(turn(1), turn(1), turn(2))
    assert a1 < 0.05 and b1 < 0.05 and a2 >= 0.1
