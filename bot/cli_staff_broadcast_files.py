"""Broadcast files for `citybot broadcast new`: YAML, or Markdown with one section a language.

A YAML file has `title`, `segment` and `texts: {en: …, fr: …}`; a Markdown file an optional
front matter (`---` … `---`) with `title` and `segment`, then one `# <language>` section per
text (its code or its own name).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from handlers import (
    broadcasts_segments,
)
from handlers.i18n import NATIVE_NAMES

_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)
_HEADING = re.compile(r"^#{1,3}\s*(.+?)\s*$", re.M)


def _language(heading: str) -> str | None:
    """A Markdown heading naming a language: its code or its own name."""
    text = heading.strip().lower()
    for code, name in NATIVE_NAMES.items():
        if text in (code, name.lower()):
            return code
    return None


def read_file(path: Path) -> dict[str, Any]:
    """Read a broadcast file: {title, segment, texts}."""
    raw = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        data = yaml.safe_load(raw) or {}
        given = {str(k): str(v).strip() for k, v in (data.get("texts") or {}).items()}
        return {"title": data.get("title"), "segment": data.get("segment") or {}, "texts": given}
    front: dict[str, Any] = {}
    match = _FRONT.match(raw)
    if match:
        front = yaml.safe_load(match.group(1)) or {}
        raw = raw[match.end() :]
    texts: dict[str, str] = {}
    headings = list(_HEADING.finditer(raw))
    for index, heading in enumerate(headings):
        lang = _language(heading.group(1))
        if lang is None:
            continue
        end = headings[index + 1].start() if index + 1 < len(headings) else len(raw)
        texts[lang] = raw[heading.end() : end].strip()
    return {"title": front.get("title"), "segment": front.get("segment") or {}, "texts": texts}


def segment_of(data: dict[str, Any], where: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The segment of the file and the --where filters together (values of a kind ORed)."""
    from handlers.places import gazetteer

    filters = list(where)
    for kind, values in (data.get("segment") or {}).items():
        if kind in broadcasts_segments.FLAGS:
            if values:
                filters.append(str(kind))
            continue
        items = values if isinstance(values, list) else [values]
        filters.append(f"{kind}={','.join(str(v) for v in items)}")
    return broadcasts_segments.parse_filters(
        filters, country=lambda text: gazetteer().country(text)
    )
