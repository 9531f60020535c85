"""`citybot donations …`: staff work on requests, pledges and shipments from the command line.

    citybot donations requests [--status submitted]      the review queue (or any status)
    citybot donations show R-7K3F                        one request with lines and notes
    citybot donations approve R-7K3F
    citybot donations decline R-7K3F --reason "…"
    citybot donations ask R-7K3F --question "…"
    citybot donations donor "Henan Provincial Government" --country CN --kind government
    citybot donations donors
    citybot donations pledge D3 surgical_mask=10000 [--request R-7K3F] [--logistics]
    citybot donations matches [--confirm ID [--quantity N] | --reject ID]
    citybot donations ship P-4HXM [--part MATCH=QTY …]
    citybot donations track S-9QZC arrived [--at 2026-11-02T10:00] [--note …] [--photo …]
                                           [--delivered LINE=QTY …]
    citybot donations impact [--since 2020-01] [--until 2021-12] [--by city]
                             [--trace country=GM [--item surgical_mask]] [--csv FILE]
    citybot donations demo                                the 2020–2021 deliveries as records
    citybot donations check                               quantity invariants

Every staff action is audited (actor: the CLI); officials are told through the outbox, which
`citybot serve` drains.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bot.cli_donations_impact import check, demo, impact
from bot.cli_donations_review import approve, ask, decline, list_requests, show
from bot.cli_donations_supply import add_donor, add_pledge, list_donors, matches, ship, track
from bot.settings import Settings

COMMANDS = ("donations",)


def register(sub: Any) -> None:
    """Add `donations` and its actions to the CLI."""
    parser = sub.add_parser("donations", help="donation requests, pledges, shipments, impact")
    actions = parser.add_subparsers(dest="donations_action", required=True)
    listing = actions.add_parser("requests", help="requests waiting for review (or by status)")
    listing.add_argument("--status", action="append")
    actions.add_parser("show", help="one request").add_argument("ref")
    actions.add_parser("approve", help="approve a request").add_argument("ref")
    decline = actions.add_parser("decline", help="decline a request with a reason")
    decline.add_argument("ref")
    decline.add_argument("--reason", required=True)
    ask = actions.add_parser("ask", help="ask the requesting official for information")
    ask.add_argument("ref")
    ask.add_argument("--question", required=True)
    donor = actions.add_parser("donor", help="record a donor partner")
    donor.add_argument("name")
    donor.add_argument("--country")
    donor.add_argument("--kind", default="other")
    actions.add_parser("donors", help="list donor partners")
    pledge = actions.add_parser("pledge", help="record a pledge: DONOR ITEM=QTY …")
    pledge.add_argument("donor")
    pledge.add_argument("items", nargs="+", metavar="ITEM=QTY")
    pledge.add_argument("--request")
    pledge.add_argument("--logistics", action="store_true")
    pledge.add_argument("--note")
    matches = actions.add_parser("matches", help="propose, confirm or reject matches")
    matches.add_argument("--confirm", type=int)
    matches.add_argument("--quantity", type=int)
    matches.add_argument("--reject", type=int)
    ship = actions.add_parser("ship", help="ship a pledge's confirmed matches")
    ship.add_argument("pledge")
    ship.add_argument("--part", action="append", default=[], metavar="MATCH=QTY")
    ship.add_argument("--carrier")
    track = actions.add_parser("track", help="record a shipment status event")
    track.add_argument("shipment")
    track.add_argument("status")
    track.add_argument("--at")
    track.add_argument("--note")
    track.add_argument("--photo")
    track.add_argument("--delivered", action="append", default=[], metavar="LINE=QTY")
    impact = actions.add_parser("impact", help="the impact report from shipment records")
    impact.add_argument("--since", help="first month, YYYY-MM")
    impact.add_argument("--until", help="last month, YYYY-MM")
    impact.add_argument(
        "--by", action="append", choices=("item", "country", "city", "donor", "year", "month")
    )
    impact.add_argument("--trace", metavar="DIMENSION=KEY", help="list the shipments of a figure")
    impact.add_argument("--item", help="with --trace: one item only")
    impact.add_argument("--csv", help="write every figure to this CSV file")
    actions.add_parser("demo", help="load the 2020–2021 deliveries described in the seeds")
    actions.add_parser("check", help="check the quantity invariants")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one donations action; 0 on success, 1 when refused, 2 on bad input."""
    from bot.cli import prepare_database
    from bot.clock import SystemClock
    from storage.db import session_scope
    from storage.donations import DonationError

    engine = prepare_database(settings)
    now = SystemClock().now()
    action = args.donations_action.replace("-", "_")
    try:
        with session_scope(engine) as session:
            return int(ACTIONS[action](session, args, now))
    except DonationError as error:
        from handlers.donations_text import error_text

        sys.stderr.write(f"refused: {error_text(error, 'en')}\n")
        return 1
    except ValueError as error:
        sys.stderr.write(f"citybot donations: {error}\n")
        return 2


ACTIONS = {  # action → (session, args, now) → exit code
    "requests": list_requests,
    "show": show,
    "approve": approve,
    "decline": decline,
    "ask": ask,
    "donor": add_donor,
    "donors": list_donors,
    "pledge": add_pledge,
    "matches": matches,
    "ship": ship,
    "track": track,
    "impact": impact,
    "demo": demo,
    "check": check,
}
