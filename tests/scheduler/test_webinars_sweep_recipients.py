"""Webinar reminders: who gets none (and why), and what WhatsApp templates get."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from storage import contacts
from storage import webinars as db
from storage.db import session_scope
from tests.scheduler.webinar_cases import (
    START,
    T0,
    make_contact,
    make_webinar,
    register,
    rows,
    sent,
    sweep_at,
)
from tests.scheduler.webinar_cases import t0 as t0  # a fixture


def test_opted_out_unreachable_and_erased_contacts_are_skipped_with_the_reason(
    engine: Engine, t0: FixedClock
) -> None:
    """The reason is kept on the row; staff see it in the figures."""
    webinar = make_webinar(engine, t0.now())
    out = make_contact(engine, "console:out", T0, tz="UTC")
    gone = make_contact(engine, "console:gone", T0, tz="UTC")
    erased = make_contact(engine, "console:erased", T0, tz="UTC")
    for person in (out, gone, erased):
        register(engine, webinar, person, t0.now())
    with session_scope(engine) as session:
        for person, flags in (
            (out, {"opted_out": True}),
            (gone, {"unreachable": True}),
            (erased, {"erased_at": T0}),
        ):
            contact = contacts.get_contact(session=session, contact_id=person)
            assert contact is not None
            contacts.update_contact(session=session, contact=contact, **flags)
    sweep_at(engine, t0, START - timedelta(hours=24))
    reasons = {r.contact_id: r.reason for r in rows(engine) if r.offset_minutes == 1440}
    assert reasons == {out: "opted_out", gone: "unreachable", erased: "erased"}
    with session_scope(engine) as session:
        figures = db.reminder_stats(session=session, webinar_id=webinar)
    assert figures["reasons"] == {"opted_out": 1, "unreachable": 1, "erased": 1}
    assert sent(engine) == []


def test_whatsapp_reminders_carry_the_fields_templates_use(engine: Engine, t0: FixedClock) -> None:
    """WhatsApp reminders carry the template fields: title, local time, link."""
    webinar = make_webinar(engine, t0.now())
    person = make_contact(engine, "whatsapp:+23276000001", T0, tz="Africa/Freetown", lang="fr")
    register(engine, webinar, person, t0.now())
    sweep_at(engine, t0, START - timedelta(hours=1))
    (message,) = sent(engine)
    assert (message.channel, message.kind, message.language) == ("whatsapp", "reminder", "fr")
    meta = message.body["meta"]
    assert meta["title"] == "Rendre les villes résilientes"
    assert meta["link"] == "https://meet.example/drr"
    assert meta["local_time"] == "dimanche 14 mars 2027 15:00 (UTC, Freetown)"
    assert meta["webinar_id"] == webinar and meta["until"] == "dans 1 heure"
