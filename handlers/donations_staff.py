"""Donation staff commands in chat (role-checked and audited by the router; buttons here).

/review [R-…]           requests waiting for review, or one request with its buttons
/approve R-…            approve (the official is told)
/decline R-… reason     decline with a reason (without one: the reason is asked)
/askinfo R-… question   ask the official (the answer comes back onto the request)
/donor [name; CC; kind] list donors, or record one
/pledge D3 item=qty … [R-…] [logistics]   record a pledge (for a request, or unsolicited)
/matches                propose matches between open request lines and pledges
/ship P-…               ship a pledge's confirmed matches (one shipment per city)
/track S-… status [photo=URL] [note]      record a shipment status; the city is told
/impact [YYYY | YYYY-MM YYYY-MM | shipments DIMENSION KEY [ITEM]]   the impact report

handlers/donations.py imports this module; importing it registers the commands, buttons and
form handler, in the order below (import from here; the modules are the implementation):

- `donations_staff_plumbing`: refusals, reference arguments, role-checked staff buttons.
- `donations_staff_review`: the staff card, /review, /approve, /decline, /askinfo, `ds:` buttons.
- `donations_staff_pledges`: /donor, /pledge, /matches and the `dm:` match buttons.
- `donations_staff_shipments`: /ship, /track and /impact.
"""

import logging

# Imported in the order their commands, buttons and form handler were always registered in.
# isort: off
from handlers.donations_staff_plumbing import T, _allowed, _error, _request, _split, _staff_button
from handlers.donations_staff_review import (
    REVIEWABLE,
    _approve,
    _note,
    _note_command,
    _note_form,
    _review_button,
    _staff_note,
    approve,
    ask_info,
    decline,
    review,
    staff_card,
)
from handlers.donations_staff_pledges import (
    _ITEM,
    _match_button,
    donor,
    match_message,
    pledge,
    propose_matches,
)
from handlers.donations_staff_shipments import _MONTH, STATUS_WORDS, impact, ship, track

# isort: on

logger = logging.getLogger(__name__)

__all__ = [
    "REVIEWABLE",
    "STATUS_WORDS",
    "T",
    "_ITEM",
    "_MONTH",
    "_allowed",
    "_approve",
    "_error",
    "_match_button",
    "_note",
    "_note_command",
    "_note_form",
    "_request",
    "_review_button",
    "_split",
    "_staff_button",
    "_staff_note",
    "approve",
    "ask_info",
    "decline",
    "donor",
    "impact",
    "logger",
    "match_message",
    "pledge",
    "propose_matches",
    "review",
    "ship",
    "staff_card",
    "track",
]
