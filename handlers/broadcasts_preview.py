"""Broadcast previews: who would get a broadcast now, by channel, language and WhatsApp case."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from sqlmodel import Session

from handlers.broadcasts_segments import describe_segment, resolve
from handlers.i18n import NATIVE_NAMES, t
from storage import broadcasts as db
from storage.staff_models import Broadcast

CHANNEL_NAMES = {"telegram": "Telegram", "whatsapp": "WhatsApp", "console": "Console"}
WINDOW = timedelta(hours=24)


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


def audience_rows(
    *, session: Session, broadcast: Broadcast, now: datetime
) -> tuple[list[db.AudienceRow], list[str]]:
    """The audience by channel, language, exclusion and WhatsApp window; unevaluated filters."""
    resolved = resolve(session=session, spec=broadcast.segment)
    rows = db.preview(
        session=session,
        audience=resolved.audience,
        languages=list(broadcast.texts),
        base_language=broadcast.base_language,
        now=now,
        window=WINDOW,
    )
    return rows, resolved.unavailable


def preview(
    *,
    session: Session,
    broadcast: Broadcast,
    now: datetime,
    templates: frozenset[str] | None,
) -> Preview:
    """Count the recipients by channel and language, the exclusions and the WhatsApp cases."""
    rows, unavailable = audience_rows(session=session, broadcast=broadcast, now=now)
    found = Preview(
        unavailable=unavailable,
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


def count_text(values: dict[str, int], names: dict[str, str] | None = None) -> str:
    """`a 3, b 2` from a mapping of counts, largest first."""
    ordered = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{(names or {}).get(k, k)} {n}" for k, n in ordered)


def _language_counts(values: dict[str, int]) -> str:
    """Counts per language, by the languages' own names."""
    return count_text(values, NATIVE_NAMES)


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
        lines.append(t("staff_bc_excluded", lang, counts=count_text(reasons, named)))
    if found.by_channel:
        lines.append(
            t("staff_bc_by_channel", lang, counts=count_text(found.by_channel, CHANNEL_NAMES))
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
