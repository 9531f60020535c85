"""Checking and reading staff input for webinars: field values, edits, translations, times."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from handlers import webinars_text as text
from handlers.config import ALL_LANGUAGES
from handlers.definitions import catalog
from handlers.webinars_time import (
    parse_clock,
    parse_duration_minutes,
    parse_offsets,
    parse_quiet,
    parse_start,
    zone_of,
)
from handlers.webinars_types import WebinarError, WebinarSpec
from storage.webinars_models import Webinar


def focus_areas() -> list[str]:
    """The focus area ids (the create form's options)."""
    return [o.id for o in catalog()[text.CREATE_FORM].question("focus").options]


def _check_url(url: str) -> str:
    """Accept an http(s) link (adding https:// to a bare host), or nothing."""
    url = url.strip()
    if not url:
        return ""
    if not re.match(r"^https?://", url, re.IGNORECASE):
        if " " in url or "." not in url:
            raise WebinarError(f"not a link: {url!r}")
        url = "https://" + url
    if " " in url or len(url) > 500:
        raise WebinarError("a link has no spaces and at most 500 characters")
    return url


def _check(values: dict[str, Any], now: datetime, *, new_start: bool) -> None:
    """Refuse values a webinar cannot have."""
    if not any(v.strip() for v in values["title"].values()):
        raise WebinarError("a title is required")
    if set(values["title"]) - set(ALL_LANGUAGES) or set(values["description"]) - set(
        ALL_LANGUAGES
    ):
        raise WebinarError(f"languages are {', '.join(ALL_LANGUAGES)}")
    if zone_of(values["timezone"]) is None:
        raise WebinarError(f"unknown time zone {values['timezone']!r}")
    if new_start and values["starts_at"] <= now:
        raise WebinarError("the start must be in the future")
    if not 5 <= values["duration_minutes"] <= 24 * 60:
        raise WebinarError("the duration is 5 minutes to 24 hours")
    unknown = set(values["interpretation"]) - set(ALL_LANGUAGES)
    if unknown:
        raise WebinarError(f"unknown interpretation languages {sorted(unknown)}")
    if values["focus_area"] is not None and values["focus_area"] not in focus_areas():
        raise WebinarError(f"focus areas are {', '.join(focus_areas())}")
    if values["capacity"] is not None and values["capacity"] < 1:
        raise WebinarError("the capacity is a positive number (or none)")
    deadline = values["registration_deadline"]
    if deadline is not None and deadline > values["starts_at"]:
        raise WebinarError("registration must close before the start")
    offsets = values["reminder_offsets"]
    if any(not 0 < m <= 60 * 24 * 30 for m in offsets) or len(offsets) > 5:
        raise WebinarError("up to 5 reminders, each 1 minute to 30 days before the start")
    if not 0 <= values["survey_delay_minutes"] <= 60 * 24 * 7:
        raise WebinarError("the survey goes 0 minutes to 7 days after the end")


def _values(spec: WebinarSpec) -> dict[str, Any]:
    """The column values of a spec."""
    return {
        "title": {k: v.strip() for k, v in spec.title.items() if v.strip()},
        "description": {k: v.strip() for k, v in spec.description.items() if v.strip()},
        "starts_at": spec.starts_at.astimezone(UTC),
        "timezone": spec.timezone,
        "duration_minutes": spec.duration_minutes,
        "join_url": _check_url(spec.join_url),
        "interpretation": list(dict.fromkeys(spec.interpretation)),
        "focus_area": spec.focus_area,
        "capacity": spec.capacity or None,
        "registration_deadline": spec.registration_deadline,
        "reminder_offsets": sorted(set(spec.reminder_offsets), reverse=True),
        "survey_delay_minutes": spec.survey_delay_minutes,
        "quiet_start_minute": spec.quiet.start,
        "quiet_end_minute": spec.quiet.end,
    }


def parse_change(webinar: Webinar, name: str, value: str) -> dict[str, Any]:
    """Read one staff edit (`start 2026-12-03 15:00 Asia/Shanghai`, `link …`) into changes."""
    name, value = name.lower().replace("-", "_"), value.strip()
    none = value.lower() in ("none", "-", "0", "off", "")
    try:
        if name in ("start", "starts_at", "time"):
            parts = value.split()
            zone_name = parts[2] if len(parts) > 2 else webinar.timezone
            zone = zone_of(zone_name)
            if zone is None:
                raise WebinarError(f"unknown time zone {zone_name!r}")
            found: dict[str, Any] = {"starts_at": parse_start(" ".join(parts[:2]), zone)}
            if zone_name != webinar.timezone:
                found["timezone"] = zone_name
            return found
        if name in ("zone", "timezone"):
            return {"timezone": value}
        if name == "duration":
            return {"duration_minutes": parse_duration_minutes(value)}
        if name in ("link", "url", "join_url"):
            return {"join_url": value}
        if name in ("title", "description"):
            lang, _, words = value.partition(" ")
            if lang not in ALL_LANGUAGES or not words.strip():
                raise WebinarError(f"use: {name} <language> <text>")
            return {name: {lang: words.strip()}}
        if name == "capacity":
            return {"capacity": None if none else int(value)}
        if name == "deadline":
            zone = zone_of(webinar.timezone) or ZoneInfo("UTC")
            return {"registration_deadline": None if none else parse_start(value, zone)}
        if name == "interpretation":
            codes = [c for c in re.split(r"[,\s]+", value.lower()) if c]
            return {"interpretation": [] if none else codes}
        if name == "focus":
            return {"focus_area": None if none else value}
        if name in ("reminders", "offsets"):
            return {"reminder_offsets": [] if none else parse_offsets(value)}
        if name in ("survey_delay", "survey"):
            return {"survey_delay_minutes": parse_duration_minutes(value)}
        if name == "quiet":
            return {"quiet": parse_quiet(value)}
    except WebinarError:
        raise
    except ValueError as exc:
        raise WebinarError(str(exc)) from exc
    raise WebinarError(f"unknown field {name!r}")


def parse_translations(raw: str) -> dict[str, tuple[str, str]]:
    """Read `fr: Titre | Description es: Título | Descripción` into language → texts."""
    codes = "|".join(lang for lang in ALL_LANGUAGES)
    pieces = re.split(rf"(?:^|\s)({codes})\s*:\s*", raw.strip(), flags=re.IGNORECASE)
    found: dict[str, tuple[str, str]] = {}
    for lang, body in zip(pieces[1::2], pieces[2::2], strict=True):
        head, _, rest = body.partition("|")
        if head.strip():
            found[lang.lower()] = (head.strip(), rest.strip())
    return found


def parse_time_of_day(raw: str) -> tuple[int, int]:
    """Read a start time typed in the create form; WebinarError when unreadable."""
    clock = parse_clock(raw)
    if clock is None:
        raise WebinarError(f"not a time of day: {raw!r} (use 14:30)")
    return clock.hour, clock.minute
