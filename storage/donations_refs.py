"""Short scrambled references of requests, pledges and shipments (R-7K3F), made and read."""

from __future__ import annotations

import re

_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: nothing to mistake
_BASE = len(_ALPHABET)
_SCRAMBLE = {"R": (7_368_787, 3_511), "P": (5_112_373, 77_017), "S": (6_324_521, 401_221)}
_REF = re.compile(r"^\s*([RPS])[\s\-_.#]*([2-9A-HJ-KM-NP-Z]{4,6})\s*$", re.IGNORECASE)


def make_ref(prefix: str, number: int) -> str:
    """Return the short reference of row `number` (R-7K3F): unique, scrambled, 4+ symbols."""
    multiplier, offset = _SCRAMBLE[prefix]
    width = 4
    while number >= _BASE**width:
        width += 1
    space = _BASE**width
    value = (number * multiplier + offset) % space
    symbols = []
    for _ in range(width):
        value, digit = divmod(value, _BASE)
        symbols.append(_ALPHABET[digit])
    return f"{prefix}-{''.join(reversed(symbols))}"


def parse_ref(text: str) -> str | None:
    """Read a typed reference (`r7k3f`, `R 7K3F`, `R-7K3F`) into its canonical form, or None."""
    match = _REF.match(text)
    if match is None:
        return None
    return f"{match.group(1).upper()}-{match.group(2).upper()}"
