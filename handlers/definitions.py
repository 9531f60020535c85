"""Survey and form definitions: parsed and validated from the YAML files in handlers/surveys/."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SURVEY_DIR = Path(__file__).parent / "surveys"
QUESTION_TYPES = frozenset(
    {"single_choice", "multi_choice", "number", "text", "yes_no", "date", "city"}
)
CHOICE_TYPES = frozenset({"single_choice", "multi_choice"})


class DefinitionError(ValueError):
    """A survey definition that cannot be walked."""


@dataclass(frozen=True, slots=True)
class Option:
    """One option of a choice question."""

    id: str
    label: dict[str, str]
    accept: dict[str, tuple[str, ...]] = field(default_factory=dict)
    exclusive: bool = False


@dataclass(frozen=True, slots=True)
class Condition:
    """Ask a question only when an earlier answer equals or includes a value."""

    answer: str
    equals: Any = None
    includes: str | None = None

    def holds(self, answers: dict[str, Any]) -> bool:
        """Say whether the condition is met by the answers so far."""
        value = answers.get(self.answer)
        if self.includes is not None:
            return isinstance(value, list) and self.includes in value
        return bool(value == self.equals)


@dataclass(frozen=True, slots=True)
class Question:
    """A typed question."""

    id: str
    type: str
    prompt: dict[str, str]
    required: bool = True
    options: tuple[Option, ...] = ()
    min: float | None = None
    max: float | None = None
    integer: bool = False
    max_length: int = 1000
    when: Condition | None = None
    for_each: str | None = None
    exit_when: Any = None
    exit_message: dict[str, str] | None = None
    in_summary: bool = True

    def option(self, option_id: str) -> Option | None:
        """Return the option with this id."""
        return next((o for o in self.options if o.id == option_id), None)


@dataclass(frozen=True, slots=True)
class Definition:
    """A whole survey or form."""

    id: str
    version: int
    kind: str
    title: dict[str, str]
    intro: dict[str, str]
    done: dict[str, str]
    questions: tuple[Question, ...]
    body: dict[str, Any]
    digest: str
    on_submit: str | None = None
    consent_version: str | None = None
    confirm: bool = True

    def question(self, question_id: str) -> Question:
        """Return a question by id."""
        for question in self.questions:
            if question.id == question_id:
                return question
        raise KeyError(question_id)


def _texts(raw: Any, where: str) -> dict[str, str]:
    """Validate a localized text mapping (English required)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("en"), str):
        raise DefinitionError(f"{where}: needs an `en` text")
    return {str(k): str(v) for k, v in raw.items()}


def _option(raw: dict[str, Any], where: str) -> Option:
    """Parse one option."""
    accept = {str(k): tuple(str(w) for w in v) for k, v in (raw.get("accept") or {}).items()}
    return Option(
        id=str(raw["id"]),
        label=_texts(raw.get("label"), f"{where}.label"),
        accept=accept,
        exclusive=bool(raw.get("exclusive", False)),
    )


def _question(raw: dict[str, Any], earlier: dict[str, Question]) -> Question:
    """Parse and check one question against the ones before it."""
    qid = str(raw.get("id", ""))
    qtype = raw.get("type")
    if not qid or qid in earlier:
        raise DefinitionError(f"question id {qid!r} missing or repeated")
    if qtype not in QUESTION_TYPES:
        raise DefinitionError(f"{qid}: unknown type {qtype!r}")
    options = tuple(_option(o, f"{qid}.{o.get('id')}") for o in raw.get("options") or [])
    if (qtype in CHOICE_TYPES) != bool(options):
        raise DefinitionError(f"{qid}: options belong to choice questions only")
    when = None
    if raw.get("when"):
        cond = raw["when"]
        if cond.get("answer") not in earlier:
            raise DefinitionError(f"{qid}: `when` must name an earlier question")
        when = Condition(
            answer=cond["answer"], equals=cond.get("equals"), includes=cond.get("includes")
        )
    for_each = raw.get("for_each")
    if for_each is not None and (
        for_each not in earlier or earlier[for_each].type != "multi_choice"
    ):
        raise DefinitionError(f"{qid}: `for_each` must name an earlier multiple-choice question")
    exit_message = raw.get("exit_message")
    return Question(
        id=qid,
        type=qtype,
        prompt=_texts(raw.get("prompt"), f"{qid}.prompt"),
        required=bool(raw.get("required", True)),
        options=options,
        min=raw.get("min"),
        max=raw.get("max"),
        integer=bool(raw.get("integer", False)),
        max_length=int(raw.get("max_length", 1000)),
        when=when,
        for_each=for_each,
        exit_when=raw.get("exit_when"),
        exit_message=_texts(exit_message, f"{qid}.exit_message") if exit_message else None,
        in_summary=bool(raw.get("in_summary", raw.get("exit_when") is None)),
    )


def parse_definition(body: dict[str, Any]) -> Definition:
    """Validate a definition's YAML body and build it."""
    earlier: dict[str, Question] = {}
    for raw in body.get("questions") or []:
        question = _question(raw, earlier)
        earlier[question.id] = question
    if not earlier:
        raise DefinitionError(f"{body.get('id')}: no questions")
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return Definition(
        id=str(body["id"]),
        version=int(body["version"]),
        kind=str(body.get("kind", "survey")),
        title=_texts(body.get("title"), "title"),
        intro=_texts(body.get("intro"), "intro"),
        done=_texts(body.get("done"), "done"),
        questions=tuple(earlier.values()),
        body=body,
        digest=digest,
        on_submit=body.get("on_submit"),
        consent_version=body.get("consent_version"),
        confirm=bool(body.get("confirm", True)),
    )


@cache
def catalog(directory: Path = SURVEY_DIR) -> dict[str, Definition]:
    """Load every definition file of a directory once, keyed by id."""
    found: dict[str, Definition] = {}
    for path in sorted(directory.glob("*.yaml")):
        with path.open(encoding="utf-8") as handle:
            definition = parse_definition(yaml.safe_load(handle))
        found[definition.id] = definition
    return found


@cache
def _from_body_cached(body_json: str) -> Definition:
    """Parse a stored definition body once per process."""
    return parse_definition(json.loads(body_json))


def from_stored(body: dict[str, Any]) -> Definition:
    """Rebuild the definition a run was pinned to from its stored copy."""
    return _from_body_cached(json.dumps(body, sort_keys=True))
