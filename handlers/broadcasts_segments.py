"""Broadcast segments: who a broadcast reaches, read from filters, resolved, described.

A segment is a JSON spec — `country`, `region`, `city`, `role`, `focus`, `language`, `channel`,
`webinar` (lists) and `donations` (true) — ANDed across kinds and ORed within one; `{}` is
everyone. It is evaluated when sending starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from handlers.i18n import NATIVE_NAMES, t
from handlers.staff_regions import countries_of
from handlers.text import normalise
from storage import broadcasts as db
from storage import staff as features_db

KINDS = ("country", "region", "city", "role", "focus", "language", "channel", "webinar")
FLAGS = ("donations",)
FOCUS_SURVEY, FOCUS_QUESTION = "development_needs", "priorities"
CHANNELS = ("telegram", "whatsapp", "console")


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
