"""Telegram end to end: python-telegram-bot over real HTTP against the fake Bot API.

Our app (`create_app`, as `citybot serve` runs it) is served by uvicorn on loopback; the fake
Bot API runs in its own thread. People onboard and answer the development needs survey in
webhook mode and in polling mode, tapping buttons or typing, and every message goes the real
way: update → inbox → router → outbox → dispatcher → sendMessage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from bot.channels.telegram import COMMANDS
from bot.clock import FixedClock
from handlers.config import ALL_LANGUAGES
from handlers.i18n import t
from handlers.places import Gazetteer
from storage import contacts, surveys
from storage.db import session_scope
from storage.models import InboxEvent
from tests.fakes.telegram_api import SECRET_HEADER, FakeTelegram, Harness, Person, wire

SECRET = "Webhook_secret-0123456789"
PUBLIC = "https://bot.example.org"
EXPECTED_ANSWERS = {
    "priorities": ["education", "gender_equality"],
    "support": ["knowledge_sharing"],
    "projects": "School rehabilitation programme",
    "partner_cities": None,
    "un_agencies": ["undp"],
    "may_contact": True,
}


@pytest.fixture
def fake(clock: FixedClock) -> Iterator[FakeTelegram]:
    """The fake Bot API, dating messages by the test clock (per-chat limit relaxed for speed)."""
    with FakeTelegram(rate_per_chat=50, clock=lambda: clock.now().timestamp()) as server:
        yield server


def inbox_rows(engine: Engine) -> int:
    """How many inbound events are stored."""
    with session_scope(engine) as session:
        return int(session.exec(select(func.count()).select_from(InboxEvent)).one())


async def by_buttons(p: Person) -> None:
    """Onboarding from the Start button, then the needs survey from the menu, tapping."""
    (reply,) = await p.say("/start")
    assert t("welcome", "en") in reply.text and "Do you agree?" in reply.text
    assert reply.labels() == ["Yes", "No"]
    await p.tap("Yes")
    assert "full name" in p.last.text and p.last.labels() == []
    await p.say("Amina Kamara")
    assert "What is your role?" in p.last.text
    await p.tap("City official")
    await p.say("Koidu City Council")
    await p.say("koidu")
    assert "Koidu, Sierra Leone" in p.last.text
    await p.tap("✅ Submit")
    assert "your office is registered" in p.last.text
    await p.tap(t("menu_needs", "en"))
    assert "top three development priorities" in p.last.text
    await p.tap("Education")
    await p.tap("Gender equality")
    assert "Selected: Education, Gender equality" in p.last.text
    await p.tap("✔ Done")
    await p.tap("Knowledge sharing")
    await p.tap("✔ Done")
    await p.say("School rehabilitation programme")
    await p.tap("Skip")
    await p.tap("UNDP")
    await p.tap("✔ Done")
    await p.tap("Yes")
    assert "Please check your answers" in p.last.text
    await p.tap("✅ Submit")
    assert "Your answers were saved" in p.last.text


async def by_typing(p: Person) -> None:
    """Onboarding from a deep link to the needs survey (t.me/<bot>?start=needs), typing."""
    (reply,) = await p.say("/start needs")
    assert "Do you agree?" in reply.text and reply.labels() == ["Yes", "No"]
    for text in ("yes", "Amina Kamara", "3", "Koidu City Council", "koidu"):
        await p.say(text)
    assert "Koidu, Sierra Leone" in p.last.text
    await p.say("1")
    assert "your office is registered" in p.last.text
    assert "top three development priorities" in p.last.text  # the deep link's survey
    for text in ("8, 13", "2", "School rehabilitation programme", "skip", "1", "yes"):
        await p.say(text)
    assert "Please check your answers" in p.last.text
    await p.say("1")
    assert "Your answers were saved" in p.last.text


@pytest.mark.parametrize("how", ["buttons", "typing"])
@pytest.mark.parametrize("mode", ["webhook", "polling"])
async def test_onboarding_and_needs_survey(
    mode: str,
    how: str,
    fake: FakeTelegram,
    engine: Engine,
    clock: FixedClock,
    places: Gazetteer,
) -> None:
    """The same conversation as in the console, on Telegram, in both modes, both ways."""
    runtime, channel = wire(fake, engine, clock, places, SECRET, PUBLIC, mode)
    async with Harness(fake, runtime, channel) as harness:
        assert channel.application.updater is None  # our webhook or our poller, no Updater
        assert channel.application.running
        person = Person(harness, 4242)
        await (by_buttons(person) if how == "buttons" else by_typing(person))
        health = await harness.get("/healthz")
        assert health.json() == {"status": "ok", "channels": ["telegram"]}

    with session_scope(engine) as session:
        (response,) = surveys.responses(session=session, survey_id="development_needs")
        contact = contacts.get_contact_by_urn(session=session, urn="telegram:4242")
    assert response.answers == EXPECTED_ANSWERS
    assert contact is not None and contact.id == response.contact_id
    assert (contact.name, contact.role, contact.city_name) == (
        "Amina Kamara",
        "city_official",
        "Koidu",
    )
    assert (contact.language, contact.language_source) == ("en", "platform")

    messages = fake.messages_to(4242)
    assert all(m.method == "sendMessage" for m in messages)
    # Every tap was answered at once, and only the latest message still shows a keyboard:
    # a keyboard is removed once its question is answered, by a tap or by typing.
    assert bool(fake.queries) == (how == "buttons") and all(fake.queries.values())
    assert [m.message_id for m in messages if m.reply_markup] == [messages[-1].message_id]
    assert fake.rate_limited == []
    if mode == "webhook":
        assert fake.webhook_url == PUBLIC + "/telegram/webhook"
        assert fake.webhook_secret == SECRET
        assert fake.webhook_allowed == ["message", "callback_query"]
        assert not fake.calls_of("getUpdates")
    else:
        assert fake.calls_of("deleteWebhook") and fake.calls_of("getUpdates")
        assert not fake.calls_of("setWebhook")


async def test_command_menu_in_every_language_and_app_language_as_hint(
    fake: FakeTelegram, engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """Commands are registered per language; a French app gets the French welcome."""
    runtime, channel = wire(fake, engine, clock, places, SECRET, PUBLIC, "webhook")
    async with Harness(fake, runtime, channel) as harness:
        (reply,) = await Person(harness, 77, language_code="fr").say("/start")
    assert t("welcome", "fr") in reply.text and reply.labels() == ["Oui", "Non"]
    assert set(fake.commands) == {None, *ALL_LANGUAGES}
    for lang in ALL_LANGUAGES:
        menu = fake.commands[lang]
        assert [c["command"] for c in menu] == list(COMMANDS)
        assert [c["description"] for c in menu] == [t(f"tg_cmd_{c}", lang) for c in COMMANDS]
    assert fake.commands[None] == fake.commands["en"]
    assert len({fake.commands[lang][1]["description"] for lang in ALL_LANGUAGES}) == 7


async def test_an_old_button_cannot_answer_a_new_question(
    fake: FakeTelegram, engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """A tapped keyboard disappears; a stale client tapping it anyway changes nothing."""
    runtime, channel = wire(fake, engine, clock, places, SECRET, PUBLIC, "webhook")
    async with Harness(fake, runtime, channel) as harness:
        person = Person(harness, 99)
        (consent,) = await person.say("/start")
        await person.tap("Yes")
        assert "full name" in person.last.text
        assert fake.messages_to(99)[0].reply_markup is None  # removed once tapped
        (answer,) = fake.calls_of("answerCallbackQuery")
        assert answer.at < person.last.at  # answered at once, before the reply
        (stale,) = await person._turn(
            fake.callback_update(99, data="s1:#no", message_id=consent.message_id)
        )
        assert t("stale_button", "en") in stale.text and "full name" in stale.text
        await person.say("Amina Kamara")
        assert "What is your role?" in person.last.text  # the name was still the question
        role = person.last
        await person.say("Mayor")  # typed: the role keyboard goes too
        await harness.settle()
        assert fake.messages_to(99)[-2].message_id == role.message_id
        assert fake.messages_to(99)[-2].reply_markup is None
    assert all(fake.queries.values())


@pytest.mark.parametrize("mode", ["webhook", "polling"])
async def test_a_redelivered_update_is_processed_once(
    mode: str, fake: FakeTelegram, engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """Telegram may deliver an update again: one inbox row, one reply.

    By webhook: the same POST twice. By polling: the process stopped after storing the
    update but before its offset reached Telegram, so the next process gets it again.
    """
    runtime, channel = wire(fake, engine, clock, places, SECRET, PUBLIC, mode)
    update = fake.message_update(5, "/start")
    async with Harness(fake, runtime, channel) as harness:
        assert await harness.send(update) == 200
        await harness.settle()
        if mode == "webhook":
            assert await harness.send(update) == 200
            await harness.settle()
    if mode == "polling":
        runtime, channel = wire(fake, engine, clock, places, SECRET, PUBLIC, mode)
        async with Harness(fake, runtime, channel) as harness:
            fake.queue_update(update)
            await harness.settle()
    assert len(fake.messages_to(5)) == 1
    assert inbox_rows(engine) == 1
    assert runtime.counters['inbound_total{channel="telegram",result="duplicate"}'] == 1


async def test_a_forged_webhook_is_refused_and_nothing_is_stored(
    fake: FakeTelegram, engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """Wrong or missing secret → 403 and no row; a bad body with the secret → 400."""
    runtime, channel = wire(fake, engine, clock, places, SECRET, PUBLIC, "webhook")
    async with Harness(fake, runtime, channel) as harness:
        update = fake.message_update(6, "/start")
        assert await fake.deliver(update, harness.webhook, secret="guess") == 403
        assert await fake.deliver(update, harness.webhook, secret=SECRET + "x") == 403
        assert await fake.deliver(update, harness.webhook, secret=None) == 403
        client = harness.client
        assert client is not None
        garbage = await client.post(
            harness.webhook, content=b"{not json", headers={SECRET_HEADER: SECRET}
        )
        assert garbage.status_code == 400
        assert (await client.get(harness.webhook)).status_code == 405
        await asyncio.sleep(0.1)
        assert inbox_rows(engine) == 0 and fake.messages_to(6) == []
        metrics = (await harness.get("/metrics")).text
    assert 'citybot_telegram_webhook_total{result="forbidden"} 3' in metrics


async def test_chats_concurrently_each_in_order(
    fake: FakeTelegram, engine: Engine, clock: FixedClock, places: Gazetteer
) -> None:
    """Three people type fast at once: each one's messages in order, the chats interleaved."""
    runtime, channel = wire(fake, engine, clock, places, SECRET, PUBLIC, "webhook")
    script = ["/start", "yes", "Name {n}", "3", "Office {n}", "koidu"]
    expected = [
        "Do you agree?",
        "What is your full name?",
        "What is your role?",
        "Which organisation",
        "Which city",
        "Please check your answers",
    ]
    chats = [301, 302, 303]
    async with Harness(fake, runtime, channel) as harness:

        async def burst(chat: int) -> None:
            for text in script:  # each message right after the previous one is stored
                update = fake.message_update(chat, text.format(n=chat))
                assert await harness.send(update) == 200

        await asyncio.gather(*(burst(chat) for chat in chats))
        await harness.settle()
    for chat in chats:
        texts = [m.text for m in fake.messages_to(chat)]
        assert len(texts) == len(expected)
        assert all(e in text for e, text in zip(expected, texts, strict=True)), texts
        assert f"Name {chat}" in texts[-1] and f"Office {chat}" in texts[-1]
    order = [m.chat_id for m in fake.messages]
    for chat in chats:
        first = order.index(chat)
        for other in chats:
            last_other = len(order) - 1 - order[::-1].index(other)
            assert first < last_other  # no chat waited for another chat's whole conversation
