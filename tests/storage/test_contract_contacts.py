"""Storage contract, contacts: creation per URN, several URNs, erasure, staff roles."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from storage import contacts, surveys
from storage.db import session_scope
from tests.storage.contract_cases import (
    NOW,
    in_tx,
    new_contact,
    read_contact,
    start,
)

pytestmark = pytest.mark.postgres


def test_get_or_create_contact_creates_once_per_urn(any_engine: Engine) -> None:
    """A URN gets one contact; later calls (same or later transaction) return it, not created."""
    with session_scope(any_engine) as session:
        first, created = contacts.get_or_create_contact(session=session, urn="telegram:1", now=NOW)
        again, created_again = contacts.get_or_create_contact(
            session=session, urn="telegram:1", now=NOW
        )
        assert created is True and created_again is False
        assert again.id == first.id
    with session_scope(any_engine) as session:
        later, created_later = contacts.get_or_create_contact(
            session=session, urn="telegram:1", now=NOW + timedelta(hours=1)
        )
        assert created_later is False
        assert later.id == first.id
        assert later.created_at == NOW
        other, created_other = contacts.get_or_create_contact(
            session=session, urn="telegram:2", now=NOW
        )
        assert created_other is True and other.id != first.id


def test_contact_holds_several_urns_add_urn_idempotent(any_engine: Engine) -> None:
    """add_urn attaches more addresses to one contact; adding one twice keeps one."""
    contact_id = new_contact(any_engine, "telegram:1")
    for _ in range(2):
        with session_scope(any_engine) as session:
            contacts.add_urn(session=session, contact_id=contact_id, urn="whatsapp:+23276000000")
            contacts.add_urn(session=session, contact_id=contact_id, urn="whatsapp:+23276000000")
    with session_scope(any_engine) as session:
        assert contacts.urns_of(session=session, contact_id=contact_id) == [
            "telegram:1",
            "whatsapp:+23276000000",
        ]
        by_wa = contacts.get_contact_by_urn(session=session, urn="whatsapp:+23276000000")
        assert by_wa is not None and by_wa.id == contact_id
        found, created = contacts.get_or_create_contact(
            session=session, urn="whatsapp:+23276000000", now=NOW
        )
        assert created is False and found.id == contact_id


def test_contact_with_active_run_reads_both_in_one_query(any_engine: Engine) -> None:
    """The message path's read: contact and active run, typed, tracked, held objects win."""
    me = new_contact(any_engine, "telegram:1")
    assert in_tx(any_engine, lambda s: contacts.contact_with_active_run(session=s, urn="x:9")) == (
        None,
        None,
    )
    with session_scope(any_engine) as session:
        contact, run = contacts.contact_with_active_run(session=session, urn="telegram:1")
        assert contact is not None and contact.id == me and run is None
        assert contact.created_at == NOW and contact.created_at.tzinfo is not None
        run = start(session, me)
        run.answers = {"city": {"name": "Koidu", "alt": ["Sefadu"]}, "n": 200000}
        surveys.save_run(session=session, run=run)
    with session_scope(any_engine) as session:
        contact, found = contacts.contact_with_active_run(session=session, urn="telegram:1")
        assert contact is not None and found is not None and found.id == run.id
        assert found.answers == run.answers and found.expires_at == NOW + timedelta(days=1)
        assert found.contact_id == me and found.status == "active"
        contact.name = "Amina"  # a change to the attached object is flushed like any other
        contact.prompt_data = {"offer": [1, 2]}
        again, same_run = contacts.contact_with_active_run(session=session, urn="telegram:1")
        assert again is contact and same_run is found and again.name == "Amina"
    stored = read_contact(any_engine, me)
    assert (stored.name, stored.prompt_data) == ("Amina", {"offer": [1, 2]})
    with session_scope(any_engine) as session:  # a run ended is no longer the active one
        _, found = contacts.contact_with_active_run(session=session, urn="telegram:1")
        assert found is not None
        surveys.end_run(session=session, run=found, status="submitted", now=NOW)
    _, ended = in_tx(
        any_engine, lambda s: contacts.contact_with_active_run(session=s, urn="telegram:1")
    )
    assert ended is None


