"""Contacts and their channel addresses (URNs)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, Update, and_, bindparam
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from storage import direct
from storage.models import Contact, ContactURN, SurveyRun

PROFILE_FIELDS = (
    "name",
    "role",
    "organisation",
    "city_name",
    "city_geonameid",
    "country_code",
    "timezone",
)


def channel_of(urn: str) -> str:
    """Return the channel part of a URN (`telegram:1` → `telegram`)."""
    scheme, sep, address = urn.partition(":")
    if not sep or not scheme or not address:
        raise ValueError("a URN looks like channel:address")
    return scheme


@cache
def _by_urn(for_update: bool) -> SelectOfScalar[Contact]:
    """The contact-by-URN query, built once (it runs on every message)."""
    stmt = select(Contact).join(ContactURN).where(ContactURN.urn == bindparam("urn"))
    return stmt.with_for_update(of=Contact) if for_update else stmt


def get_contact_by_urn(*, session: Session, urn: str, for_update: bool = False) -> Contact | None:
    """Return the contact holding `urn`, locking its row when `for_update`."""
    return session.exec(_by_urn(for_update), params={"urn": urn}).first()


def get_or_create_contact(*, session: Session, urn: str, now: datetime) -> tuple[Contact, bool]:
    """Return the contact for `urn`, creating it (and its URN) when new; the flag says created."""
    contact = get_contact_by_urn(session=session, urn=urn, for_update=True)
    if contact is not None:
        return contact, False
    return create_contact(session=session, urn=urn, now=now), True


@cache
def _with_active_run() -> Select[Any]:
    """The contact-and-active-run query as Core, built once (it runs on every message)."""
    contact = Contact.__table__  # type: ignore[attr-defined]
    run = SurveyRun.__table__  # type: ignore[attr-defined]
    urn = ContactURN.__table__  # type: ignore[attr-defined]
    active = and_(run.c.contact_id == contact.c.id, run.c.status == "active")
    return (
        sa_select(*(contact.c[name] for name in _CONTACT), *(run.c[name] for name in _RUN))
        .select_from(contact.join(urn, urn.c.contact_id == contact.c.id).outerjoin(run, active))
        .where(urn.c.urn == bindparam("urn"))
        .order_by(run.c.id.desc())
        .limit(1)
        .with_for_update(of=contact)
    )


_CONTACT = direct.columns_of(Contact)
_RUN = direct.columns_of(SurveyRun)


def contact_with_active_run(
    *, session: Session, urn: str
) -> tuple[Contact | None, SurveyRun | None]:
    """Return the contact holding `urn` (its row locked) and its active run, in one query.

    Read on the driver's cursor and attached to the session (objects it holds already win),
    without the ORM's loading: it runs on every message. Pending changes are not flushed
    first: everything this query filters on (URNs, run status) is flushed when it changes.
    """
    row = direct.fetch_one(session, _with_active_run(), {"urn": urn})
    if row is None:
        return None, None
    contact = direct.attach(session, Contact, dict(zip(_CONTACT, row, strict=False)))
    values = row[len(_CONTACT) :]
    if values[0] is None:
        return contact, None
    return contact, direct.attach(session, SurveyRun, dict(zip(_RUN, values, strict=True)))


def create_contact(*, session: Session, urn: str, now: datetime) -> Contact:
    """Create a contact holding `urn` (the caller knows the URN is new)."""
    contact = direct.insert(session, Contact, {"created_at": now})
    assert contact.id is not None
    direct.add(
        session, ContactURN, {"urn": urn, "channel": channel_of(urn), "contact_id": contact.id}
    )
    return contact


def get_contact(*, session: Session, contact_id: int) -> Contact | None:
    """Return a contact by id."""
    return session.get(Contact, contact_id)


def urns_of(*, session: Session, contact_id: int) -> list[str]:
    """Return every URN of a contact, oldest first."""
    stmt = (
        select(ContactURN.urn)
        .where(ContactURN.contact_id == contact_id)
        .order_by(col(ContactURN.id))
    )
    return list(session.exec(stmt))


def add_urn(*, session: Session, contact_id: int, urn: str) -> None:
    """Attach another channel address to a contact (idempotent)."""
    existing = session.exec(select(ContactURN).where(ContactURN.urn == urn)).first()
    if existing is None:
        session.add(ContactURN(urn=urn, channel=channel_of(urn), contact_id=contact_id))
        session.flush()


def update_contact(*, session: Session, contact: Contact, **fields: Any) -> Contact:
    """Set fields on a contact (written at the next flush)."""
    for key, value in fields.items():
        if not hasattr(contact, key):
            raise AttributeError(f"Contact has no field {key}")
        setattr(contact, key, value)
    session.add(contact)
    return contact


def set_staff_roles(*, session: Session, urns: dict[str, str], now: datetime) -> int:
    """Give each URN's contact the role it is mapped to (creating contacts); return the count."""
    for urn, role in urns.items():
        contact, _ = get_or_create_contact(session=session, urn=urn, now=now)
        update_contact(session=session, contact=contact, staff_role=role)
    return len(urns)


