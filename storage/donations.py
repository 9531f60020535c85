"""Donations storage: requests, pledges, matches and shipments, re-exported from small modules.

Every status change goes through an explicit transition table; a forbidden one raises
`DonationError` (a UI string key and its values) before anything is written. Quantities per
request line hold, after every operation (a property test checks it):

    0 ≤ delivered ≤ shipped ≤ pledged ≤ requested

where pledged is the sum of the line's confirmed matches (a pledge never covers more than was
asked: the rest of it stays available for other lines), shipped the sum of its quantities in
shipments not cancelled, and delivered what arrived. Pledge lines hold shipped ≤ matched ≤
quantity the same way. Each operation runs in a savepoint, so an error leaves nothing behind.

What lives where (import from here; the modules are the implementation):

- `donations_models`: the table models (DonationRequest, DonationPledge, DonationShipment …).
- `donations_states`: DonationError, the status enums (and their R/P/M/S aliases), the
  transition tables, the status sets (OPEN_REQUEST, UNDER_WAY …) and URGENCIES.
- `donations_refs`: make_ref, parse_ref (R-7K3F style references).
- `donations_plumbing`: LineInput and the private savepoint and locked-read helpers.
- `donations_release`: private helpers giving back the unshipped part of confirmed matches.
- `donations_requests`: filing, looking up, editing requests and the request workflow.
- `donations_notes`: notes on requests (questions, answers, reasons, receipts, problems).
- `donations_pledges`: donors, pledges and the pledge workflow.
- `donations_matches`: proposing, confirming, rejecting and linking matches; match candidates.
- `donations_shipments`: shipments, their lines and status events, delivered quantities.
- `donations_updates`: receipts, problems and delivery updates for the cities.
- `donations_contacts`: staff and requesters to message, survey responses to convert.
- `donations_reports`: impact figures, the shipments behind a figure, the staff summary.
- `donations_invariants`: check_invariants (every quantity rule over every row).
"""

from storage.donations_contacts import (
    contacts_with_open_requests,
    get_survey_response,
    latest_unconverted_survey,
    staff_contact_ids,
)
from storage.donations_invariants import check_invariants
from storage.donations_matches import (
    Candidate,
    confirm_match,
    drop_proposals,
    get_match,
    link,
    match_candidates,
    matches,
    propose_match,
    reject_match,
)
from storage.donations_notes import add_note, get_note, mark_answered, notes_of, open_question
from storage.donations_pledges import (
    create_pledge,
    donors,
    ensure_donor,
    find_donor,
    get_donor,
    get_pledge,
    get_pledge_line,
    pledge_by_ref,
    pledge_lines,
    pledges,
    set_pledge_status,
)
from storage.donations_plumbing import LineInput
from storage.donations_refs import make_ref, parse_ref
from storage.donations_reports import (
    DIMENSIONS,
    Figure,
    Impact,
    ShipmentRow,
    figure_shipments,
    impact,
    summary,
)
from storage.donations_requests import (
    create_request,
    get_request,
    get_request_line,
    latest_draft,
    open_requests_for_city,
    request_by_ref,
    request_lines,
    requests_by_status,
    requests_of_contact,
    set_line_quantity,
    set_request_status,
    update_request,
)
from storage.donations_shipments import (
    create_shipment,
    get_event,
    get_shipment,
    record_event,
    requests_of_shipment,
    set_delivered,
    shipment_by_ref,
    shipment_events,
    shipment_lines,
    shipments_of_request,
)
from storage.donations_states import (
    CLOSED_REQUEST,
    DELIVERED,
    EDITABLE_REQUEST,
    MATCH_TRANSITIONS,
    OPEN_PLEDGE,
    OPEN_REQUEST,
    PLEDGE_TRANSITIONS,
    REQUEST_TRANSITIONS,
    SHIPMENT_TRANSITIONS,
    UNDER_WAY,
    URGENCIES,
    DonationError,
    M,
    MatchStatus,
    P,
    PledgeStatus,
    R,
    RequestStatus,
    S,
    ShipmentStatus,
)
from storage.donations_updates import (
    confirm_receipt,
    latest_event_for_contact,
    mark_notified,
    mark_problem,
    unnotified_events,
)

__all__ = [
    "CLOSED_REQUEST",
    "Candidate",
    "DELIVERED",
    "DIMENSIONS",
    "DonationError",
    "EDITABLE_REQUEST",
    "Figure",
    "Impact",
    "LineInput",
    "M",
    "MATCH_TRANSITIONS",
    "MatchStatus",
    "OPEN_PLEDGE",
    "OPEN_REQUEST",
    "P",
    "PLEDGE_TRANSITIONS",
    "PledgeStatus",
    "R",
    "REQUEST_TRANSITIONS",
    "RequestStatus",
    "S",
    "SHIPMENT_TRANSITIONS",
    "ShipmentRow",
    "ShipmentStatus",
    "UNDER_WAY",
    "URGENCIES",
    "add_note",
    "check_invariants",
    "confirm_match",
    "confirm_receipt",
    "contacts_with_open_requests",
    "create_pledge",
    "create_request",
    "create_shipment",
    "donors",
    "drop_proposals",
    "ensure_donor",
    "figure_shipments",
    "find_donor",
    "get_donor",
    "get_event",
    "get_match",
    "get_note",
    "get_pledge",
    "get_pledge_line",
    "get_request",
    "get_request_line",
    "get_shipment",
    "get_survey_response",
    "impact",
    "latest_draft",
    "latest_event_for_contact",
    "latest_unconverted_survey",
    "link",
    "make_ref",
    "mark_answered",
    "mark_notified",
    "mark_problem",
    "match_candidates",
    "matches",
    "notes_of",
    "open_question",
    "open_requests_for_city",
    "parse_ref",
    "pledge_by_ref",
    "pledge_lines",
    "pledges",
    "propose_match",
    "record_event",
    "reject_match",
    "request_by_ref",
    "request_lines",
    "requests_by_status",
    "requests_of_contact",
    "requests_of_shipment",
    "set_delivered",
    "set_line_quantity",
    "set_pledge_status",
    "set_request_status",
    "shipment_by_ref",
    "shipment_events",
    "shipment_lines",
    "shipments_of_request",
    "staff_contact_ids",
    "summary",
    "unnotified_events",
    "update_request",
]
