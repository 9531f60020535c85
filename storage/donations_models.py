"""Donation requests, pledges, shipments: table models (migration 0004_donations)."""

from __future__ import annotations
