"""Webinar dialog helpers: a webinar, delivery, officials and staff, calendar files' folder."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from handlers import webinars_core as core
from handlers import webinars_ics
from handlers.messages import Outgoing
from scheduler.webinars import run_sweep
from storage import contacts
from storage.db import session_scope
from tests.handlers.test_dialog_en import register
from tests.support import Dialog

WEBINAR_AT = datetime(2026, 11, 5, 13, 0, tzinfo=UTC)  # Thursday 21:00 in Shanghai


@pytest.fixture(autouse=True)
def attachments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Write calendar files under the test's directory."""
    folder = tmp_path / "attachments"
    monkeypatch.setattr(webinars_ics, "ICS_DIR", folder)
    return folder


def create(engine: Engine, clock: FixedClock, **overrides: object) -> int:
    """A webinar organised from Shanghai, with a French title; return its id."""
    fields: dict[str, object] = {
        "title": {"en": "Making cities resilient", "fr": "Rendre les villes résilientes"},
        "description": {"en": "Local disaster risk reduction strategies, with Sendai targets."},
        "starts_at": WEBINAR_AT,
        "timezone": "Asia/Shanghai",
        "duration_minutes": 90,
        "join_url": "https://meet.example/drr",
        "interpretation": ["en", "fr", "zh"],
        "focus_area": "drr_resilience",
        **overrides,
    }
    with session_scope(engine) as session:
        webinar = core.create_webinar(
            session=session,
            spec=core.WebinarSpec(**fields),  # type: ignore[arg-type]
            now=clock.now(),
        )
        assert webinar.id is not None
        return webinar.id


def deliver(d: Dialog, engine: Engine, clock: FixedClock, when: datetime) -> list[Outgoing]:
    """Move the clock to `when`, run the webinar sweep, send what it queued; return it."""
    clock.advance(when - clock.now())
    run_sweep(engine=engine, clock=clock)
    before = len(d.sender.sent)

    async def drain() -> None:
        """Send everything queued."""
        while await d.dispatcher.drain("console"):
            pass

    asyncio.run(drain())
    new = [m for urn, m in d.sender.sent[before:] if urn == d.urn]
    d.replies += new
    return new


def make_staff(engine: Engine, urn: str) -> None:
    """Give a contact the staff role."""
    with session_scope(engine) as session:
        contact = contacts.get_contact_by_urn(session=session, urn=urn)
        assert contact is not None
        contacts.update_contact(session=session, contact=contact, staff_role="staff")


def registered(dialog: Callable[..., Dialog], urn: str) -> Dialog:
    """A contact who walked the registration form (an official of Koidu)."""
    d = dialog(urn)
    register(d)
    return d


def registrant(dialog: Callable[..., Dialog], urn: str, webinar: int) -> Dialog:
    """A registered official who registered for a webinar with its deep link."""
    d = registered(dialog, urn)
    d.say(f"/start w{webinar}")
    return d


def staff_member(dialog: Callable[..., Dialog], engine: Engine, urn: str) -> Dialog:
    """A registered contact with the staff role."""
    d = registered(dialog, urn)
    make_staff(engine, urn)
    return d


def register_fr(d: Dialog) -> None:
    """Walk the registration form in French (Koidu)."""
    d.say("Bonjour, je représente la mairie de Koidu")
    assert "Acceptez-vous ?" in d.text()
    d.say("oui")
    d.say("Awa Sesay")
    d.say("3")
    d.say("Mairie de Koidu")
    d.say("koidu")
    d.say(tap="✅ Envoyer")
