"""Reading one typed answer for a question type, and showing a stored answer back."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from handlers.definitions import Question
from handlers.i18n import keyword_of, pick, t
from handlers.parsing import parse_date, parse_number
from handlers.places import Place, country_name
from handlers.text import normalise, split_list


class PlaceResolver(Protocol):
    """What the engine needs of a gazetteer."""

    def resolve(self, text: str) -> list[Place]:
        """Return candidate cities for a typed name."""

    def by_id(self, geonameid: int) -> Place | None:
        """Return a city by id."""

    def country(self, text: str) -> str | None:
        """Return the ISO code of a typed country."""

    def country_timezone(self, code: str) -> str | None:
        """Return a country's main time zone."""


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why an answer was refused: a UI string key and its values."""

    key: str
    values: dict[str, Any]


def match_option(question: Question, text: str, lang: str) -> str | None:
    """Return the option id a typed label, id or accepted word names (any language)."""
    key = normalise(text)
    if not key:
        return None
    for option in question.options:
        names = [option.id, *option.label.values()]
        names += [w for words in option.accept.values() for w in words]
        if key in {normalise(n) for n in names}:
            return option.id
    if len(key) >= 4:  # a unique part of a label in the user's language: "surgical" → masks
        hits = [o.id for o in question.options if key in normalise(pick(o.label, lang))]
        if len(hits) == 1:
            return hits[0]
    return None


def read_number(question: Question, text: str, lang: str) -> Decimal | int | Invalid:
    """Parse a number and check it against the question's bounds."""
    value = parse_number(text)
    bounds = {"min": _fmt(question.min, lang), "max": _fmt(question.max, lang)}
    if value is None:
        return Invalid("invalid_number", bounds)
    if question.integer and value != value.to_integral_value():
        return Invalid("invalid_integer", bounds)
    too_small = question.min is not None and value < Decimal(str(question.min))
    too_big = question.max is not None and value > Decimal(str(question.max))
    if too_small or too_big:
        return Invalid("number_out_of_range", bounds)
    return int(value) if value == value.to_integral_value() else value


def read_text(question: Question, text: str) -> str | Invalid:
    """Accept free text within the question's length."""
    cleaned = re.sub(r"\s+", " ", text).strip()
    if not cleaned:
        return Invalid("text_empty", {})
    if len(cleaned) > question.max_length:
        return Invalid("text_too_long", {"max": question.max_length, "length": len(cleaned)})
    return cleaned


def read_yes_no(text: str) -> bool | None:
    """Read yes or no in any supported language."""
    word = keyword_of(text)
    if word == "yes":
        return True
    if word == "no":
        return False
    return None


def read_date(text: str, *, today: date) -> date | Invalid:
    """Read a date (ISO, day-first, or today/tomorrow in any language)."""
    relative = {normalise(w): 0 for w in _words("today")} | {
        normalise(w): 1 for w in _words("tomorrow")
    }
    value = parse_date(
        normalise(text) if normalise(text) in relative else text,
        today=today,
        relative_words=relative,
    )
    return value if value is not None else Invalid("invalid_date", {})


def _words(command: str) -> list[str]:
    """All keywords of a command across languages."""
    from handlers.i18n import keywords

    return [w for ws in keywords()[command].values() for w in ws]


def read_multi(
    question: Question, text: str, lang: str, numbered: list[str]
) -> list[str] | Invalid:
    """Read a typed list (`1, 3`, `gloves and masks`) into option ids."""
    picked: list[str] = []
    for part in split_list(text):
        option_id = None
        if part.isdecimal() and 1 <= int(part) <= len(numbered):
            option_id = numbered[int(part) - 1]
        else:
            option_id = match_option(question, part, lang)
        if option_id is None or question.option(option_id) is None:
            whole = match_option(question, text, lang)  # a label with spaces or "and" inside
            if whole is not None:
                return check_selection(question, [whole])
            return Invalid("invalid_choice_item", {"item": part[:40]})
        if option_id not in picked:
            picked.append(option_id)
    return check_selection(question, picked)


def check_selection(question: Question, picked: list[str]) -> list[str] | Invalid:
    """Check the size of a selection and its exclusive options."""
    low = int(question.min or 1)
    high = int(question.max or len(question.options))
    exclusive = {o.id for o in question.options if o.exclusive}
    if len(picked) > 1 and exclusive.intersection(picked):
        return Invalid("exclusive_option", {})
    if not low <= len(picked) <= high:
        return Invalid("invalid_selection_size", {"min": low, "max": high})
    return picked


def _fmt(value: float | None, lang: str) -> str:
    """Show a bound in the language's number format."""
    return "" if value is None else show_number(value, lang)


def show_number(value: Any, lang: str) -> str:
    """Format a number with the language's grouping (200 000, 200,000 …)."""
    from babel.numbers import format_decimal

    return str(format_decimal(Decimal(str(value)), locale=lang))


def show_answer(question: Question, value: Any, lang: str, *, item_label: str = "") -> str:
    """Show a stored answer in the user's language."""
    if value is None:
        return t("skipped", lang)
    if question.type == "single_choice":
        option = question.option(str(value))
        return pick(option.label, lang) if option else str(value)
    if question.type == "multi_choice":
        labels = [pick(o.label, lang) for o in question.options if o.id in value]
        return ", ".join(labels)
    if question.type == "yes_no":
        return t("yes", lang) if value else t("no", lang)
    if question.type == "number":
        return show_number(value, lang)
    if question.type == "city":
        return f"{value['name']}, {country_name(value['country_code'], lang)}"
    return str(value)
