"""Donation requests, pledges, shipments: table models (migration 0004_donations).

A request (a city's need) has lines (an item and a quantity each). A donor's pledge has lines
too; a match gives part of a pledge line to a request line. A shipment carries matched
quantities to one city, and its events (dispatched, arrived …) are what the city is told.
Roll-up quantities on the lines are kept in step with the rows they sum (storage/donations.py
checks and updates them in the same transaction).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


def _ts(*, nullable: bool = True) -> Any:
    """A UTC timestamp column."""
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable)


def _qty() -> Any:
    """A quantity column (64-bit: totals of masks exceed 2**31 quickly)."""
    return Field(default=0, sa_type=BigInteger, nullable=False)


class DonationDonor(SQLModel, table=True):
    """A donor partner: a government, city, NGO, UN entity or company."""

    __tablename__ = "donation_donor"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    kind: str = Field(default="other", max_length=32)
    country_code: str | None = Field(default=None, max_length=2)
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    note: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_type=UTCDateTime)


class DonationRequest(SQLModel, table=True):
    """A city's request for supplies; `ref` is the short reference people type (R-7K3F)."""

    __tablename__ = "donation_request"
    __table_args__ = (Index("ix_donation_request_city", "country_code", "city_name"),)

    id: int | None = Field(default=None, primary_key=True)
    ref: str | None = Field(default=None, max_length=12, unique=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True)
    status: str = Field(default="draft", max_length=16, index=True)
    source: str = Field(default="chat", max_length=16)
    survey_response_id: int | None = None
    city_name: str | None = Field(default=None, max_length=200)
    city_geonameid: int | None = Field(default=None, index=True)
    country_code: str | None = Field(default=None, max_length=2)
    institution: str | None = Field(default=None, max_length=200)
    delivery_address: str | None = Field(default=None, max_length=300)
    urgency: str = Field(default="medium", max_length=16)
    needed_by: date | None = None
    purpose: str | None = Field(default=None, max_length=500)
    language: str = Field(default="en", max_length=8)
    checks: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    decline_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_type=UTCDateTime)
    submitted_at: datetime | None = _ts()
    decided_at: datetime | None = _ts()
    closed_at: datetime | None = _ts()
    updated_at: datetime = Field(sa_type=UTCDateTime)


class DonationRequestLine(SQLModel, table=True):
    """One item of a request with its roll-ups: pledged ≤ requested, shipped ≤ pledged …"""

    __tablename__ = "donation_request_line"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="donation_request.id", index=True)
    item_id: str = Field(max_length=40)
    item_group: str = Field(max_length=40, index=True)
    description: str | None = Field(default=None, max_length=200)
    quantity: int = _qty()
    quantity_pledged: int = _qty()
    quantity_shipped: int = _qty()
    quantity_delivered: int = _qty()


class DonationPledge(SQLModel, table=True):
    """A donor's promise: linked to request lines through matches, or an unsolicited offer."""

    __tablename__ = "donation_pledge"

    id: int | None = Field(default=None, primary_key=True)
    ref: str | None = Field(default=None, max_length=12, unique=True)
    donor_id: int = Field(foreign_key="donation_donor.id", index=True)
    status: str = Field(default="offered", max_length=16, index=True)
    logistics_covered: bool = False
    available_on: date | None = None
    note: str | None = Field(default=None, max_length=500)
    recorded_by: int | None = Field(default=None, foreign_key="contact.id")
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class DonationPledgeLine(SQLModel, table=True):
    """One item of a pledge: matched (confirmed) ≤ quantity, shipped ≤ matched."""

    __tablename__ = "donation_pledge_line"

    id: int | None = Field(default=None, primary_key=True)
    pledge_id: int = Field(foreign_key="donation_pledge.id", index=True)
    item_id: str = Field(max_length=40)
    item_group: str = Field(max_length=40, index=True)
    quantity: int = _qty()
    quantity_matched: int = _qty()
    quantity_shipped: int = _qty()


