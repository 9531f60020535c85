"""Tolerant parsing of typed quantities and dates."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from handlers.parsing import parse_date, parse_number

QUANTITIES = [
    ("200000", 200000),
    ("200 000", 200000),
    ("200\u00a0000", 200000),
    ("200\u202f000", 200000),
    ("200,000", 200000),
    ("200.000", 200000),
    ("200k", 200000),
    ("200K", 200000),
    ("200 k", 200000),
    ("1.5k", 1500),
    ("2,5 mil", 2500),
    ("1.5 million", 1500000),
    ("3 millones", 3000000),
    ("2 млн", 2000000),
    ("20万", 200000),
    ("20万个", 200000),
    ("500副", 500),
    ("٢٠٠٠٠٠", 200000),
    ("۲۰۰۰۰۰", 200000),
    ("２００００", 20000),
    ("1,000,000", 1000000),
    ("1.000.000", 1000000),
    ("10 000 000", 10000000),
    ("1,234.5", Decimal("1234.5")),
    ("1.234,5", Decimal("1234.5")),
    ("12.", 12),
]
NOT_NUMBERS = [
    "",
    "  ",
    "abc",
    "12a",
    "two hundred",
    "1,2,3",
    "1.000,000.5",
    "5 bananas",
    "k",
    "--5",
]


@pytest.mark.parametrize(("typed", "expected"), QUANTITIES)
def test_quantities_are_read_in_every_common_notation(typed: str, expected: object) -> None:
    """Every notation officials use reads as the same number."""
    assert parse_number(typed) == Decimal(str(expected))


@pytest.mark.parametrize("typed", NOT_NUMBERS)
def test_anything_else_is_not_a_number(typed: str) -> None:
    """Text that is not a number is refused, never guessed."""
    assert parse_number(typed) is None


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2026-12-31", date(2026, 12, 31)),
        ("31/12/2026", date(2026, 12, 31)),
        ("31.12.26", date(2026, 12, 31)),
        ("٣١/١٢/٢٠٢٦", date(2026, 12, 31)),
        ("tomorrow", date(2026, 11, 3)),
        ("2026-02-30", None),
        ("soon", None),
    ],
)
def test_dates(typed: str, expected: date | None) -> None:
    """ISO, day-first and relative dates; impossible dates are refused."""
    assert parse_date(typed, today=date(2026, 11, 2), relative_words={"tomorrow": 1}) == expected
