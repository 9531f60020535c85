"""Staff and broadcasts over the real channels: Telegram (PTB against the fake Bot API) and
WhatsApp (twilio's client against the fake Twilio API), as `citybot serve` runs them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.clock import FixedClock
from handlers import broadcasts_compose
from handlers.i18n import t
from handlers.places import Gazetteer
from scheduler.broadcasts import run_broadcasts
from storage import broadcasts as bc_db
from storage import contacts
from storage.db import session_scope
from storage.models import OutboxMessage
from tests.fakes.telegram_api import FakeTelegram, Harness, Person, wire
from tests.fakes.twilio_api import FakeTwilioAPI, WhatsAppBot, wait_until
from tests.handlers.staff_cases import answer, make_staff

SECRET = "Webhook_secret-0123456789"
PUBLIC = "https://bot.example.org"
HX_BROADCAST_EN = "HX" + "7" * 32


@pytest.fixture
def telegram(clock: FixedClock) -> Iterator[FakeTelegram]:
    """The fake Bot API (per-chat limit relaxed for speed)."""
    with FakeTelegram(rate_per_chat=50, clock=lambda: clock.now().timestamp()) as server:
        yield server


def official(engine: Engine, clock: FixedClock, urn: str, language: str, country: str) -> int:
    """A registered official who answered the development needs survey."""
    with session_scope(engine) as session:
        contact, _ = contacts.get_or_create_contact(session=session, urn=urn, now=clock.now())
        contacts.update_contact(
            session=session,
            contact=contact,
            language=language,
            language_source="explicit",
            country_code=country,
            consent_at=clock.now(),
        )
        answer(session, contact.id or 0, country, ["education"], ["advisory"], clock)
        return contact.id or 0


async def test_staff_on_telegram_reports_exports_and_broadcasts(
    telegram: FakeTelegram,
    engine: Engine,
    clock: FixedClock,
    places: Gazetteer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Charts arrive as photos, exports as documents; non-staff get the help; a broadcast goes
    to each Telegram official through the dispatcher, without a 429."""
    monkeypatch.setenv("CITYBOT_FILES_DIR", str(tmp_path))
    make_staff(engine, clock, {"telegram:100": "admin"})
    for chat in (201, 202, 203):
        official(engine, clock, f"telegram:{chat}", "fr" if chat % 2 else "en", "SL")
    runtime, channel = wire(telegram, engine, clock, places, SECRET, PUBLIC, "webhook")
    async with Harness(telegram, runtime, channel) as harness:
        outsider = Person(harness, 300)
        await outsider.say("/start")
        (refused,) = await outsider.say("/broadcast")
        assert t("help_text", "en") in refused.text

        staff = Person(harness, 100)
        replies = await staff.say("/report surveys")
        photos = [m for m in replies if m.method == "sendPhoto"]
        assert len(photos) >= 2
        assert any("Development needs survey: 3 respondents" in m.text for m in replies)
        replies = await staff.say("/export contacts csv")
        (document,) = [m for m in replies if m.method == "sendDocument"]
        assert "Export of contacts" in " ".join(m.text for m in replies)

        with session_scope(engine) as session:
            draft = broadcasts_compose.create_draft(
                session=session,
                title="Telegram test",
                texts={"en": "Hello partners", "fr": "Bonjour partenaires"},
                segment={"country": ["SL"]},
                default_language="en",
                now=clock.now(),
                created_by=None,
                via="cli",
            )
            broadcasts_compose.schedule(
                session=session, broadcast=draft, at=None, now=clock.now(), actor=None, via="cli"
            )
        run_broadcasts(engine=engine, now=clock.now())
        clock.advance(timedelta(seconds=1))  # the messages are spread at 30/s from now
        harness.runtime.wake_dispatcher("telegram")
        await harness.settle()
    texts = {chat: [m.text for m in telegram.messages_to(chat)] for chat in (201, 202, 203)}
    assert texts == {
        201: ["Bonjour partenaires"],
        202: ["Hello partners"],
        203: ["Bonjour partenaires"],
    }
    assert telegram.rate_limited == []
    run_broadcasts(engine=engine, now=clock.now())
    with session_scope(engine) as session:
        found = bc_db.stats(session=session, broadcast_id=draft.id or 0)
    assert found.by_status == {"sent": 3}


def test_whatsapp_compose_in_chat_window_and_templates(
    engine: Engine,
    clock: FixedClock,
    places: Gazetteer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A staff member composes on WhatsApp by typing numbers; in the window the text goes as
    it is, outside it the approved template, and without a template it is held."""
    # The preview reads the templates file the channel uses (BotConfig does not carry it yet).
    monkeypatch.setenv("WHATSAPP_TEMPLATES_FILE", str(tmp_path / "whatsapp_templates.yaml"))
    templates: dict[str, Any] = {
        "broadcast": {"en": {"content_sid": HX_BROADCAST_EN, "variables": ["text"]}}
    }
    with FakeTwilioAPI(auth_token="token-broadcast") as fake:
        bot = WhatsAppBot(
            fake, engine=engine, clock=clock, folder=tmp_path, places=places, templates=templates
        ).__enter__()
        try:
            closed_en = official(engine, clock, "whatsapp:+23276000001", "en", "SL")
            closed_fr = official(engine, clock, "whatsapp:+23276000002", "fr", "SL")
            with session_scope(engine) as session:  # they wrote two days ago
                for contact_id in (closed_en, closed_fr):
                    found = contacts.get_contact(session=session, contact_id=contact_id)
                    assert found is not None
                    found.last_inbound_at = clock.now() - timedelta(days=2)
            bot.say("+23276000003", "Hello, good morning to the whole team")  # window open
            open_id = official(engine, clock, "whatsapp:+23276000003", "en", "SL")
            make_staff(engine, clock, {"whatsapp:+23276999999": "admin"})
            staff = "+23276999999"
            bot.say(staff, "/broadcast")
            for line in ("Partners", "1, 2", "Hello partners", "Bonjour partenaires", "2", "SL"):
                bot.say(staff, line)
            replies = bot.say(staff, "1")  # submit the summary
            preview = " ".join(m.body or "" for m in replies)
            assert "Recipients: 3 (of 3 matching contacts)" in preview
            assert "WhatsApp within the 24-hour window (free text): 1" in preview
            assert "sent with the approved template: 1 (English 1)" in preview
            assert "no approved template: 1 (Français 1)" in preview
            bot.say(staff, "1")  # send now
            clock.advance(timedelta(seconds=1))
            bot.wake()

            def settled() -> bool:
                with session_scope(engine) as session:
                    rows = [
                        r
                        for r in session.exec(
                            select(OutboxMessage).where(OutboxMessage.kind == "broadcast")
                        )
                    ]
                return len(rows) == 3 and all(r.status not in ("pending", "sending") for r in rows)

            wait_until(settled)
        finally:
            bot.__exit__(None, None, None)
        by_address = {m.to.removeprefix("whatsapp:"): m for m in fake.messages}
        assert by_address["+23276000003"].body == "Hello partners"
        assert by_address["+23276000001"].content_sid == HX_BROADCAST_EN
        assert by_address["+23276000001"].content_variables == {"1": "Hello partners"}
        assert "+23276000002" not in by_address
    with session_scope(engine) as session:
        held = session.exec(
            select(OutboxMessage).where(OutboxMessage.contact_id == closed_fr)
        ).one()
        opened = session.exec(
            select(OutboxMessage).where(
                OutboxMessage.contact_id == open_id, OutboxMessage.kind == "broadcast"
            )
        ).one()
    assert held.status == "needs_template" and opened.status in ("queued", "sent", "delivered")
