"""Tolerant parsing of typed numbers, dates and yes/no answers."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

_MULTIPLIERS = {
    "k": 1_000,
    "thousand": 1_000,
    "mil": 1_000,
    "mille": 1_000,
    "тыс": 1_000,
    "千": 1_000,
    "万": 10_000,
    "m": 1_000_000,
    "mn": 1_000_000,
    "million": 1_000_000,
    "millions": 1_000_000,
    "millon": 1_000_000,
    "millones": 1_000_000,
    "milhao": 1_000_000,
    "milhoes": 1_000_000,
    "млн": 1_000_000,
    "миллион": 1_000_000,
    "百万": 1_000_000,
    "مليون": 1_000_000,
    "الف": 1_000,
    "ألف": 1_000,
}
_SPACES = "\u0020\u00a0\u202f\u2009\u2007\u066c'’"
_MEASURE_WORDS = re.compile(r"[个件只副台套]$")  # 20万个, 500副: Chinese counters, not units
_NUMBER = re.compile(r"^([+-]?[0-9][0-9.,]*)\s*([^\d\s]*)$")


def _ascii_digits(text: str) -> str:
    """Map every Unicode decimal digit (Arabic-Indic, Persian, full-width…) to ASCII."""
    out = []
    for ch in text:
        if ch.isdigit() and unicodedata.category(ch) == "Nd":
            out.append(str(unicodedata.digit(ch)))
        elif ch == "\u066b":  # Arabic decimal separator
            out.append(".")
        elif ch == "\u060c":  # Arabic comma
            out.append(",")
        else:
            out.append(ch)
    return "".join(out)


def _strip_accents(text: str) -> str:
    """Drop combining marks (milhões → milhoes)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _digits_value(token: str) -> Decimal | None:
    """Read `200,000` / `200.000` / `1,5` / `2.5` as a number; None when it is not one."""
    if not token or not token[0].isdigit() and token[0] not in "+-":
        return None
    seps = [c for c in token if c in ".,"]
    if not seps:
        return Decimal(token)
    groups = re.split(r"[.,]", token.lstrip("+-"))
    if len(set(seps)) == 1:
        sep = seps[0]
        # one kind of separator: thousands when every group after the first has 3 digits
        if len(groups) > 2 or (len(groups[-1]) == 3 and len(groups[0]) <= 3):
            if all(len(g) == 3 for g in groups[1:]) and 1 <= len(groups[0]) <= 3:
                return Decimal(token.replace(sep, ""))
            if len(groups) > 2:
                return None
        return Decimal(token.replace(",", "."))
    # both: the last one is the decimal separator
    last = max(token.rfind("."), token.rfind(","))
    integer, fraction = token[:last], token[last + 1 :]
    int_groups = re.split(r"[.,]", integer.lstrip("+-"))
    if not all(len(g) == 3 for g in int_groups[1:]) or len({c for c in integer if c in ".,"}) > 1:
        return None
    return Decimal(re.sub(r"[.,]", "", integer) + "." + fraction)


def parse_number(text: str) -> Decimal | None:
    """Parse `200000`, `200 000`, `200,000`, `200.000`, `200k`, `1.5 million`, `٢٠٠٠٠٠`, `20万`."""
    cleaned = _ascii_digits(unicodedata.normalize("NFKC", text)).strip().casefold()
    for space in _SPACES:
        cleaned = re.sub(rf"(?<=\d){re.escape(space)}(?=\d{{3}}\b)", "", cleaned)
    cleaned = _MEASURE_WORDS.sub("", _strip_accents(cleaned).rstrip(".!"))
    match = _NUMBER.match(cleaned)
    if match is None:
        return None
    number, suffix = match.groups()
    try:
        value = _digits_value(number)
    except InvalidOperation:
        return None
    if value is None:
        return None
    suffix = suffix.strip(". ")
    if suffix:
        multiplier = _MULTIPLIERS.get(suffix)
        if multiplier is None:
            return None
        value *= multiplier
    return value


_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_DMY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{2,4})$")


def parse_date(
    text: str, *, today: date, relative_words: dict[str, int] | None = None
) -> date | None:
    """Parse an ISO date, a day-first date (31/12/2026) or a relative word (today, tomorrow)."""
    cleaned = _ascii_digits(unicodedata.normalize("NFKC", text)).strip().casefold()
    if relative_words and cleaned in relative_words:
        return today + timedelta(days=relative_words[cleaned])
    for pattern, order in ((_ISO, "ymd"), (_DMY, "dmy")):
        match = pattern.match(cleaned)
        if match is None:
            continue
        parts = dict(zip(order, (int(g) for g in match.groups()), strict=True))
        year = parts["y"] + 2000 if parts["y"] < 100 else parts["y"]
        try:
            return date(year, parts["m"], parts["d"])
        except ValueError:
            return None
    return None
