"""Webinar operations shared by the chat, the CLI and the scheduler.

Creating, editing, cancelling, registering and unregistering keep one `webinar_reminder` row
per scheduled message up to date (`storage/webinars.py`); `deliver_due`, the sweep's work
in handlers/webinars_sweep.py, turns due rows into outbox messages.

This module is the feature's front door; the code lives in:

- handlers/webinars_types.py: `WebinarError`, `WebinarSpec`, `Outcome`, `EditResult`, the
  field sets and `length` / `quiet_of`;
- handlers/webinars_checks.py: checking a webinar's values and reading staff input
  (`parse_change`, `parse_translations`, `parse_time_of_day`, `focus_areas`);
- handlers/webinars_lifecycle.py: `create_webinar`, `edit_webinar`, `cancel_webinar`;
- handlers/webinars_register.py: `registration_state`, `register`, `unregister`;
- handlers/webinars_schedule.py: `schedule_registration` and the notices to registrants.
"""

from __future__ import annotations

import logging

from handlers.webinars_checks import (
    _check,
    _check_url,
    _values,
    focus_areas,
    parse_change,
    parse_time_of_day,
    parse_translations,
)
from handlers.webinars_lifecycle import cancel_webinar, create_webinar, edit_webinar
from handlers.webinars_register import register, registration_state, unregister
from handlers.webinars_schedule import (
    _new_row,
    _notify,
    _reschedule,
    _update,
    schedule_registration,
)
from handlers.webinars_types import (
    ALL_KINDS,
    NOTIFY_FIELDS,
    RESCHEDULE_FIELDS,
    EditResult,
    Outcome,
    WebinarError,
    WebinarSpec,
    length,
    quiet_of,
)

logger = logging.getLogger(__name__)  # the logger webinars_lifecycle and webinars_register use

__all__ = [
    "ALL_KINDS",
    "NOTIFY_FIELDS",
    "RESCHEDULE_FIELDS",
    "EditResult",
    "Outcome",
    "WebinarError",
    "WebinarSpec",
    "_check",
    "_check_url",
    "_new_row",
    "_notify",
    "_reschedule",
    "_update",
    "_values",
    "cancel_webinar",
    "create_webinar",
    "edit_webinar",
    "focus_areas",
    "length",
    "parse_change",
    "parse_time_of_day",
    "parse_translations",
    "quiet_of",
    "register",
    "registration_state",
    "schedule_registration",
    "unregister",
]
