"""Donation statuses, their transition tables and the error a refused operation raises."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class DonationError(Exception):
    """A refused operation: `key` is a UI string (handlers/strings.yaml), `values` fill it."""

    def __init__(self, key: str, **values: Any) -> None:
        """Keep the key and its values."""
        super().__init__(key)
        self.key = key
        self.values = values


class RequestStatus(StrEnum):
    """Where a request stands in its workflow."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    INFO_REQUESTED = "info_requested"
    APPROVED = "approved"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class PledgeStatus(StrEnum):
    """Where a pledge stands."""

    OFFERED = "offered"
    ACCEPTED = "accepted"
    FULFILLED = "fulfilled"
    WITHDRAWN = "withdrawn"


class MatchStatus(StrEnum):
    """A proposed or decided link between a pledge line and a request line."""

    PROPOSED = "proposed"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    RELEASED = "released"


class ShipmentStatus(StrEnum):
    """Where a shipment stands; each status is reached once at most."""

    PREPARING = "preparing"
    DISPATCHED = "dispatched"
    IN_TRANSIT = "in_transit"
    CUSTOMS = "customs"
    ARRIVED = "arrived"
    HANDED_OVER = "handed_over"
    CANCELLED = "cancelled"


R, P, M, S = RequestStatus, PledgeStatus, MatchStatus, ShipmentStatus

REQUEST_TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    R.DRAFT: frozenset({R.SUBMITTED, R.CANCELLED}),
    R.SUBMITTED: frozenset({R.APPROVED, R.DECLINED, R.INFO_REQUESTED, R.CANCELLED}),
    R.INFO_REQUESTED: frozenset({R.SUBMITTED, R.APPROVED, R.DECLINED, R.CANCELLED}),
    R.APPROVED: frozenset({R.COMPLETED, R.CANCELLED}),
    R.DECLINED: frozenset(),
    R.CANCELLED: frozenset(),
    R.COMPLETED: frozenset(),
}
PLEDGE_TRANSITIONS: dict[PledgeStatus, frozenset[PledgeStatus]] = {
    P.OFFERED: frozenset({P.ACCEPTED, P.WITHDRAWN}),
    P.ACCEPTED: frozenset({P.FULFILLED, P.WITHDRAWN}),
    P.FULFILLED: frozenset(),
    P.WITHDRAWN: frozenset(),
}
MATCH_TRANSITIONS: dict[MatchStatus, frozenset[MatchStatus]] = {
    M.PROPOSED: frozenset({M.CONFIRMED, M.REJECTED}),
    M.CONFIRMED: frozenset({M.RELEASED}),
    M.REJECTED: frozenset(),
    M.RELEASED: frozenset(),
}
SHIPMENT_TRANSITIONS: dict[ShipmentStatus, frozenset[ShipmentStatus]] = {
    S.PREPARING: frozenset({S.DISPATCHED, S.CANCELLED}),
    S.DISPATCHED: frozenset({S.IN_TRANSIT, S.CUSTOMS, S.ARRIVED, S.CANCELLED}),
    S.IN_TRANSIT: frozenset({S.CUSTOMS, S.ARRIVED, S.CANCELLED}),
    S.CUSTOMS: frozenset({S.ARRIVED, S.CANCELLED}),
    S.ARRIVED: frozenset({S.HANDED_OVER}),
    S.HANDED_OVER: frozenset(),
    S.CANCELLED: frozenset(),
}

OPEN_REQUEST = frozenset({R.SUBMITTED, R.INFO_REQUESTED, R.APPROVED})
CLOSED_REQUEST = frozenset({R.DECLINED, R.CANCELLED, R.COMPLETED})
EDITABLE_REQUEST = frozenset({R.DRAFT, R.SUBMITTED, R.INFO_REQUESTED})
OPEN_PLEDGE = frozenset({P.OFFERED, P.ACCEPTED})
DELIVERED = frozenset({S.ARRIVED, S.HANDED_OVER})
UNDER_WAY = frozenset({S.PREPARING, S.DISPATCHED, S.IN_TRANSIT, S.CUSTOMS})
URGENCIES = ("critical", "high", "medium", "low")


def _check(
    kind: str, ref: str | None, table: Mapping[Any, frozenset[Any]], now: Any, to: Any
) -> None:
    """Refuse a transition the table does not allow."""
    if to not in table.get(now, frozenset()):
        raise DonationError(
            "don_err_transition", kind=kind, ref=ref or "?", current=str(now), target=str(to)
        )


def _positive(quantity: int) -> int:
    """Refuse quantities below one."""
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise DonationError("don_err_quantity")
    return quantity
