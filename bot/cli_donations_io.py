"""What the donations CLI reads and writes: KEY=QUANTITY arguments, request references, lines."""

from __future__ import annotations

import sys
from typing import Any

from sqlmodel import Session


def out(text: str) -> None:
    """Write one line to standard output."""
    sys.stdout.write(f"{text}\n")


def pairs(values: list[str]) -> list[tuple[str, int]]:
    """Read `key=quantity` arguments."""
    found = []
    for value in values:
        key, sep, quantity = value.partition("=")
        if not sep or not quantity.strip().isdecimal():
            raise ValueError(f"expected KEY=QUANTITY, got {value!r}")
        found.append((key.strip(), int(quantity)))
    return found


def find_request(session: Session, ref: str) -> Any:
    """Find a request or fail."""
    from storage import donations as store

    request = store.request_by_ref(session=session, ref=ref)
    if request is None:
        raise ValueError(f"no request {ref}")
    return request
