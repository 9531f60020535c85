"""The survey engine's multiple-choice question: taps toggled, Done checked, typed lists read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.answers import Invalid, check_selection, read_multi, show_answer
from handlers.definitions import Question
from handlers.engine_state import RunState, Turn
from handlers.i18n import t

if TYPE_CHECKING:
    from handlers.engine import Walker


def _on_multi(
    self: Walker,
    state: RunState,
    question: Question,
    text: str,
    value: str | None,
    command: str | None,
) -> Turn:
    """Toggle a tapped option, finish on Done, or read a typed list as the whole answer."""
    if value is not None and value != "#done":
        return self._toggle(state, question, value)
    if value == "#done" or command == "done":
        result = check_selection(question, list(state.pending.get("selected", [])))
    else:
        numbered = [c.id.partition(":")[2] for c in self.choices(state)]
        result = read_multi(question, text, self.lang, numbered)
    if isinstance(result, Invalid):
        return self.reprompt(state, lead=t(result.key, self.lang, **result.values))
    return self._store(state, state.step or "", question, result)


def _toggle(self: Walker, state: RunState, question: Question, value: str) -> Turn:
    """Add or remove a tapped option from the selection in progress."""
    if question.option(value) is None:
        return self.reprompt(state, lead=t("invalid_choice", self.lang))
    selected: list[str] = list(state.pending.get("selected", []))
    if value in selected:
        selected.remove(value)
    else:
        selected.append(value)
    high = int(question.max or len(question.options))
    exclusive = any(o.exclusive for o in question.options if o.id in selected)
    if len(selected) > high or (exclusive and len(selected) > 1):
        key = "exclusive_option" if exclusive and len(selected) > 1 else "invalid_selection_size"
        return self.reprompt(state, lead=t(key, self.lang, min=int(question.min or 1), max=high))
    state.pending["selected"] = selected
    shown = show_answer(question, selected, self.lang) or t("nothing_selected", self.lang)
    return self.reprompt(state, lead=t("selected_so_far", self.lang, selected=shown))
