"""Helpers shared by the donation dialog tests (registration, staff, messages sent to others)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from handlers.messages import Outgoing
from storage import contacts, outbox
from storage.db import session_scope
from storage.models import OutboxMessage
from tests.support import Dialog, fragment

DialogFactory = Callable[..., Dialog]


def register(d: Dialog, lang: str = "en") -> None:
    """Register an official of Koidu (Sierra Leone) in English or French."""
    if lang == "fr":
        d.say("Bonjour, je représente la mairie de Koidu")
        d.say("oui")
        d.say("Jean Koroma")
        d.say("1")
        d.say("Mairie de Koidu")
        d.say("Koidu")
        d.say(tap=labels_of(d, "summary_confirm", "fr"))
        return
    d.say("Hello, I am writing from the mayor's office")
    d.say(tap="Yes")
    d.say("Amina Kamara")
    d.say("3")
    d.say("Koidu City Council")
    d.say("koidu")
    d.say(tap="✅ Submit")


def labels_of(d: Dialog, key: str, lang: str) -> str:
    """The label of the last reply's choice whose text is a UI string."""
    wanted = fragment(key, lang)
    for choice in d.last.choices:
        if choice.label == wanted:
            return choice.label
    raise AssertionError(f"no {key!r} in {[c.label for c in d.last.choices]}")


def make_staff(engine: Engine, clock: FixedClock, urn: str, role: str = "staff") -> None:
    """Give the contact of `urn` a staff role."""
    with session_scope(engine) as session:
        contacts.set_staff_roles(session=session, urns={urn: role}, now=clock.now())


def sent_to(urn: str, *dialogs: Dialog) -> list[Outgoing]:
    """Every message any of the dialogs' dispatchers delivered to `urn`, in order."""
    found = [(id(m), m) for d in dialogs for u, m in d.sender.sent if u == urn]
    return [m for _, m in found]


def outbox_rows(engine: Engine, kind: str | None = None) -> list[OutboxMessage]:
    """Every outbox row (of one kind)."""
    from sqlmodel import col, select

    with session_scope(engine) as session:
        stmt = select(OutboxMessage).order_by(col(OutboxMessage.id))
        if kind is not None:
            stmt = stmt.where(OutboxMessage.kind == kind)
        rows = list(session.exec(stmt))
    assert outbox is not None
    return rows


def choice_id(message: Outgoing, prefix: str) -> str:
    """The id of the message's choice starting with `prefix`."""
    for choice in message.choices:
        if choice.id.startswith(prefix):
            return choice.id
    raise AssertionError(f"no choice {prefix!r} in {[c.id for c in message.choices]}")
