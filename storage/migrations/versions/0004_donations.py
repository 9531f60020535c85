"""Donation requests, pledges, shipments (tables of storage/donations_models.py).

Revision ID: 0004_donations
Revises: c05c5be78646
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0004_donations"
down_revision: str | None = "c05c5be78646"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_text = sqlmodel.sql.sqltypes.AutoString
_time = storage.types.UTCDateTime


def _indexes(table: str, *specs: tuple[str, list[str]]) -> None:
    """Create a table's indexes (batch mode keeps SQLite happy)."""
    with op.batch_alter_table(table, schema=None) as batch_op:
        for name, columns in specs:
            batch_op.create_index(name, columns, unique=False)


def upgrade() -> None:
    """Create the donations tables."""
    op.create_table(
        "donation_donor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", _text(length=200), nullable=False),
        sa.Column("kind", _text(length=32), nullable=False),
        sa.Column("country_code", _text(length=2), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("note", _text(length=500), nullable=True),
        sa.Column("created_at", _time(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "donation_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", _text(length=12), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("status", _text(length=16), nullable=False),
        sa.Column("source", _text(length=16), nullable=False),
        sa.Column("survey_response_id", sa.Integer(), nullable=True),
        sa.Column("city_name", _text(length=200), nullable=True),
        sa.Column("city_geonameid", sa.Integer(), nullable=True),
        sa.Column("country_code", _text(length=2), nullable=True),
        sa.Column("institution", _text(length=200), nullable=True),
        sa.Column("delivery_address", _text(length=300), nullable=True),
        sa.Column("urgency", _text(length=16), nullable=False),
        sa.Column("needed_by", sa.Date(), nullable=True),
        sa.Column("purpose", _text(length=500), nullable=True),
        sa.Column("language", _text(length=8), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("decline_reason", _text(length=500), nullable=True),
        sa.Column("created_at", _time(timezone=True), nullable=False),
        sa.Column("submitted_at", _time(timezone=True), nullable=True),
        sa.Column("decided_at", _time(timezone=True), nullable=True),
        sa.Column("closed_at", _time(timezone=True), nullable=True),
        sa.Column("updated_at", _time(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ref"),
    )
    _indexes(
        "donation_request",
        ("ix_donation_request_city", ["country_code", "city_name"]),
        ("ix_donation_request_city_geonameid", ["city_geonameid"]),
        ("ix_donation_request_contact_id", ["contact_id"]),
        ("ix_donation_request_status", ["status"]),
    )
    op.create_table(
        "donation_pledge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", _text(length=12), nullable=True),
        sa.Column("donor_id", sa.Integer(), nullable=False),
        sa.Column("status", _text(length=16), nullable=False),
        sa.Column("logistics_covered", sa.Boolean(), nullable=False),
        sa.Column("available_on", sa.Date(), nullable=True),
        sa.Column("note", _text(length=500), nullable=True),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", _time(timezone=True), nullable=False),
        sa.Column("updated_at", _time(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["donor_id"], ["donation_donor.id"]),
        sa.ForeignKeyConstraint(["recorded_by"], ["contact.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ref"),
    )
    _indexes(
        "donation_pledge",
        ("ix_donation_pledge_donor_id", ["donor_id"]),
        ("ix_donation_pledge_status", ["status"]),
    )
    op.create_table(
        "donation_request_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("item_id", _text(length=40), nullable=False),
        sa.Column("item_group", _text(length=40), nullable=False),
        sa.Column("description", _text(length=200), nullable=True),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("quantity_pledged", sa.BigInteger(), nullable=False),
        sa.Column("quantity_shipped", sa.BigInteger(), nullable=False),
        sa.Column("quantity_delivered", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["donation_request.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    _indexes(
        "donation_request_line",
        ("ix_donation_request_line_item_group", ["item_group"]),
        ("ix_donation_request_line_request_id", ["request_id"]),
    )
    op.create_table(
        "donation_pledge_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pledge_id", sa.Integer(), nullable=False),
        sa.Column("item_id", _text(length=40), nullable=False),
        sa.Column("item_group", _text(length=40), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("quantity_matched", sa.BigInteger(), nullable=False),
        sa.Column("quantity_shipped", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["pledge_id"], ["donation_pledge.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    _indexes(
        "donation_pledge_line",
        ("ix_donation_pledge_line_item_group", ["item_group"]),
        ("ix_donation_pledge_line_pledge_id", ["pledge_id"]),
    )
    op.create_table(
        "donation_shipment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", _text(length=12), nullable=True),
        sa.Column("pledge_id", sa.Integer(), nullable=False),
        sa.Column("donor_id", sa.Integer(), nullable=False),
        sa.Column("status", _text(length=16), nullable=False),
        sa.Column("city_name", _text(length=200), nullable=True),
        sa.Column("country_code", _text(length=2), nullable=True),
        sa.Column("carrier_ref", _text(length=120), nullable=True),
        sa.Column("created_at", _time(timezone=True), nullable=False),
        sa.Column("dispatched_at", _time(timezone=True), nullable=True),
        sa.Column("arrived_at", _time(timezone=True), nullable=True),
        sa.Column("handed_over_at", _time(timezone=True), nullable=True),
        sa.Column("delivered_month", _text(length=7), nullable=True),
        sa.Column("receipt_confirmed_at", _time(timezone=True), nullable=True),
        sa.Column("receipt_contact_id", sa.Integer(), nullable=True),
        sa.Column("problem_reported_at", _time(timezone=True), nullable=True),
        sa.Column("updated_at", _time(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["donor_id"], ["donation_donor.id"]),
        sa.ForeignKeyConstraint(["pledge_id"], ["donation_pledge.id"]),
        sa.ForeignKeyConstraint(["receipt_contact_id"], ["contact.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ref"),
    )
    _indexes(
        "donation_shipment",
        ("ix_donation_shipment_city", ["country_code", "city_name"]),
        ("ix_donation_shipment_donor_id", ["donor_id"]),
        ("ix_donation_shipment_pledge_id", ["pledge_id"]),
        ("ix_donation_shipment_report", ["status", "delivered_month"]),
    )
    op.create_table(
        "donation_match",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_line_id", sa.Integer(), nullable=False),
        sa.Column("pledge_line_id", sa.Integer(), nullable=False),
        sa.Column("status", _text(length=16), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("quantity_shipped", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("created_at", _time(timezone=True), nullable=False),
        sa.Column("decided_at", _time(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["decided_by"], ["contact.id"]),
        sa.ForeignKeyConstraint(["pledge_line_id"], ["donation_pledge_line.id"]),
        sa.ForeignKeyConstraint(["request_line_id"], ["donation_request_line.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    _indexes(
        "donation_match",
        ("ix_donation_match_pair", ["request_line_id", "pledge_line_id", "status"]),
        ("ix_donation_match_pledge_line_id", ["pledge_line_id"]),
        ("ix_donation_match_request_line_id", ["request_line_id"]),
    )
    op.create_table(
        "donation_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=True),
        sa.Column("kind", _text(length=16), nullable=False),
        sa.Column("text", _text(length=1000), nullable=True),
        sa.Column("author_contact_id", sa.Integer(), nullable=True),
        sa.Column("reply_to", sa.Integer(), nullable=True),
        sa.Column("created_at", _time(timezone=True), nullable=False),
        sa.Column("answered_at", _time(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["author_contact_id"], ["contact.id"]),
        sa.ForeignKeyConstraint(["reply_to"], ["donation_note.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["donation_request.id"]),
        sa.ForeignKeyConstraint(["shipment_id"], ["donation_shipment.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    _indexes("donation_note", ("ix_donation_note_request_id", ["request_id"]))
    op.create_table(
        "donation_shipment_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("status", _text(length=16), nullable=False),
        sa.Column("at", _time(timezone=True), nullable=False),
        sa.Column("note", _text(length=500), nullable=True),
        sa.Column("photo", _text(length=300), nullable=True),
        sa.Column("actor_contact_id", sa.Integer(), nullable=True),
        sa.Column("source", _text(length=16), nullable=False),
        sa.Column("created_at", _time(timezone=True), nullable=False),
        sa.Column("notified_at", _time(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["actor_contact_id"], ["contact.id"]),
        sa.ForeignKeyConstraint(["shipment_id"], ["donation_shipment.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shipment_id", "status", name="uq_donation_event_status"),
    )
    _indexes(
        "donation_shipment_event",
        ("ix_donation_shipment_event_notified_at", ["notified_at"]),
        ("ix_donation_shipment_event_shipment_id", ["shipment_id"]),
    )
    op.create_table(
        "donation_shipment_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("match_id", sa.Integer(), nullable=False),
        sa.Column("request_line_id", sa.Integer(), nullable=False),
        sa.Column("pledge_line_id", sa.Integer(), nullable=False),
        sa.Column("item_id", _text(length=40), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("quantity_delivered", sa.BigInteger(), nullable=False),
        sa.Column("donor_id", sa.Integer(), nullable=False),
        sa.Column("country_code", _text(length=2), nullable=True),
        sa.Column("city_name", _text(length=200), nullable=True),
        sa.Column("delivered_month", _text(length=7), nullable=True),
        sa.ForeignKeyConstraint(["donor_id"], ["donation_donor.id"]),
        sa.ForeignKeyConstraint(["match_id"], ["donation_match.id"]),
        sa.ForeignKeyConstraint(["pledge_line_id"], ["donation_pledge_line.id"]),
        sa.ForeignKeyConstraint(["request_line_id"], ["donation_request_line.id"]),
        sa.ForeignKeyConstraint(["shipment_id"], ["donation_shipment.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    _indexes(
        "donation_shipment_line",
        ("ix_donation_shipment_line_match_id", ["match_id"]),
        (
            "ix_donation_shipment_line_city",
            [
                "country_code",
                "city_name",
                "item_id",
                "delivered_month",
                "quantity_delivered",
                "shipment_id",
            ],
        ),
        (
            "ix_donation_shipment_line_donor",
            ["donor_id", "item_id", "delivered_month", "quantity_delivered", "shipment_id"],
        ),
        (
            "ix_donation_shipment_line_month",
            ["delivered_month", "item_id", "quantity_delivered", "shipment_id"],
        ),
        ("ix_donation_shipment_line_request_line_id", ["request_line_id"]),
        ("ix_donation_shipment_line_shipment_id", ["shipment_id"]),
    )


TABLES = (
    "donation_shipment_line",
    "donation_shipment_event",
    "donation_note",
    "donation_match",
    "donation_shipment",
    "donation_pledge_line",
    "donation_request_line",
    "donation_pledge",
    "donation_request",
    "donation_donor",
)


def downgrade() -> None:
    """Drop the donations tables (their indexes go with them)."""
    for table in TABLES:
        op.drop_table(table)
