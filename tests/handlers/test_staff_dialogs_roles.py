"""Staff in chat: roles given and taken by admins only, the staff help, the role checked again."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.clock import FixedClock
from storage import contacts
from storage.db import session_scope
from storage.staff_models import Broadcast
from tests.handlers.staff_cases import ADMIN, STAFF, actions, make_staff, staff_dialog
from tests.handlers.staff_cases import officials as officials  # a fixture
from tests.support import Dialog, fragment


def test_roles_are_given_and_taken_by_admins_only(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """Admins promote and demote, audited; staff may not; the last admin stays."""
    make_staff(engine, clock, {ADMIN: "admin", STAFF: "staff"})
    admin, staff = dialog(ADMIN), dialog(STAFF)
    staff.say("/promote telegram:77 admin")
    assert fragment("help_text", "en") in staff.text()
    admin.say("/promote telegram:77 admin")
    assert "is now admin" in admin.text()
    admin.say("/team")
    assert "telegram:77" in admin.text() and "console:staff" in admin.text()
    admin.say("/demote telegram:77")
    assert "no longer staff" in admin.text()
    admin.say("/demote console:admin")
    assert "last admin" in admin.text()
    admin.say("/promote nonsense")
    assert "Usage: /promote" in admin.text() or "no such contact" in admin.text()
    admin.say("/audit 50 staff_")
    assert "staff_promote" in admin.text() and "staff_demote" in admin.text()
    trail = actions(engine)
    assert trail.count("staff_denied") == 1
    assert {"staff_promote", "staff_demote", "staff:promote", "staff:demote"} <= set(trail)
    with session_scope(engine) as session:
        target = contacts.get_contact_by_urn(session=session, urn="telegram:77")
        assert target is not None and target.staff_role is None


def test_staff_help_lists_what_the_role_may_run(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """/staff shows staff commands; admin-only ones only to admins."""
    make_staff(engine, clock, {ADMIN: "admin", STAFF: "staff"})
    staff, admin = dialog(STAFF), dialog(ADMIN)
    staff.say("/staff")
    assert "/broadcast — compose a broadcast" in staff.text()
    assert "/promote" not in staff.text()
    admin.say("/staff")
    assert "/promote — give a contact a staff role" in admin.text()


def test_a_form_submitted_after_losing_the_role_is_refused(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock, officials: dict[str, int]
) -> None:
    """The role is checked again when the compose form is submitted."""
    d = staff_dialog(dialog, engine, clock)
    d.say("/broadcast")
    for line in ("T", "1", "Hello", "1"):
        d.say(line)
    with session_scope(engine) as session:
        contact = contacts.get_contact_by_urn(session=session, urn=STAFF)
        assert contact is not None
        contacts.update_contact(session=session, contact=contact, staff_role=None)
    d.say(tap="✅ Submit")
    assert any("Only programme staff" in r.text for r in d.replies[-2:])
    with session_scope(engine) as session:
        assert session.exec(select(Broadcast)).first() is None
    assert actions(engine)[-1] == "staff_denied"


def test_the_last_admin_cannot_make_themselves_staff(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """Promoting the only admin down to staff is refused like demoting them."""
    d = staff_dialog(dialog, engine, clock, ADMIN, "admin")
    d.say("/promote console:admin staff")
    assert "last admin" in d.text()
