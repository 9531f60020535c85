"""Storage contract, audit: entries recorded and listed oldest first, optionally by action."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from storage import audit
from storage.db import session_scope
from tests.storage.contract_cases import (
    NOW,
    new_contact,
)

pytestmark = pytest.mark.postgres


def test_audit_record_and_entries(any_engine: Engine) -> None:
    """Audit entries are appended and listed oldest first, optionally by action."""
    staff = new_contact(any_engine, "telegram:staff")
    with session_scope(any_engine) as session:
        audit.record(
            session=session,
            action="export",
            now=NOW,
            actor_contact_id=staff,
            subject="city_profile",
            details={"rows": 12, "format": "csv"},
        )
        audit.record(session=session, action="forget", now=NOW + timedelta(minutes=1))
    with session_scope(any_engine) as session:
        audit.record(session=session, action="export", now=NOW + timedelta(minutes=2))
    with session_scope(any_engine) as session:
        everything = audit.entries(session=session)
        assert [e.action for e in everything] == ["export", "forget", "export"]
        first = everything[0]
        assert (first.actor_contact_id, first.subject) == (staff, "city_profile")
        assert first.details == {"rows": 12, "format": "csv"}
        assert first.at == NOW
        assert everything[1].details == {} and everything[1].actor_contact_id is None
        exports = audit.entries(session=session, action="export")
        assert [e.at for e in exports] == [NOW, NOW + timedelta(minutes=2)]
        assert audit.entries(session=session, action="nothing") == []
