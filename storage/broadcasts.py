"""Broadcasts: audiences evaluated in SQL, recipients materialised, outbox rows queued in batches.

The code lives in four modules; this one re-exports their public names, so callers keep
importing `storage.broadcasts`:

- `storage.broadcasts_records`: broadcast rows (create, get, save, list, due, being sent) and
  `STATUSES`.
- `storage.broadcasts_audience`: `Audience`, `AudienceRow`, `preview`, `materialise` (the
  recipients, written with one `INSERT … SELECT` per chunk of an id filter) and the id sets
  behind segment filters (`focus_contact_ids`, `city_contact_ids`).
- `storage.broadcasts_queue`: sending state: outbox rows keyed `bc:<broadcast>:<contact>`
  (`…:r<n>` for the n-th retry) queued in batches, retries, cancelling and releasing; `FAILED`.
- `storage.broadcasts_stats`: `BroadcastStats`, `stats`, `recipients_of`, `is_queued`;
  `WAITING`.

The table models (`Broadcast`, `BroadcastRecipient`) are in `storage.staff_models`.
"""

from __future__ import annotations

from storage.broadcasts_audience import (
    ID_CHUNK,
    Audience,
    AudienceRow,
    city_contact_ids,
    focus_contact_ids,
    materialise,
    preview,
)
from storage.broadcasts_queue import (
    FAILED,
    cancel_pending,
    message_key,
    queue_batch,
    release_in_flight,
    retry_failed,
)
from storage.broadcasts_records import (
    STATUSES,
    create_broadcast,
    due_broadcasts,
    get_broadcast,
    latest_draft,
    list_broadcasts,
    save_broadcast,
    sending_broadcasts,
)
from storage.broadcasts_stats import WAITING, BroadcastStats, is_queued, recipients_of, stats

__all__ = [
    "FAILED",
    "ID_CHUNK",
    "STATUSES",
    "WAITING",
    "Audience",
    "AudienceRow",
    "BroadcastStats",
    "cancel_pending",
    "city_contact_ids",
    "create_broadcast",
    "due_broadcasts",
    "focus_contact_ids",
    "get_broadcast",
    "is_queued",
    "latest_draft",
    "list_broadcasts",
    "materialise",
    "message_key",
    "preview",
    "queue_batch",
    "recipients_of",
    "release_in_flight",
    "retry_failed",
    "save_broadcast",
    "sending_broadcasts",
    "stats",
]