def test_direct_statement_errors_are_sqlalchemy_errors(any_engine: Engine) -> None:
    """A constraint broken on the driver's cursor raises SQLAlchemy's IntegrityError."""
    new_contact(any_engine, "telegram:1")
    with pytest.raises(IntegrityError), session_scope(any_engine) as session:
        contacts.create_contact(session=session, urn="telegram:1", now=NOW)


def test_channel_of_rejects_urn_without_scheme(any_engine: Engine) -> None:
    """channel_of needs `scheme:address`; get_or_create_contact stores nothing for a bad URN."""
    assert contacts.channel_of("whatsapp:+232:1") == "whatsapp"
    for urn in ("12345", ":12345", ""):
        with pytest.raises(ValueError):
            contacts.channel_of(urn)
        with pytest.raises(ValueError), session_scope(any_engine) as session:
            contacts.get_or_create_contact(session=session, urn=urn, now=NOW)
        with session_scope(any_engine) as session:
            assert contacts.get_contact_by_urn(session=session, urn=urn) is None


def test_erase_contact_blanks_personal_fields_and_removes_urns(any_engine: Engine) -> None:
    """Erasure clears every personal field, stamps erased_at and detaches all URNs."""
    contact_id = new_contact(any_engine, "telegram:1")
    with session_scope(any_engine) as session:
        contacts.add_urn(session=session, contact_id=contact_id, urn="whatsapp:+23276000000")
        contact = contacts.get_contact(session=session, contact_id=contact_id)
        assert contact is not None
        contacts.update_contact(
            session=session,
            contact=contact,
            name="Amina Kamara",
            role="official",
            organisation="Koidu City Council",
            city_name="Koidu",
            city_geonameid=2407790,
            country_code="SL",
            timezone="Africa/Freetown",
            consent_version="v1",
            consent_at=NOW,
            consent_refused_at=NOW,
            last_inbound_at=NOW,
        )
    with session_scope(any_engine) as session:
        contact = contacts.get_contact(session=session, contact_id=contact_id)
        assert contact is not None
        contacts.erase_contact(session=session, contact=contact, now=NOW + timedelta(minutes=5))
    erased = read_contact(any_engine, contact_id)
    for field in (
        *contacts.PROFILE_FIELDS,
        "consent_version",
        "consent_at",
        "consent_refused_at",
    ):
        assert getattr(erased, field) is None, field
    assert erased.erased_at == NOW + timedelta(minutes=5)
    with session_scope(any_engine) as session:
        assert contacts.urns_of(session=session, contact_id=contact_id) == []
        assert contacts.get_contact_by_urn(session=session, urn="telegram:1") is None
        assert contacts.get_contact_by_urn(session=session, urn="whatsapp:+23276000000") is None
        fresh, created = contacts.get_or_create_contact(session=session, urn="telegram:1", now=NOW)
        assert created is True and fresh.id != contact_id


def test_set_staff_roles_creates_and_updates_contacts(any_engine: Engine) -> None:
    """set_staff_roles gives each URN's contact its role, creating missing contacts."""
    existing = new_contact(any_engine, "telegram:1")
    roles = {"telegram:1": "admin", "whatsapp:+23276000000": "viewer"}
    assert in_tx(
        any_engine, lambda s: contacts.set_staff_roles(session=s, urns=roles, now=NOW)
    ) == len(roles)
    assert read_contact(any_engine, existing).staff_role == "admin"
    with session_scope(any_engine) as session:
        new = contacts.get_contact_by_urn(session=session, urn="whatsapp:+23276000000")
        assert new is not None and new.staff_role == "viewer" and new.id != existing
    in_tx(
        any_engine,
        lambda s: contacts.set_staff_roles(session=s, urns={"telegram:1": "viewer"}, now=NOW),
    )
    assert read_contact(any_engine, existing).staff_role == "viewer"