class DonationMatch(SQLModel, table=True):
    """Part of a pledge line given to a request line: proposed, confirmed, rejected, released."""

    __tablename__ = "donation_match"
    __table_args__ = (
        Index("ix_donation_match_pair", "request_line_id", "pledge_line_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_line_id: int = Field(foreign_key="donation_request_line.id", index=True)
    pledge_line_id: int = Field(foreign_key="donation_pledge_line.id", index=True)
    status: str = Field(default="proposed", max_length=16)
    quantity: int = _qty()
    quantity_shipped: int = _qty()
    score: float = 0.0
    created_at: datetime = Field(sa_type=UTCDateTime)
    decided_at: datetime | None = _ts()
    decided_by: int | None = Field(default=None, foreign_key="contact.id")


class DonationShipment(SQLModel, table=True):
    """Matched quantities on their way from one donor to one city; dates follow its events."""

    __tablename__ = "donation_shipment"
    __table_args__ = (
        Index("ix_donation_shipment_report", "status", "delivered_month"),
        Index("ix_donation_shipment_city", "country_code", "city_name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ref: str | None = Field(default=None, max_length=12, unique=True)
    pledge_id: int = Field(foreign_key="donation_pledge.id", index=True)
    donor_id: int = Field(foreign_key="donation_donor.id", index=True)
    status: str = Field(default="preparing", max_length=16)
    city_name: str | None = Field(default=None, max_length=200)
    country_code: str | None = Field(default=None, max_length=2)
    carrier_ref: str | None = Field(default=None, max_length=120)
    created_at: datetime = Field(sa_type=UTCDateTime)
    dispatched_at: datetime | None = _ts()
    arrived_at: datetime | None = _ts()
    handed_over_at: datetime | None = _ts()
    delivered_month: str | None = Field(default=None, max_length=7)
    receipt_confirmed_at: datetime | None = _ts()
    receipt_contact_id: int | None = Field(default=None, foreign_key="contact.id")
    problem_reported_at: datetime | None = _ts()
    updated_at: datetime = Field(sa_type=UTCDateTime)


class DonationShipmentLine(SQLModel, table=True):
    """A matched quantity in a shipment; delivered ≤ quantity once it arrived.

    The shipment's donor, city and month of arrival are copied here, so the impact report
    groups one table without a join (storage/donations.py keeps the copies in step).
    """

    __tablename__ = "donation_shipment_line"
    __table_args__ = (  # covering indexes: each report query reads one of them only
        Index(
            "ix_donation_shipment_line_city",
            "country_code",
            "city_name",
            "item_id",
            "delivered_month",
            "quantity_delivered",
            "shipment_id",
        ),  # fmt: skip
        Index(
            "ix_donation_shipment_line_month",
            "delivered_month",
            "item_id",
            "quantity_delivered",
            "shipment_id",
        ),  # fmt: skip
        Index(
            "ix_donation_shipment_line_donor",
            "donor_id",
            "item_id",
            "delivered_month",
            "quantity_delivered",
            "shipment_id",
        ),  # fmt: skip
    )

    id: int | None = Field(default=None, primary_key=True)
    shipment_id: int = Field(foreign_key="donation_shipment.id", index=True)
    match_id: int = Field(foreign_key="donation_match.id", index=True)
    request_line_id: int = Field(foreign_key="donation_request_line.id", index=True)
    pledge_line_id: int = Field(foreign_key="donation_pledge_line.id")
    item_id: str = Field(max_length=40)
    quantity: int = _qty()
    quantity_delivered: int = _qty()
    donor_id: int = Field(foreign_key="donation_donor.id")
    country_code: str | None = Field(default=None, max_length=2)
    city_name: str | None = Field(default=None, max_length=200)
    delivered_month: str | None = Field(default=None, max_length=7)


class DonationShipmentEvent(SQLModel, table=True):
    """A shipment status reached (once each), with a note and a photo; told to the city."""

    __tablename__ = "donation_shipment_event"
    __table_args__ = (UniqueConstraint("shipment_id", "status", name="uq_donation_event_status"),)

    id: int | None = Field(default=None, primary_key=True)
    shipment_id: int = Field(foreign_key="donation_shipment.id", index=True)
    status: str = Field(max_length=16)
    at: datetime = Field(sa_type=UTCDateTime)
    note: str | None = Field(default=None, max_length=500)
    photo: str | None = Field(default=None, max_length=300)
    actor_contact_id: int | None = Field(default=None, foreign_key="contact.id")
    source: str = Field(default="staff", max_length=16)
    created_at: datetime = Field(sa_type=UTCDateTime)
    notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class DonationNote(SQLModel, table=True):
    """What was said about a request: staff questions and answers, reasons, receipts, problems."""

    __tablename__ = "donation_note"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="donation_request.id", index=True)
    shipment_id: int | None = Field(default=None, foreign_key="donation_shipment.id")
    kind: str = Field(max_length=16)
    text: str | None = Field(default=None, max_length=1000)
    author_contact_id: int | None = Field(default=None, foreign_key="contact.id")
    reply_to: int | None = Field(default=None, foreign_key="donation_note.id")
    created_at: datetime = Field(sa_type=UTCDateTime)
    answered_at: datetime | None = _ts()
