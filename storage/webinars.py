"""Webinars, registrations and their scheduled messages (data access, keyword-only), re-exported.

What lives where (import from here; the modules are the implementation):

- `webinars_models`: the table models (Webinar, WebinarRegistration, WebinarReminder).
- `webinars_states`: the status values (REGISTERED, UNREGISTERED; SCHEDULED, QUEUED, SKIPPED,
  CANCELLED for scheduled messages).
- `webinars_events`: creating, loading, saving and listing webinars.
- `webinars_registrations`: registering and withdrawing, counting registrations, registrants,
  post-webinar feedback, forgetting a contact's certificate names.
- `webinars_reminders`: scheduled messages: adding, listing, cancelling, claiming due ones,
  withdrawing early ones from the outbox, and the due siblings (Sibling) the sweep checks.
- `webinars_lookups`: bulk loaders for the sweep (webinars, registrations, contacts by id; the
  outbox id queued under a key).
- `webinars_stats`: registration and reminder statistics and the programme-wide summary.
"""

from storage.webinars_events import (
    create_webinar,
    get_webinar,
    list_webinars,
    save_webinar,
    upcoming_webinars,
)
from storage.webinars_lookups import (
    contacts_by_id,
    outbox_id_for_key,
    registrations_by_id,
    webinars_by_id,
)
from storage.webinars_registrations import (
    active_registrations,
    add_registration,
    count_registered,
    forget_contact,
    get_registration,
    get_registration_by_id,
    record_feedback,
    registered_webinar_ids,
    registrant_contact_ids,
    set_unregistered,
)
from storage.webinars_reminders import (
    Sibling,
    add_reminders,
    cancel_reminders,
    claim_due,
    due_siblings,
    find_reminder,
    registrations_with,
    reminders_of,
    save_reminder,
    withdraw_early,
)
from storage.webinars_states import (
    CANCELLED,
    QUEUED,
    REGISTERED,
    SCHEDULED,
    SKIPPED,
    UNREGISTERED,
)
from storage.webinars_stats import registration_stats, reminder_stats, summary

__all__ = [
    "CANCELLED",
    "QUEUED",
    "REGISTERED",
    "SCHEDULED",
    "SKIPPED",
    "Sibling",
    "UNREGISTERED",
    "active_registrations",
    "add_registration",
    "add_reminders",
    "cancel_reminders",
    "claim_due",
    "contacts_by_id",
    "count_registered",
    "create_webinar",
    "due_siblings",
    "find_reminder",
    "forget_contact",
    "get_registration",
    "get_registration_by_id",
    "get_webinar",
    "list_webinars",
    "outbox_id_for_key",
    "record_feedback",
    "registered_webinar_ids",
    "registrant_contact_ids",
    "registration_stats",
    "registrations_by_id",
    "registrations_with",
    "reminder_stats",
    "reminders_of",
    "save_reminder",
    "save_webinar",
    "set_unregistered",
    "summary",
    "upcoming_webinars",
    "webinars_by_id",
    "withdraw_early",
]
