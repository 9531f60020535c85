"""What the staff chat commands share: who is staff now, a staff reply, a message outside it."""

from __future__ import annotations

import logging

from handlers.context import Ctx
from handlers.messages import Outgoing
from handlers.notify import queue_for_contact
from storage import staff as staff_db

# The staff commands log as `handlers.staff`, as they did before the module was split.
logger = logging.getLogger("handlers.staff")


def _is_staff(ctx: Ctx) -> bool:
    """Say whether the contact is staff or admin now."""
    return ctx.contact.staff_role in staff_db.ROLES


def _say(text: str) -> list[Outgoing]:
    """A staff reply."""
    return [Outgoing(text=text, kind="staff")]


def _post(ctx: Ctx, text: str, key: str) -> None:
    """Queue a message to the staff member outside the reply (from a form submission)."""
    queue_for_contact(
        session=ctx.session,
        contact=ctx.contact,
        message=Outgoing(text=text, kind="staff"),
        kind="staff",
        key=key,
        now=ctx.now,
    )
