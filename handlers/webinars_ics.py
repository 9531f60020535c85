"""iCalendar (RFC 5545) files for webinars, written where the dispatcher can attach them."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

# Files are re-created on demand, so a temporary directory will do; deployments that run the
# dispatcher in another container point this at a shared volume.
ICS_DIR = Path(tempfile.gettempdir()) / "citybot-attachments"
PRODID = "-//UNOSSC Cities Project//citybot webinars//EN"


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """What goes into a webinar's calendar entry."""

    uid: str
    sequence: int
    starts_at: datetime
    duration: timedelta
    summary: str
    description: str
    url: str
    stamp: datetime
    cancelled: bool = False


def _escape(text: str) -> str:
    """Escape a TEXT value (backslash, semicolon, comma, newline)."""
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
    )


def _fold(line: str) -> str:
    """Fold a content line at 75 octets, never inside a UTF-8 character."""
    out: list[str] = []
    current, size = "", 0
    limit = 75
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            out.append(current)
            current, size, limit = " ", 1, 75
        current += char
        size += width
    out.append(current)
    return "\r\n".join(out)


def _utc(instant: datetime) -> str:
    """Format an instant as a UTC DATE-TIME (`20261203T060000Z`)."""
    return instant.strftime("%Y%m%dT%H%M%SZ")


def render(event: CalendarEvent) -> str:
    """Return the iCalendar text of one event (CRLF line ends, folded lines)."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:CANCEL" if event.cancelled else "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{event.uid}",
        f"SEQUENCE:{event.sequence}",
        f"DTSTAMP:{_utc(event.stamp)}",
        f"DTSTART:{_utc(event.starts_at)}",
        f"DTEND:{_utc(event.starts_at + event.duration)}",
        f"SUMMARY:{_escape(event.summary)}",
        f"DESCRIPTION:{_escape(event.description)}",
    ]
    if event.url:
        lines += [f"URL:{event.url}", f"LOCATION:{_escape(event.url)}"]
    lines += [
        "STATUS:CANCELLED" if event.cancelled else "STATUS:CONFIRMED",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"


def write(event: CalendarEvent, filename: str, *, directory: Path | None = None) -> Path:
    """Write the event to `filename` in the attachments directory (atomically); return it."""
    folder = directory or ICS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".ics-")
    with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
        out.write(render(event))
    os.replace(temporary, path)
    return path
