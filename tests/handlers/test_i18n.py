"""Every UI string, keyword and survey text exists in every supported language."""

from __future__ import annotations

import re
from typing import Any

import pytest

from handlers.config import ALL_LANGUAGES
from handlers.definitions import catalog
from handlers.i18n import keyword_of, keywords, strings
from handlers.text import normalise


def _localized(node: Any, path: str = "") -> list[tuple[str, dict[str, str]]]:
    """Find every localized text mapping (one with an `en` string) in a definition body."""
    found: list[tuple[str, dict[str, str]]] = []
    if isinstance(node, dict):
        if isinstance(node.get("en"), str):
            found.append((path, node))
        for key, value in node.items():
            found += _localized(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _localized(value, f"{path}[{index}]")
    return found


@pytest.mark.parametrize("key", sorted(strings()))
def test_every_ui_string_is_in_every_language(key: str) -> None:
    """No UI string falls back to English; placeholders match the English ones."""
    entry = strings()[key]
    missing = [lang for lang in ALL_LANGUAGES if not entry.get(lang)]
    assert not missing, f"{key} lacks {missing}"
    names = sorted(re.findall(r"\{(\w+)\}", entry["en"]))
    for lang in ALL_LANGUAGES:
        assert sorted(re.findall(r"\{(\w+)\}", entry[lang])) == names, f"{key}/{lang}"


@pytest.mark.parametrize("survey_id", sorted(catalog()))
def test_every_survey_text_is_in_every_language(survey_id: str) -> None:
    """Titles, prompts, options and messages of every survey exist in every language."""
    texts = _localized(catalog()[survey_id].body)
    assert texts
    for path, mapping in texts:
        missing = [lang for lang in ALL_LANGUAGES if not mapping.get(lang)]
        assert not missing, f"{survey_id}{path} lacks {missing}"
        for lang in ALL_LANGUAGES:
            assert mapping[lang].count("{item}") == mapping["en"].count("{item}"), path


@pytest.mark.parametrize("command", sorted(keywords()))
def test_every_keyword_command_has_words_in_every_language(command: str) -> None:
    """back, skip, stop … can be typed in every language."""
    assert all(keywords()[command].get(lang) for lang in ALL_LANGUAGES), command


def test_no_keyword_belongs_to_two_commands() -> None:
    """A typed word means one thing only."""
    owner: dict[str, str] = {}
    for command, per_language in keywords().items():
        for words in per_language.values():
            for word in words:
                key = normalise(word)
                assert owner.setdefault(key, command) == command, (word, command, owner[key])


@pytest.mark.parametrize(
    ("typed", "command"),
    [
        ("STOP", "stop"),
        ("Arrêt", "stop"),
        ("/help", "help"),
        ("/help@CityBot", "help"),
        ("aide", "help"),
        ("ayuda", "help"),
        ("مساعدة", "help"),
        ("помощь", "help"),
        ("帮助", "help"),
        ("ajuda", "help"),
        ("retour", "back"),
        ("назад", "back"),
        ("跳过", "skip"),
        ("تخطي", "skip"),
        ("oui", "yes"),
        ("Sí", "yes"),
        ("não", "no"),
        ("нет", "no"),
        ("Koidu", None),
        ("I need masks", None),
    ],
)
def test_keywords_are_recognised_in_any_language(typed: str, command: str | None) -> None:
    """Whole-message keywords in any language (and /commands) map to their command."""
    assert keyword_of(typed) == command
