"""Donation requests in chat: the feature module handlers/features.py loads by name.

Importing it registers every donation dialog with the router: filing a request
(handlers/donations_filing.py) and checking it with the official (donations_checks.py),
following requests (donations_status.py), answering staff questions and confirming receipt or
reporting a problem (donations_replies.py), and the staff commands (donations_staff.py). The
operations they share with the CLI are in donations_review.py, donations_pledging.py and
donations_shipping.py.
"""

from __future__ import annotations

from handlers import (  # noqa: F401  (importing them registers their handlers)
    donations_checks,
    donations_filing,
    donations_replies,
    donations_staff,
    donations_status,
)
