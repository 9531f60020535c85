"""Sizes of the scenarios and the figures they report (JSON lines for bench/reliability.py).

CITYBOT_RELIABILITY_SCALE multiplies the loads (default 1: sized for CI on two cores);
CITYBOT_RELIABILITY_WAIT_LEASES=1 waits out the real outbox lease after a kill instead of
expiring it while the process is down; CITYBOT_RELIABILITY_OUT names a file each scenario
appends one JSON line of figures to.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

OUT_VARIABLE = "CITYBOT_RELIABILITY_OUT"


def scale() -> float:
    """The load multiplier."""
    try:
        return max(0.1, float(os.environ.get("CITYBOT_RELIABILITY_SCALE", "1")))
    except ValueError:
        return 1.0


def sized(base: int) -> int:
    """A load of `base` at scale 1."""
    return max(1, round(base * scale()))


def wait_leases() -> bool:
    """Whether to wait out real leases after a kill (minutes) instead of expiring them."""
    return os.environ.get("CITYBOT_RELIABILITY_WAIT_LEASES", "") not in ("", "0")


def record(suite: str, **figures: Any) -> dict[str, Any]:
    """Append the figures of a scenario to the output file, if one is named; return them."""
    line = {"suite": suite, "scale": scale(), **figures}
    target = os.environ.get(OUT_VARIABLE)
    if target:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, sort_keys=True, default=str) + "\n")
    return line
