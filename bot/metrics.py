"""In-process metrics in the Prometheus text format (version 0.0.4), without a client library.

The runtime's counters (`Runtime.count`) stay where they are; this module adds histograms
(send latency, scheduler sweep lag and duration) and the helpers `/metrics` uses to render
counters and scrape-time gauges. Everything is thread-safe: sends observe on the event loop,
sweeps in APScheduler's worker threads.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_FAMILY = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*")


def number(value: float) -> str:
    """A sample value as Prometheus writes it (integers without a decimal point)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def escape(value: str) -> str:
    """Escape a label value (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels(pairs: Iterable[tuple[str, str]]) -> str:
    """`{a="x",b="y"}`, or nothing without labels."""
    inner = ",".join(f'{name}="{escape(value)}"' for name, value in pairs)
    return "{" + inner + "}" if inner else ""


class Histogram:
    """Cumulative buckets, a sum and a count per label set."""

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        """Name the family, its labels and its upper bounds (+Inf is added)."""
        self.name = name
        self.help_text = help_text
        self.label_names = tuple(label_names)
        self.buckets = tuple(sorted(buckets))
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, value: float, *label_values: str) -> None:
        """Record one observation for these label values (in the order of `label_names`)."""
        if len(label_values) != len(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}")
        with self._lock:
            counts, total = self._series.setdefault(
                label_values, ([0] * (len(self.buckets) + 1), [0.0])
            )
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
            counts[-1] += 1
            total[0] += value

    def count(self, *label_values: str) -> int:
        """How many observations a label set has."""
        with self._lock:
            series = self._series.get(label_values)
            return series[0][-1] if series is not None else 0

    def render(self) -> list[str]:
        """The family's HELP, TYPE and sample lines."""
        lines = [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} histogram"]
        with self._lock:
            series = sorted((key, (list(c), t[0])) for key, (c, t) in self._series.items())
        for key, (counts, total) in series:
            base = list(zip(self.label_names, key, strict=True))
            for bound, n in zip((*self.buckets, math.inf), counts, strict=True):
                lines.append(f"{self.name}_bucket{labels([*base, ('le', number(bound))])} {n}")
            lines.append(f"{self.name}_sum{labels(base)} {number(total)}")
            lines.append(f"{self.name}_count{labels(base)} {counts[-1]}")
        return lines


class Registry:
    """The histograms of one runtime, rendered together."""

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._histograms: dict[str, Histogram] = {}

    def histogram(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> Histogram:
        """The histogram of this name, created on first use."""
        with self._lock:
            found = self._histograms.get(name)
            if found is None:
                found = Histogram(name, help_text, label_names, buckets)
                self._histograms[name] = found
            return found

    def render(self) -> list[str]:
        """Every histogram, by name."""
        with self._lock:
            histograms = sorted(self._histograms.items())
        return [line for _name, h in histograms for line in h.render()]


def send_latency(registry: Registry) -> Histogram:
    """Seconds a channel's sender took to hand one message to its platform."""
    return registry.histogram(
        "citybot_send_seconds", "Time to send one outbox message, by channel.", ("channel",)
    )


def sweep_recorder(registry: Registry) -> Callable[[str, float, float, bool], None]:
    """An observer for scheduler sweeps: lag and duration histograms per sweep id."""
    lag = registry.histogram(
        "citybot_sweep_lag_seconds",
        "How late a scheduler sweep started against its schedule.",
        ("sweep",),
        LAG_BUCKETS,
    )
    duration = registry.histogram(
        "citybot_sweep_duration_seconds",
        "How long a scheduler sweep ran.",
        ("sweep", "result"),
        LAG_BUCKETS,
    )

    def record(sweep_id: str, lag_seconds: float, duration_seconds: float, ok: bool) -> None:
        """Record one sweep run."""
        lag.observe(lag_seconds, sweep_id)
        duration.observe(duration_seconds, sweep_id, "ok" if ok else "error")

    return record


def counter_lines(counters: Mapping[str, int]) -> list[str]:
    """Counters named `family{labels}` as `citybot_<family>` samples, one TYPE line each."""
    lines: list[str] = []
    typed: set[str] = set()
    for name, value in sorted(counters.items()):
        match = _FAMILY.match(name)
        family = f"citybot_{match.group(0) if match else name}"
        if family not in typed:
            typed.add(family)
            lines.append(f"# TYPE {family} counter")
        lines.append(f"citybot_{name} {number(value)}")
    return lines


def gauge_lines(
    name: str, help_text: str, samples: Mapping[tuple[tuple[str, str], ...], float]
) -> list[str]:
    """A gauge family: HELP, TYPE and one line per label set."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    lines += [f"{name}{labels(key)} {number(value)}" for key, value in sorted(samples.items())]
    return lines
