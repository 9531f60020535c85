"""Composing broadcasts: drafts, scheduling, and what every staff action on one shares.

Used by the staff chat commands (handlers/staff.py) and the CLI (bot/cli_staff_*.py); every
function takes the session and the time explicitly. Each recipient gets the text in their
language, else in the broadcast's base language (the configured default when it has a text).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import Session

from handlers.broadcasts_segments import clean_segment
from storage import audit
from storage import broadcasts as db
from storage.staff_models import Broadcast

logger = logging.getLogger(__name__)


class BroadcastError(ValueError):
    """Something a staff member asked that cannot be done; the key is a UI string."""

    def __init__(self, key: str, **values: Any) -> None:
        """Keep the UI string key and its values."""
        super().__init__(key)
        self.key = key
        self.values = values


def wrong_status(broadcast: Broadcast) -> BroadcastError:
    """The error for an action the broadcast's status does not allow."""
    return BroadcastError("staff_bc_wrong_status", id=broadcast.id, status=broadcast.status)


def record_action(
    *,
    session: Session,
    broadcast: Broadcast,
    action: str,
    now: datetime,
    actor: int | None,
    via: str,
    **details: Any,
) -> None:
    """Audit a staff action on a broadcast (`broadcast_<action>`, how it was done, details)."""
    audit.record(
        session=session,
        action=f"broadcast_{action}",
        now=now,
        actor_contact_id=actor,
        subject=f"broadcast:{broadcast.id}",
        details={"via": via, **details},
    )


def change_status(
    *,
    session: Session,
    broadcast: Broadcast,
    now: datetime,
    actor: int | None,
    via: str,
    action: str,
    fields: dict[str, Any],
    **details: Any,
) -> None:
    """Save a broadcast's new status (and its time), and audit the staff action that set it."""
    db.save_broadcast(session=session, broadcast=broadcast, now=now, **fields)
    record_action(
        session=session, broadcast=broadcast, action=action, now=now, actor=actor, via=via,
        **details,
    )  # fmt: skip


def base_language(texts: dict[str, str], default: str) -> str:
    """The language of the text for contacts whose language has none: the default if given."""
    if default in texts:
        return default
    return next(iter(texts))


def create_draft(
    *,
    session: Session,
    title: str,
    texts: dict[str, str],
    segment: dict[str, Any],
    default_language: str,
    now: datetime,
    created_by: int | None,
    via: str,
    unknown_values: Iterable[str] = (),
) -> Broadcast:
    """Store a draft broadcast and audit it."""
    texts = {lang: text.strip() for lang, text in texts.items() if text and text.strip()}
    if not texts:
        raise BroadcastError("staff_bc_no_text")
    spec = clean_segment(segment)
    unknown = list(unknown_values)
    if unknown:
        spec["_unknown"] = unknown
    broadcast = db.create_broadcast(
        session=session,
        title=title.strip() or texts[base_language(texts, default_language)][:60],
        texts=texts,
        base_language=base_language(texts, default_language),
        segment=spec,
        now=now,
        created_by=created_by,
        created_via=via,
        notify_contact_id=created_by if via == "chat" else None,
    )
    record_action(
        session=session, broadcast=broadcast, action="created", now=now, actor=created_by,
        via=via, languages=sorted(texts), segment=spec,
    )  # fmt: skip
    logger.info("broadcast drafted broadcast=%s actor=%s", broadcast.id, created_by)
    return broadcast


def schedule(
    *,
    session: Session,
    broadcast: Broadcast,
    at: datetime | None,
    now: datetime,
    actor: int | None,
    via: str,
) -> Broadcast:
    """Confirm a draft: send it at `at` (now when None or past)."""
    if broadcast.status not in ("draft", "scheduled"):
        raise wrong_status(broadcast)
    when = at if at is not None and at > now else now
    change_status(
        session=session, broadcast=broadcast, now=now, actor=actor, via=via, action="scheduled",
        fields={"status": "scheduled", "scheduled_at": when}, at=when.isoformat(),
    )  # fmt: skip
    logger.info("broadcast scheduled broadcast=%s actor=%s", broadcast.id, actor)
    return broadcast
