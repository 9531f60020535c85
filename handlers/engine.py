"""The survey engine: walks any definition, one typed or tapped answer at a time.

Pure: it reads a `RunState`, returns replies and an outcome, and changes only that state.
Step keys are question ids, `question#item` for questions repeated per selected option,
`#summary` for the confirmation and `#edit` while the user picks an answer to change.
`RunState`, `Turn` and the step keys live in `engine_state`; the city and multiple-choice
steps in `engine_city` and `engine_multi` (bound here as methods); all importable from here.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from handlers.answers import (
    Invalid,
    PlaceResolver,
    match_option,
    read_date,
    read_number,
    read_text,
    read_yes_no,
    show_answer,
)
from handlers.definitions import Definition, Question
from handlers.engine_city import _on_city, _place_label
from handlers.engine_multi import _on_multi, _toggle
from handlers.engine_state import EDIT as EDIT
from handlers.engine_state import SUMMARY as SUMMARY
from handlers.engine_state import RunState as RunState
from handlers.engine_state import Turn as Turn
from handlers.i18n import keyword_of, pick, t
from handlers.messages import Choice, Outgoing
from handlers.text import typed_label


class Walker:
    """Walks one definition for one person in one language."""

    def __init__(
        self, definition: Definition, lang: str, places: PlaceResolver, today: date
    ) -> None:
        """Bind the definition, the language, the gazetteer and today's date."""
        self.d = definition
        self.lang = lang
        self.places = places
        self.today = today

    # -- the sequence -------------------------------------------------------------------------

    def steps(self, answers: dict[str, Any]) -> list[str]:
        """List the steps that apply given the answers so far (skip logic, repeats)."""
        out: list[str] = []
        for question in self.d.questions:
            if question.when is not None and not question.when.holds(answers):
                continue
            if question.for_each:
                out += [f"{question.id}#{item}" for item in answers.get(question.for_each) or []]
            else:
                out.append(question.id)
        return out

    def _next(self, state: RunState) -> str:
        """Return the first step without an answer, or the summary."""
        for step in self.steps(state.answers):
            if step not in state.answers:
                return step
        return SUMMARY

    def question_of(self, step: str) -> Question:
        """Return the question a step key asks."""
        return self.d.question(step.split("#", 1)[0])

    def item_label(self, step: str, answers: dict[str, Any]) -> str:
        """Return the label of the option a repeated step is about."""
        if "#" not in step:
            return ""
        question = self.question_of(step)
        item = step.split("#", 1)[1]
        if item == "other" and answers.get(f"{question.for_each}_other"):
            return str(answers[f"{question.for_each}_other"])
        source = self.d.question(question.for_each or "")
        option = source.option(item)
        return pick(option.label, self.lang) if option else item

    # -- prompts ------------------------------------------------------------------------------

    def _token(self, state: RunState, value: str) -> str:
        """Return the id of a button answering the current prompt."""
        return f"s{state.seq}:{value}"

    def choices(self, state: RunState) -> list[Choice]:
        """Return the choices of the current prompt, in the order they are numbered."""
        step = state.step or ""
        if step == SUMMARY:
            keys = ("confirm", "edit", "cancel_run")
            return [Choice(self._token(state, k), t(f"summary_{k}", self.lang)) for k in keys]
        if step == EDIT:
            return [
                Choice(self._token(state, f"e{i}"), self._short(s, state.answers))
                for i, s in enumerate(self._summary_steps(state.answers), 1)
            ]
        question = self.question_of(step)
        found: list[Choice] = []
        if question.type in ("single_choice", "multi_choice"):
            found = [
                Choice(self._token(state, o.id), pick(o.label, self.lang))
                for o in question.options
            ]
            if question.type == "multi_choice":
                found.append(Choice(self._token(state, "#done"), t("done_button", self.lang)))
        elif question.type == "yes_no":
            found = [
                Choice(self._token(state, "#yes"), t("yes", self.lang)),
                Choice(self._token(state, "#no"), t("no", self.lang)),
            ]
        elif question.type == "city" and state.pending.get("city_mode") == "candidates":
            found = [
                Choice(self._token(state, f"c{gid}"), self._place_label(gid))
                for gid in state.pending["candidates"]
            ]
            found.append(Choice(self._token(state, "#notlisted"), t("city_not_listed", self.lang)))
        elif question.type == "city" and state.pending.get("city_mode") is None:
            found = [Choice(self._token(state, "#notlisted"), t("city_not_listed", self.lang))]
        if not question.required:
            found.append(Choice(self._token(state, "#skip"), t("skip_button", self.lang)))
        return found

    _place_label = _place_label

    def prompt(self, state: RunState, *, lead: str = "") -> Outgoing:
        """Render the current step as one message after an optional lead, with a new token."""
        state.seq += 1
        step = state.step or ""
        if step == SUMMARY:
            text = self._summary_text(state.answers)
        elif step == EDIT:
            text = t("edit_which", self.lang)
        else:
            text = self._question_text(state, step)
        multi = step not in (SUMMARY, EDIT) and self.question_of(step).type == "multi_choice"
        full = f"{lead}\n\n{text}" if lead else text
        return Outgoing(text=full, choices=tuple(self.choices(state)), multi=multi)

    def _question_text(self, state: RunState, step: str) -> str:
        """Render a question with its hint and, when re-asked, the earlier answer."""
        question = self.question_of(step)
        mode = state.pending.get("city_mode")
        if question.type == "city" and mode == "candidates":
            return t("city_which", self.lang, name=state.pending.get("typed", ""))
        if question.type == "city" and mode == "manual_name":
            return t("city_manual_name", self.lang)
        if question.type == "city" and mode == "manual_country":
            return t("city_manual_country", self.lang, name=state.pending.get("name", ""))
        text = pick(question.prompt, self.lang).replace(
            "{item}", self.item_label(step, state.answers)
        )
        hint = self._hint(question)
        if hint:
            text = f"{text}\n{hint}"
        if step in state.answers:
            shown = show_answer(question, state.answers[step], self.lang)
            text = f"{text}\n{t('current_answer', self.lang, answer=shown)}"
        return text

    def _hint(self, question: Question) -> str:
        """Explain how to answer a question type."""
        if question.type == "multi_choice":
            low, high = int(question.min or 1), int(question.max or len(question.options))
            return t("hint_multi", self.lang, min=low, max=high)
        if question.type == "date":
            return t("hint_date", self.lang)
        return ""

    def _summary_steps(self, answers: dict[str, Any]) -> list[str]:
        """Steps shown in the summary."""
        return [s for s in self.steps(answers) if self.question_of(s).in_summary]

    def _short(self, step: str, answers: dict[str, Any]) -> str:
        """A question's first sentence, as a label in the summary."""
        text = pick(self.question_of(step).prompt, self.lang).replace(
            "{item}", self.item_label(step, answers)
        )
        for stop in ("?", "？", "؟", ":", "：", ". ", "。"):
            if stop in text:
                return text.split(stop, 1)[0] + stop.strip()
        return text

    def _summary_text(self, answers: dict[str, Any]) -> str:
        """Show every answer for confirmation."""
        lines = [t("summary_title", self.lang, title=pick(self.d.title, self.lang))]
        for step in self._summary_steps(answers):
            shown = show_answer(self.question_of(step), answers.get(step), self.lang)
            lines.append(f"• {self._short(step, answers)} {shown}")
        return "\n".join(lines)

    # -- moving -------------------------------------------------------------------------------

    def start(self, state: RunState) -> Turn:
        """Open the run: the introduction and the first question."""
        state.step = self._next(state)
        return Turn([self.prompt(state, lead=pick(self.d.intro, self.lang))])

    def reprompt(self, state: RunState, lead: str = "") -> Turn:
        """Ask the current step again."""
        return Turn([self.prompt(state, lead=lead)])

    def _advance(self, state: RunState, lead: str = "") -> Turn:
        """Go to the next unanswered step (or the summary, or submit without one)."""
        if state.step and state.step not in (SUMMARY, EDIT):
            state.history.append(state.step)
        state.pending = {}
        state.step = self._next(state)
        if state.step == SUMMARY and not self.d.confirm:
            return Turn([], outcome="submit")
        return Turn([self.prompt(state, lead=lead)])

    def back(self, state: RunState) -> Turn:
        """Return to the previous step, keeping its answer to show."""
        steps = self.steps(state.answers)
        while state.history:
            previous = state.history.pop()
            if previous in steps:
                state.step, state.pending = previous, self._pending_for(previous, state.answers)
                return self.reprompt(state)
        return self.reprompt(state, lead=t("no_back", self.lang))

    def _pending_for(self, step: str, answers: dict[str, Any]) -> dict[str, Any]:
        """Preselect a multiple-choice answer given earlier, so Done keeps it."""
        value = answers.get(step)
        if self.question_of(step).type == "multi_choice" and isinstance(value, list):
            return {"selected": list(value)}
        return {}

    def skip(self, state: RunState) -> Turn:
        """Skip the current step when it is optional."""
        step = state.step or ""
        if step in (SUMMARY, EDIT) or self.question_of(step).required:
            return self.reprompt(state, lead=t("cannot_skip", self.lang))
        state.answers[step] = None
        return self._advance(state)

    def help(self, state: RunState) -> Turn:
        """Explain the current step and the words that work everywhere."""
        return self.reprompt(state, lead=t("survey_help", self.lang))

    def answer(self, state: RunState, text: str, choice_id: str | None) -> Turn:
        """Take one message as the answer to the current step."""
        value = self._choice_value(state, text, choice_id)
        if isinstance(value, Invalid):
            return self.reprompt(state, lead=t(value.key, self.lang, **value.values))
        command = keyword_of(text) if value is None else None
        if value == "#back" or command == "back":
            return self.back(state)
        if value == "#skip" or command == "skip":
            return self.skip(state)
        step = state.step or ""
        if step == SUMMARY:
            return self._on_summary(state, value, command)
        if step == EDIT:
            return self._on_edit(state, value, text)
        question = self.question_of(step)
        if question.type == "city":
            return self._on_city(state, question, text, value)
        if question.type == "multi_choice":
            return self._on_multi(state, question, text, value, command)
        result = self._read(question, text, value)
        if isinstance(result, Invalid):
            return self.reprompt(state, lead=t(result.key, self.lang, **result.values))
        return self._store(state, step, question, result)

    def _store(self, state: RunState, step: str, question: Question, value: Any) -> Turn:
        """Record an answer, then exit, or move on."""
        state.answers[step] = value
        if question.exit_when is not None and _same(value, question.exit_when):
            return Turn([], outcome="exit")
        return self._advance(state)

    def _choice_value(
        self, state: RunState, text: str, choice_id: str | None
    ) -> str | Invalid | None:
        """Turn a tapped button or a typed number into the value of one of the current choices."""
        if choice_id is not None:
            seq, _, value = choice_id[1:].partition(":")
            if not choice_id.startswith("s") or not seq.isdecimal() or int(seq) != state.seq:
                return Invalid("stale_button", {})
            return value
        stripped = text.strip().rstrip(".)")
        step = state.step or ""
        typed_list = step not in (SUMMARY, EDIT) and self.question_of(step).type in (
            "number",
            "multi_choice",
        )
        choices = self.choices(state)
        if stripped.isdecimal() and choices and not typed_list:
            index = int(stripped)
            if not 1 <= index <= len(choices):
                return Invalid("invalid_choice_number", {"max": len(choices)})
            return choices[index - 1].id.partition(":")[2]
        values = {c.id.partition(":")[2]: c.label for c in choices}
        if typed_list:  # a typed option is read as the whole list; only Done and Skip are buttons
            values = {v: label for v, label in values.items() if v.startswith("#")}
        return typed_label(text, values)

    def _read(self, question: Question, text: str, value: str | None) -> Any:
        """Read a single-valued answer from a tapped value or typed text."""
        if question.type == "single_choice":
            option = value if value is not None else match_option(question, text, self.lang)
            if option is None or question.option(option) is None:
                return Invalid("invalid_choice", {})
            return option
        if question.type == "yes_no":
            if value in ("#yes", "#no"):
                return value == "#yes"
            found = read_yes_no(text)
            return Invalid("invalid_yes_no", {}) if found is None else found
        if value is not None:
            return Invalid("invalid_choice", {})
        if question.type == "number":
            return read_number(question, text, self.lang)
        if question.type == "date":
            found_date = read_date(text, today=self.today)
            return found_date if isinstance(found_date, Invalid) else found_date.isoformat()
        return read_text(question, text)

    _on_multi = _on_multi
    _toggle = _toggle

    def _on_summary(self, state: RunState, value: str | None, command: str | None) -> Turn:
        """Submit, change an answer, or cancel from the summary."""
        if value == "confirm" or command in ("yes", "done"):
            return Turn([], outcome="submit")
        if value == "edit":
            state.step = EDIT
            return self.reprompt(state)
        if value == "cancel_run":
            return Turn([], outcome="cancel")
        return self.reprompt(state, lead=t("summary_reask", self.lang))

    def _on_edit(self, state: RunState, value: str | None, text: str) -> Turn:
        """Jump to the answer the user picked to change."""
        steps = self._summary_steps(state.answers)
        if (
            value
            and value.startswith("e")
            and value[1:].isdecimal()
            and 1 <= int(value[1:]) <= len(steps)
        ):
            state.step = steps[int(value[1:]) - 1]
            state.pending = self._pending_for(state.step, state.answers)
            state.history.append(SUMMARY)
            return self.reprompt(state)
        return self.reprompt(state, lead=t("invalid_choice", self.lang))

    _on_city = _on_city

    # -- results ------------------------------------------------------------------------------

    def results(self, state: RunState) -> dict[str, Any]:
        """Return the answers that apply, repeated steps folded into one mapping per question."""
        out: dict[str, Any] = {}
        for step in self.steps(state.answers):
            if step not in state.answers:
                continue
            qid, _, item = step.partition("#")
            if item:
                out.setdefault(qid, {})[item] = state.answers[step]
            else:
                out[qid] = state.answers[step]
        return out


def _same(value: Any, expected: Any) -> bool:
    """Compare an answer with a YAML value (`"no"` matches False for yes/no questions)."""
    if isinstance(value, bool) and isinstance(expected, str):
        return value == (expected.lower() in ("yes", "true"))
    return bool(value == expected)
