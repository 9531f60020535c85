"""Status values of webinar registrations and their scheduled messages."""

REGISTERED = "registered"
UNREGISTERED = "unregistered"
SCHEDULED, QUEUED, SKIPPED, CANCELLED = "scheduled", "queued", "skipped", "cancelled"
