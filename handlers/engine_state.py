"""The survey engine's state: the step keys of the summary and the edit, a run's state, a turn."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from handlers.messages import Outgoing

SUMMARY = "#summary"
EDIT = "#edit"


@dataclass(slots=True)
class RunState:
    """Where a run stands: current step, answers by step key, the way back, the prompt number."""

    step: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    seq: int = 0
    pending: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Turn:
    """What one step produced: replies and, at the end, `submit`, `exit` or `cancel`."""

    replies: list[Outgoing]
    outcome: str | None = None
