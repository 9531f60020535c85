"""Broadcast figures as staff see them: statuses in RapidPro's words, stats and the list."""

from __future__ import annotations

from handlers.broadcasts_preview import count_text
from handlers.broadcasts_segments import describe_segment
from handlers.i18n import t
from storage import broadcasts as db
from storage.staff_models import Broadcast

# Outbox statuses as staff see them (RapidPro's vocabulary).
SHOWN_STATUS = {
    "pending": "queued",
    "sending": "queued",
    "queued": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "undelivered": "failed",
    "needs_template": "failed",
    "cancelled": "cancelled",
}
SHOWN_ORDER = ("queued", "sent", "delivered", "read", "failed", "cancelled")


def shown_counts(found: db.BroadcastStats, *, cancelled: bool = False) -> dict[str, int]:
    """Counts by the statuses staff see: queued, sent, delivered, read, failed, cancelled."""
    shown = dict.fromkeys(SHOWN_ORDER, 0)
    shown["cancelled" if cancelled else "queued"] += found.unqueued
    for status, n in found.by_status.items():
        key = SHOWN_STATUS.get(status, status)
        shown[key] = shown.get(key, 0) + n
    return shown


def stats_line(found: db.BroadcastStats, lang: str, *, cancelled: bool = False) -> str:
    """One line of counts: queued 3 · sent 10 · delivered 8 · read 2 · failed 1."""
    shown = shown_counts(found, cancelled=cancelled)
    return " · ".join(f"{t(f'staff_status_{k}', lang)} {n}" for k, n in shown.items() if n)


def stats_text(broadcast: Broadcast, found: db.BroadcastStats, lang: str) -> str:
    """Render a broadcast's status and stats for staff."""
    lines = [
        t("staff_bc_stats_title", lang, id=broadcast.id, title=broadcast.title),
        t("staff_bc_status", lang, status=t(f"staff_bcstatus_{broadcast.status}", lang)),
    ]
    if broadcast.scheduled_at is not None and broadcast.status == "scheduled":
        lines.append(
            t("staff_bc_when", lang, at=broadcast.scheduled_at.strftime("%Y-%m-%d %H:%M"))
        )
    lines.append(t("staff_bc_segment", lang, segment=describe_segment(broadcast.segment, lang)))
    if found.recipients:
        lines.append(t("staff_bc_recipients", lang, count=found.to_send, matched=found.recipients))
    if found.excluded:
        named = {k: t(f"staff_excluded_{k}", lang) for k in found.excluded}
        lines.append(t("staff_bc_excluded", lang, counts=count_text(found.excluded, named)))
    line = stats_line(found, lang, cancelled=broadcast.status == "cancelled")
    if line:
        lines.append(line)
    for status, code, reason, n in found.reasons[:8]:
        why = reason or code or status
        if status == "needs_template":
            why = t("staff_reason_template", lang)
        lines.append(f"  • {n} × {why} ({code or status})")
    return "\n".join(lines)


def list_text(items: list[Broadcast], lang: str) -> str:
    """One line per broadcast: number, title, status, time."""
    if not items:
        return t("staff_bc_none", lang)
    lines = [t("staff_bc_list_title", lang)]
    for b in items:
        status = t(f"staff_bcstatus_{b.status}", lang)
        when = b.scheduled_at or b.created_at
        lines.append(f"#{b.id} {b.title} — {status} ({when.strftime('%Y-%m-%d %H:%M')} UTC)")
    return "\n".join(lines)
