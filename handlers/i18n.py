"""UI strings and keywords in every supported language (data in strings.yaml, keywords.yaml)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from handlers.text import normalise

_HERE = Path(__file__).parent

NATIVE_NAMES = {
    "en": "English",
    "fr": "Français",
    "es": "Español",
    "ar": "العربية",
    "ru": "Русский",
    "zh": "中文",
    "pt": "Português",
}


@cache
def strings() -> dict[str, dict[str, str]]:
    """Load the UI strings once: key → language → text."""
    with (_HERE / "strings.yaml").open(encoding="utf-8") as handle:
        data: dict[str, dict[str, str]] = yaml.safe_load(handle)
    return data


@cache
def keywords() -> dict[str, dict[str, list[str]]]:
    """Load the keywords once: command → language → words."""
    with (_HERE / "keywords.yaml").open(encoding="utf-8") as handle:
        data: dict[str, dict[str, list[str]]] = yaml.safe_load(handle)
    return data


@cache
def _keyword_index() -> dict[str, str]:
    """Map every normalised keyword, in every language, to its command."""
    index: dict[str, str] = {}
    for command, per_language in keywords().items():
        for words in per_language.values():
            for word in words:
                index.setdefault(normalise(word), command)
    return index


def t(key: str, lang: str, **values: Any) -> str:
    """Return the UI string `key` in `lang` (English if missing), formatted with `values`."""
    entry = strings()[key]
    text = entry.get(lang) or entry["en"]
    return text.format(**values) if values else text


def pick(texts: dict[str, str], lang: str) -> str:
    """Return the `lang` text of a localized mapping from a definition (English if missing)."""
    return texts.get(lang) or texts["en"]


def keyword_of(text: str) -> str | None:
    """Return the command a whole message names (`stop`, `aide`, `/help` …), or None."""
    cleaned = text.strip()
    if cleaned.startswith("/"):
        cleaned = cleaned[1:].split("@", 1)[0].split(" ", 1)[0]
    if not cleaned or len(cleaned) > 40:
        return None
    return _keyword_index().get(normalise(cleaned))


def words_for(command: str, lang: str) -> list[str]:
    """Return the keywords of a command in a language (for help texts)."""
    per_language = keywords()[command]
    return per_language.get(lang) or per_language["en"]


# Words that say something about the language of a new contact: greetings and the names of
# things to do. "ok", "no", "2" or "stop" say nothing.
_TELLING = frozenset({"hello", "needs", "ppe", "register", "help", "menu", "language", "mydata"})


@cache
def _keyword_languages() -> dict[str, frozenset[str]]:
    """Map the telling keywords, normalised, to the languages that list them."""
    found: dict[str, set[str]] = {}
    for command, per_language in keywords().items():
        if command not in _TELLING:
            continue
        for lang, words in per_language.items():
            for word in words:
                found.setdefault(normalise(word), set()).add(lang)
    return {word: frozenset(langs) for word, langs in found.items()}


def greeting_language(text: str, supported: tuple[str, ...]) -> str | None:
    """Return the language of a one-word greeting or keyword (`bonjour`, `encuesta`) if unique."""
    cleaned = text.strip().lstrip("/")
    langs = _keyword_languages().get(normalise(cleaned), frozenset()) & set(supported)
    return next(iter(langs)) if len(langs) == 1 else None