def erase_contact(*, session: Session, contact: Contact, now: datetime) -> None:
    """Clear every personal field of a contact and detach its channel addresses."""
    blank: dict[str, Any] = dict.fromkeys(PROFILE_FIELDS)
    update_contact(
        session=session,
        contact=contact,
        **blank,
        consent_version=None,
        consent_at=None,
        consent_refused_at=None,
        prompt=None,
        prompt_data={},
        erased_at=now,
        last_inbound_at=None,
    )
    for row in session.exec(select(ContactURN).where(ContactURN.contact_id == contact.id)):
        session.delete(row)
    session.flush()


def record_inbound(
    *, session: Session, seen: Collection[tuple[Contact, str]], now: datetime
) -> None:
    """Record that messages came in now from these contacts on these URNs.

    Core statements run once for all (a batch's worth), not the ORM's flush: the URNs'
    last_seen_at (the channel proactive messages prefer) and the contacts' last_inbound_at
    (WhatsApp's 24-hour window), leaving erased contacts alone. The objects are kept in step.
    """
    if not seen:
        return
    direct.execute_many(session, _touch(), [{"u": urn, "now": now} for _, urn in seen])
    ids = {contact.id for contact, _ in seen}
    direct.execute_many(session, _inbound_at(), [{"i": i, "now": now} for i in ids])
    for contact, _ in seen:
        if contact.erased_at is None:
            set_committed_value(contact, "last_inbound_at", now)


@cache
def _inbound_at() -> Update:
    """The contact-heard-from update as a Core statement, built once."""
    table = Contact.__table__  # type: ignore[attr-defined]
    return (
        sa_update(table)
        .where(table.c.id == bindparam("i"), table.c.erased_at.is_(None))
        .values(last_inbound_at=bindparam("now"))
    )


@cache
def _touch() -> Update:
    """The URN-seen update as a Core statement, built once (every message runs it)."""
    table = ContactURN.__table__  # type: ignore[attr-defined]
    return (
        sa_update(table).where(table.c.urn == bindparam("u")).values(last_seen_at=bindparam("now"))
    )


def preferred_urn(*, session: Session, contact_id: int) -> str | None:
    """Return the contact's URN with the latest inbound message (the first one otherwise)."""
    stmt = (
        select(ContactURN.urn)
        .where(ContactURN.contact_id == contact_id)
        .order_by(col(ContactURN.last_seen_at).desc().nulls_last(), col(ContactURN.id))
    )
    return session.exec(stmt).first()


def erased_contact_ids(*, session: Session) -> list[int]:
    """Return the ids of contacts who asked to be forgotten."""
    stmt = select(Contact.id).where(col(Contact.erased_at).is_not(None))
    return [i for i in session.exec(stmt) if i is not None]
