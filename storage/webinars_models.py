"""Webinars, registrations, reminders: table models (migration 0005_webinars)."""

from __future__ import annotations
