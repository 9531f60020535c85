"""Broadcasts: segments, previews, scheduling, sending progress, stats, cancel and retry.

Used by the staff chat commands (handlers/staff.py), the CLI (bot/cli_staff.py) and the sweep
(scheduler/broadcasts.py); every function takes the session and the time explicitly.

A segment is a JSON spec — `country`, `region`, `city`, `role`, `focus`, `language`, `channel`,
`webinar` (lists) and `donations` (true) — ANDed across kinds and ORed within one; `{}` is
everyone. It is evaluated when sending starts. Each recipient gets the text in their language,
else in the broadcast's base language (the configured default when it has a text).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session

from handlers.i18n import NATIVE_NAMES, t
from handlers.messages import Outgoing
from handlers.notify import queue_for_contact
from handlers.staff_regions import countries_of
from handlers.text import normalise
from storage import audit, contacts
from storage import broadcasts as db
from storage import staff as features_db
from storage.staff_models import Broadcast

logger = logging.getLogger(__name__)

KINDS = ("country", "region", "city", "role", "focus", "language", "channel", "webinar")
FLAGS = ("donations",)
FOCUS_SURVEY, FOCUS_QUESTION = "development_needs", "priorities"
CHANNELS = ("telegram", "whatsapp", "console")
CHANNEL_NAMES = {"telegram": "Telegram", "whatsapp": "WhatsApp", "console": "Console"}
DEFAULT_RATES = {"telegram": 30.0, "whatsapp": 80.0}
PROGRESS_STEPS = (25, 50, 75)
INLINE_LIMIT = 1000  # "send now" queues this many recipients at once; the sweep does bigger ones
WINDOW = timedelta(hours=24)


class BroadcastError(ValueError):
    """Something a staff member asked that cannot be done; the key is a UI string."""

    def __init__(self, key: str, **values: Any) -> None:
        """Keep the UI string key and its values."""
        super().__init__(key)
        self.key = key
        self.values = values


# -- segments ------------------------------------------------------------------------------------


def clean_segment(spec: dict[str, Any]) -> dict[str, Any]:
    """Keep the known kinds of a segment spec, values as sorted unique lists."""
    found: dict[str, Any] = {}
    for kind in KINDS:
        values = spec.get(kind)
        if values is None or values == "":
            continue  # an empty list stays: the filter was chosen and matches nobody
        items = values if isinstance(values, list | tuple) else [values]
        if kind == "webinar":
            found[kind] = sorted({int(v) for v in items})
        elif kind in ("country",):
            found[kind] = sorted({str(v).upper() for v in items})
        else:
            found[kind] = sorted({str(v) for v in items})
    if spec.get("donations"):
        found["donations"] = True
    return found


def parse_filters(
    filters: Iterable[str], *, country: Any = None
) -> tuple[dict[str, Any], list[str]]:
    """Read `kind=value,value` filters (CLI) into a segment spec; return it and the problems.

    `country` resolves a typed country name to its code (the gazetteer's `country`).
    """
    spec: dict[str, list[Any]] = {}
    problems: list[str] = []
    flags: set[str] = set()
    for raw in filters:
        kind, sep, value = raw.partition("=")
        kind = kind.strip().lower()
        if kind in FLAGS and not sep:
            flags.add(kind)
            continue
        if kind == "everyone":
            continue
        if kind not in KINDS or not sep:
            problems.append(raw)
            continue
        for item in (v.strip() for v in value.split(",")):
            if not item:
                continue
            read = _read_value(kind, item, country)
            if read is None:
                problems.append(f"{kind}={item}")
            else:
                spec.setdefault(kind, []).append(read)
    cleaned = clean_segment({**spec, **dict.fromkeys(flags, True)})
    return cleaned, problems


def _read_value(kind: str, item: str, country: Any) -> Any:
    """Check and normalise one value of a filter (None when it is not understood)."""
    if kind == "country":
        if len(item) == 2 and item.isalpha():
            return item.upper()
        return country(item) if country is not None else None
    if kind == "region":
        key = item.lower().replace(" ", "_").replace("-", "_")
        return key if countries_of(key) else None
    if kind == "webinar":
        return int(item.lstrip("#")) if item.lstrip("#").isdecimal() else None
    if kind == "channel":
        return item.lower() if item.lower() in CHANNELS else None
    if kind == "language":
        return item.lower() if item.lower() in NATIVE_NAMES else None
    if kind in ("role", "focus"):
        return item if item in _options(kind) else None
    return item


def _options(kind: str) -> frozenset[str]:
    """The option ids a role or focus filter may name (from the survey definitions)."""
    from handlers.definitions import catalog

    survey, question = ("registration", "role") if kind == "role" else (FOCUS_SURVEY, "priorities")
    definition = catalog().get(survey)
    if definition is None:
        return frozenset()
    return frozenset(o.id for o in definition.question(question).options)


def countries_from_text(text: str, country: Any) -> tuple[list[str], list[str]]:
    """Read typed countries (names in any language or ISO codes); return codes and the unknown."""
    codes: list[str] = []
    unknown: list[str] = []
    for part in (p.strip() for p in text.replace("،", ",").replace("，", ",").split(",")):
        if not part:
            continue
        code = _read_value("country", part, country)
        (codes if code else unknown).append(code or part)
    return codes, unknown


def cities_from_text(text: str) -> list[str]:
    """Read typed city names (comma separated)."""
    parts = text.replace("،", ",").replace("，", ",").split(",")
    return [p.strip() for p in parts if p.strip()]


@dataclass(slots=True)
class Resolved:
    """A segment turned into an audience, and the filters that could not be evaluated."""

    audience: db.Audience
    unavailable: list[str] = field(default_factory=list)


def resolve(*, session: Session, spec: dict[str, Any]) -> Resolved:
    """Turn a segment spec into the storage audience (id filters evaluated now)."""
    groups: list[tuple[str, ...]] = []
    sets: list[frozenset[int]] = []
    unavailable: list[str] = []
    if "country" in spec:
        groups.append(tuple(str(c).upper() for c in spec["country"]))
    if "region" in spec:
        groups.append(tuple(sorted({c for r in spec["region"] for c in countries_of(str(r))})))
    if "city" in spec:
        sets.append(db.city_contact_ids(session=session, names=spec["city"], key=normalise))
    if "focus" in spec:
        sets.append(
            db.focus_contact_ids(
                session=session,
                survey_id=FOCUS_SURVEY,
                question=FOCUS_QUESTION,
                values=spec["focus"],
            )
        )
    if "webinar" in spec:
        registrants: set[int] = set()
        for webinar_id in spec["webinar"]:
            found = features_db.webinar_registrants(session=session, webinar_id=int(webinar_id))
            if found is None:
                unavailable.append("webinar")
                break
            registrants.update(found)
        sets.append(frozenset(registrants))
    if spec.get("donations"):
        found_ids = features_db.open_request_contacts(session=session)
        if found_ids is None:
            unavailable.append("donations")
        sets.append(frozenset(found_ids or ()))
    if "role" in spec and not spec["role"]:
        sets.append(frozenset())
    if "language" in spec and not spec["language"]:
        sets.append(frozenset())
    if "channel" in spec and not spec["channel"]:
        sets.append(frozenset())
    audience = db.Audience(
        country_groups=tuple(groups),
        roles=tuple(spec.get("role") or ()),
        languages=tuple(spec.get("language") or ()),
        channels=tuple(spec.get("channel") or ()),
        contact_sets=tuple(sets),
    )
    return Resolved(audience=audience, unavailable=unavailable)


def describe_segment(spec: dict[str, Any], lang: str) -> str:
    """Say in words who a segment is (`everyone` for an empty one)."""
    from handlers.definitions import catalog
    from handlers.i18n import pick
    from handlers.places import country_name
    from handlers.staff_regions import area_name

    if not any(not k.startswith("_") for k in spec):
        return t("staff_seg_everyone", lang)
    parts: list[str] = []
    for kind in (*KINDS, *FLAGS):
        if kind not in spec:
            continue
        values = spec[kind] if isinstance(spec[kind], list) else []
        shown: list[str]
        if kind == "country":
            shown = [country_name(str(v), lang) for v in values]
        elif kind == "region":
            shown = [area_name(str(v), lang) for v in values]
        elif kind == "language":
            shown = [NATIVE_NAMES.get(str(v), str(v)) for v in values]
        elif kind in ("role", "focus"):
            survey, qid = (
                ("registration", "role") if kind == "role" else (FOCUS_SURVEY, "priorities")
            )
            question = catalog()[survey].question(qid) if survey in catalog() else None
            options = {o.id: pick(o.label, lang) for o in question.options} if question else {}
            shown = [options.get(str(v), str(v)) for v in values]
        elif kind == "webinar":
            shown = [f"#{v}" for v in values]
        elif kind == "donations":
            shown = []
        else:
            shown = [str(v) for v in values]
        label = t(f"staff_seg_{kind}", lang)
        if kind == "donations":
            parts.append(label)
        else:
            parts.append(f"{label}: {', '.join(shown) or '—'}")
    return " · ".join(parts)


# -- texts and templates ---------------------------------------------------------------------


def base_language(texts: dict[str, str], default: str) -> str:
    """The language of the text for contacts whose language has none: the default if given."""
    if default in texts:
        return default
    return next(iter(texts))


def bodies(broadcast: Broadcast) -> dict[str, dict[str, Any]]:
    """The outbox body of the broadcast's message in each of its languages."""
    meta = {"broadcast_id": broadcast.id, "title": broadcast.title}
    return {
        lang: Outgoing(text=text, kind="broadcast", meta=meta).to_body()
        for lang, text in broadcast.texts.items()
    }


def template_languages(path: str | Path | None, kind: str = "broadcast") -> frozenset[str] | None:
    """Languages with an approved WhatsApp template for `kind` in the templates file.

    The file maps message kind → language → {content_sid, variables} (bot/channels); None when
    it is missing or unreadable, so the preview says templates are unknown.
    """
    if path is None:
        return None
    file = Path(path)
    try:
        with file.open(encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError):
        return None
    languages = data.get(kind) if isinstance(data, dict) else None
    if not isinstance(languages, dict):
        return frozenset()
    return frozenset(
        str(lang)
        for lang, entry in languages.items()
        if isinstance(entry, dict) and str(entry.get("content_sid", "")).startswith("HX")
    )


def templates_file(config: object) -> str:
    """Where the WhatsApp templates file is: WHATSAPP_TEMPLATES_FILE, else BotConfig's."""
    configured = getattr(config, "whatsapp_templates_file", None)
    fallback = configured if isinstance(configured, str) and configured else None
    return os.environ.get("WHATSAPP_TEMPLATES_FILE") or fallback or "whatsapp_templates.yaml"


# -- previews ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Preview:
    """What sending a broadcast now would do."""

    matched: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    by_channel: dict[str, int] = field(default_factory=dict)
    by_language: dict[str, int] = field(default_factory=dict)
    fallback: dict[str, int] = field(default_factory=dict)  # contact language → count
    wa_window: int = 0
    wa_template: dict[str, int] = field(default_factory=dict)  # language → count
    wa_missing: dict[str, int] = field(default_factory=dict)  # language → count
    templates_known: bool = True
    unavailable: list[str] = field(default_factory=list)
    unknown_values: list[str] = field(default_factory=list)

    @property
    def to_send(self) -> int:
        """Recipients that would get a message."""
        return self.matched - sum(self.excluded.values())


def preview(
    *,
    session: Session,
    broadcast: Broadcast,
    now: datetime,
    templates: frozenset[str] | None,
) -> Preview:
    """Count the recipients by channel and language, the exclusions and the WhatsApp cases."""
    resolved = resolve(session=session, spec=broadcast.segment)
    rows = db.preview(
        session=session,
        audience=resolved.audience,
        languages=list(broadcast.texts),
        base_language=broadcast.base_language,
        now=now,
        window=WINDOW,
    )
    found = Preview(
        unavailable=resolved.unavailable,
        templates_known=templates is not None,
        unknown_values=list(broadcast.segment.get("_unknown") or []),
    )
    for row in rows:
        found.matched += row.count
        if row.excluded is not None:
            found.excluded[row.excluded] = found.excluded.get(row.excluded, 0) + row.count
            continue
        channel = row.channel or "?"
        found.by_channel[channel] = found.by_channel.get(channel, 0) + row.count
        found.by_language[row.language] = found.by_language.get(row.language, 0) + row.count
        if row.fallback:
            wanted = row.wanted or "?"
            found.fallback[wanted] = found.fallback.get(wanted, 0) + row.count
        if channel != "whatsapp":
            continue
        if row.in_window:
            found.wa_window += row.count
        elif templates is not None and row.language in templates:
            found.wa_template[row.language] = found.wa_template.get(row.language, 0) + row.count
        else:
            found.wa_missing[row.language] = found.wa_missing.get(row.language, 0) + row.count
    return found


def _counts(values: dict[str, int], names: dict[str, str] | None = None) -> str:
    """`a 3, b 2` from a mapping of counts, largest first."""
    ordered = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{(names or {}).get(k, k)} {n}" for k, n in ordered)


def _language_counts(values: dict[str, int]) -> str:
    """Counts per language, by the languages' own names."""
    return _counts(values, NATIVE_NAMES)


def preview_text(broadcast: Broadcast, found: Preview, lang: str) -> str:
    """Render a preview for staff."""
    lines = [
        t("staff_bc_preview_title", lang, id=broadcast.id, title=broadcast.title),
        t("staff_bc_segment", lang, segment=describe_segment(broadcast.segment, lang)),
        t("staff_bc_recipients", lang, count=found.to_send, matched=found.matched),
    ]
    if found.excluded:
        reasons = {k: n for k, n in found.excluded.items()}
        named = {k: t(f"staff_excluded_{k}", lang) for k in reasons}
        lines.append(t("staff_bc_excluded", lang, counts=_counts(reasons, named)))
    if found.by_channel:
        lines.append(
            t("staff_bc_by_channel", lang, counts=_counts(found.by_channel, CHANNEL_NAMES))
        )
    if found.by_language:
        lines.append(t("staff_bc_by_language", lang, counts=_language_counts(found.by_language)))
    if found.fallback:
        lines.append(
            t(
                "staff_bc_fallback",
                lang,
                count=sum(found.fallback.values()),
                language=NATIVE_NAMES.get(broadcast.base_language, broadcast.base_language),
                counts=_language_counts(found.fallback),
            )
        )
    whatsapp = found.by_channel.get("whatsapp", 0)
    if whatsapp:
        lines.append(t("staff_bc_wa_window", lang, count=found.wa_window))
        if found.wa_template:
            counts = _language_counts(found.wa_template)
            lines.append(
                t(
                    "staff_bc_wa_template",
                    lang,
                    count=sum(found.wa_template.values()),
                    counts=counts,
                )
            )
        if found.wa_missing:
            key = "staff_bc_wa_missing" if found.templates_known else "staff_bc_wa_unknown"
            lines.append(
                t(
                    key,
                    lang,
                    count=sum(found.wa_missing.values()),
                    counts=_language_counts(found.wa_missing),
                )
            )
    if found.unavailable:
        filters = ", ".join(t(f"staff_seg_{k}", lang) for k in found.unavailable)
        lines.append(t("staff_bc_unavailable", lang, filters=filters))
    if found.unknown_values:
        lines.append(t("staff_bc_unknown_values", lang, values=", ".join(found.unknown_values)))
    return "\n".join(lines)


# -- life cycle ----------------------------------------------------------------------------------


def create_draft(
    *,
    session: Session,
    title: str,
    texts: dict[str, str],
    segment: dict[str, Any],
    default_language: str,
    now: datetime,
    created_by: int | None,
    via: str,
    unknown_values: Iterable[str] = (),
) -> Broadcast:
    """Store a draft broadcast and audit it."""
    texts = {lang: text.strip() for lang, text in texts.items() if text and text.strip()}
    if not texts:
        raise BroadcastError("staff_bc_no_text")
    spec = clean_segment(segment)
    unknown = list(unknown_values)
    if unknown:
        spec["_unknown"] = unknown
    broadcast = db.create_broadcast(
        session=session,
        title=title.strip() or texts[base_language(texts, default_language)][:60],
        texts=texts,
        base_language=base_language(texts, default_language),
        segment=spec,
        now=now,
        created_by=created_by,
        created_via=via,
        notify_contact_id=created_by if via == "chat" else None,
    )
    audit.record(
        session=session,
        action="broadcast_created",
        now=now,
        actor_contact_id=created_by,
        subject=f"broadcast:{broadcast.id}",
        details={"via": via, "languages": sorted(texts), "segment": spec},
    )
    logger.info("broadcast drafted broadcast=%s actor=%s", broadcast.id, created_by)
    return broadcast


def schedule(
    *,
    session: Session,
    broadcast: Broadcast,
    at: datetime | None,
    now: datetime,
    actor: int | None,
    via: str,
) -> Broadcast:
    """Confirm a draft: send it at `at` (now when None or past)."""
    if broadcast.status not in ("draft", "scheduled"):
        raise BroadcastError("staff_bc_wrong_status", id=broadcast.id, status=broadcast.status)
    when = at if at is not None and at > now else now
    db.save_broadcast(
        session=session, broadcast=broadcast, now=now, status="scheduled", scheduled_at=when
    )
    audit.record(
        session=session,
        action="broadcast_scheduled",
        now=now,
        actor_contact_id=actor,
        subject=f"broadcast:{broadcast.id}",
        details={"via": via, "at": when.isoformat()},
    )
    logger.info("broadcast scheduled broadcast=%s actor=%s", broadcast.id, actor)
    return broadcast


def cancel(
    *, session: Session, broadcast: Broadcast, now: datetime, actor: int | None, via: str
) -> int:
    """Cancel a draft, a scheduled or a sending broadcast; return the messages withdrawn."""
    if broadcast.status in ("done", "cancelled"):
        raise BroadcastError("staff_bc_wrong_status", id=broadcast.id, status=broadcast.status)
    withdrawn = 0
    if broadcast.status == "sending":
        withdrawn = db.cancel_pending(session=session, broadcast_id=broadcast.id or 0, now=now)
    db.save_broadcast(
        session=session, broadcast=broadcast, now=now, status="cancelled", cancelled_at=now
    )
    audit.record(
        session=session,
        action="broadcast_cancelled",
        now=now,
        actor_contact_id=actor,
        subject=f"broadcast:{broadcast.id}",
        details={"via": via, "withdrawn": withdrawn},
    )
    logger.info("broadcast cancelled broadcast=%s withdrawn=%d", broadcast.id, withdrawn)
    return withdrawn


def retry(
    *,
    session: Session,
    broadcast: Broadcast,
    now: datetime,
    actor: int | None,
    via: str,
    rates: dict[str, float] | None = None,
) -> tuple[int, dict[str, int]]:
    """Queue the failed messages again; return (queued, skipped by reason)."""
    if broadcast.status not in ("sending", "done"):
        raise BroadcastError("staff_bc_wrong_status", id=broadcast.id, status=broadcast.status)
    queued, skipped = db.retry_failed(
        session=session,
        broadcast=broadcast,
        bodies=bodies(broadcast),
        now=now,
        rates=DEFAULT_RATES if rates is None else rates,
    )
    if queued:
        db.save_broadcast(
            session=session,
            broadcast=broadcast,
            now=now,
            status="sending",
            finished_at=None,
            retries=broadcast.retries + 1,
            progress_reported=max(PROGRESS_STEPS),  # only the end is told again
        )
    audit.record(
        session=session,
        action="broadcast_retry",
        now=now,
        actor_contact_id=actor,
        subject=f"broadcast:{broadcast.id}",
        details={"via": via, "queued": queued, "skipped": skipped},
    )
    logger.info("broadcast retry broadcast=%s queued=%d", broadcast.id, queued)
    return queued, skipped


# -- sending (the sweep and the CLI) ---------------------------------------------------------


def start(*, session: Session, broadcast: Broadcast, now: datetime) -> tuple[int, int]:
    """Begin sending: evaluate the segment and materialise the recipients (idempotent)."""
    resolved = resolve(session=session, spec=broadcast.segment)
    if broadcast.status in ("draft", "scheduled"):
        db.save_broadcast(
            session=session,
            broadcast=broadcast,
            now=now,
            status="sending",
            started_at=broadcast.started_at or now,
        )
    total, excluded = db.materialise(
        session=session, broadcast=broadcast, audience=resolved.audience, now=now
    )
    logger.info(
        "broadcast started broadcast=%s recipients=%d excluded=%d", broadcast.id, total, excluded
    )
    return total, excluded


def start_due(*, session: Session, now: datetime) -> list[int]:
    """Start every scheduled broadcast whose time has come; return their ids."""
    started: list[int] = []
    for broadcast in db.due_broadcasts(session=session, now=now):
        start(session=session, broadcast=broadcast, now=now)
        started.append(broadcast.id or 0)
    return started


def start_now(*, session: Session, broadcast: Broadcast, now: datetime) -> bool:
    """Start a broadcast due now; queue it whole when small (else the sweep queues it)."""
    total, excluded = start(session=session, broadcast=broadcast, now=now)
    if total - excluded > INLINE_LIMIT:
        return False
    assert broadcast.id is not None
    while queue_next(session=session, broadcast_id=broadcast.id, now=now):
        pass
    advance(session=session, broadcast_id=broadcast.id, now=now)
    return True


def queue_next(
    *,
    session: Session,
    broadcast_id: int,
    now: datetime,
    rates: dict[str, float] | None = None,
    limit: int = 500,
) -> int:
    """Queue one more batch of a sending broadcast's messages; 0 when none are left."""
    broadcast = db.get_broadcast(session=session, broadcast_id=broadcast_id)
    if broadcast is None or broadcast.status != "sending":
        return 0
    queued = db.queue_batch(
        session=session,
        broadcast=broadcast,
        bodies=bodies(broadcast),
        now=now,
        rates=DEFAULT_RATES if rates is None else rates,
        limit=limit,
    )
    if not queued and broadcast.queued_at is None:
        db.save_broadcast(session=session, broadcast=broadcast, now=now, queued_at=now)
    return queued


def advance(*, session: Session, broadcast_id: int, now: datetime) -> db.BroadcastStats | None:
    """Report progress to the staff member who sent it and close a finished broadcast."""
    broadcast = db.get_broadcast(session=session, broadcast_id=broadcast_id)
    if broadcast is None or broadcast.status != "sending":
        return None
    found = db.stats(session=session, broadcast_id=broadcast_id)
    total = found.to_send
    share = 100 if total == 0 else int(found.processed * 100 / total)
    if found.waiting == 0 and db.is_queued(session=session, broadcast_id=broadcast_id):
        _tell(session, broadcast, now, "done", t_key="staff_bc_done", stats=found)
        db.save_broadcast(
            session=session,
            broadcast=broadcast,
            now=now,
            status="done",
            finished_at=now,
            progress_reported=100,
        )
        logger.info("broadcast done broadcast=%s", broadcast.id)
        return found
    reported = broadcast.progress_reported
    if reported == 0:
        _tell(session, broadcast, now, "start", t_key="staff_bc_started", stats=found)
        reported = 1
    reached = [step for step in PROGRESS_STEPS if share >= step > reported]
    if reached:
        reported = reached[-1]
        _tell(session, broadcast, now, str(reported), t_key="staff_bc_progress", stats=found)
    if reported != broadcast.progress_reported:
        db.save_broadcast(
            session=session, broadcast=broadcast, now=now, progress_reported=reported
        )
    return found


def _tell(
    session: Session,
    broadcast: Broadcast,
    now: datetime,
    step: str,
    *,
    t_key: str,
    stats: db.BroadcastStats,
) -> None:
    """Queue a progress message for the staff member who sent the broadcast from chat."""
    if broadcast.notify_contact_id is None:
        return
    contact = contacts.get_contact(session=session, contact_id=broadcast.notify_contact_id)
    if contact is None:
        return
    lang = contact.language or "en"
    summary = stats_line(stats, lang)
    total = stats.to_send
    share = 100 if total == 0 else int(stats.processed * 100 / total)
    body = t(
        t_key,
        lang,
        id=broadcast.id,
        title=broadcast.title,
        done=stats.processed,
        total=total,
        share=share,
        summary=summary,
    )
    queue_for_contact(
        session=session,
        contact=contact,
        message=Outgoing(text=body, kind="staff"),
        kind="staff",
        key=f"bcp:{broadcast.id}:{broadcast.retries}:{step}",
        now=now,
    )


# -- stats ---------------------------------------------------------------------------------------

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
        lines.append(t("staff_bc_excluded", lang, counts=_counts(found.excluded, named)))
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
