"""Dialog transcripts: every tests/transcripts/*.yaml is played as one test (id = file stem).

A transcript is one person talking to the bot through the `dialog` fixture (the real inbox →
router → outbox → dispatcher path, with the fixed test clock, one second per message). Format::

    name: development needs survey in French, with back, skip and bad inputs
    lang: fr                # the language replies are expected in (for `expect_key`, `tap_key`)
    urn: console:fr-dev     # optional (default console:<file stem>); must be a console URN
    hint: fr                # optional: platform language hint sent with the first message
    xfail: "why"            # optional: a known bot bug; the test must fail (strict xfail)
    steps:
      - say: "Bonjour, je voudrais répondre à l'enquête"   # send a text ...
        hint: fr                     # ... optionally with a language hint
      - tap: "Oui"                   # tap the last reply's choice with this exact label
      - tap_key: summary_confirm     # tap the choice labelled with this UI string (in `lang`)
      - advance: "8d"                # move the clock forward: <number><s|m|h|d>
      - check: {...}                 # check what is stored now (same keys as `result`)
    result: {...}                    # optional: checked after the last step

Checks on the last reply of a `say`/`tap`/`tap_key` step (each one optional):

    expect: ["Acceptez-vous"]        # substrings of the reply text (a string or a list)
    not_expect: ["..."]              # substrings that must not be in it
    expect_key: invalid_choice_number
    values: {max: 9}                 # UI strings (handlers/strings.yaml) in `lang`, one or a
                                     #   list, that must appear: with `values` (used by every
                                     #   key listed) the whole formatted string, without them
                                     #   its text up to the first {field}
    not_expect_key: run_expired      # UI strings that must not appear (up to the first {field})
    choices: ["Oui", "Non"]          # the exact labels of the reply's choices, in order
    lang: ru                         # from this step on, replies are expected in this language

Prefer `expect_key`/`tap_key` wherever a UI string is meant, so transcripts survive wording
edits; use literal `expect` for survey texts (handlers/surveys/*.yaml).

Stored state (`result`, or a `check` step), read with the storage functions only:

    responses: 1                     # how many survey responses are stored, all surveys
    survey: development_needs        # the one response of this survey (asserted unique) ...
    answers: {priorities: [...]}     # ... has these answers (listed keys only, compared whole)
    response: {contact_id: null}     # ... and these fields
    contact: {language: fr}          # the contact holding `urn` has these fields;
                                     #   `contact: null` means no contact holds it any more

A field expected as "<any>" must be stored and not null. Malformed transcripts (unknown keys,
unknown UI strings, no action or two) fail at collection, xfail or not.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import Engine

from handlers.config import ALL_LANGUAGES
from handlers.i18n import strings, t
from storage import contacts, surveys
from storage.db import session_scope
from tests.support import Dialog, fragment

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "transcripts"
ANY = "<any>"
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
TOP_KEYS = {"name", "lang", "urn", "hint", "xfail", "steps", "result"}
ACTIONS = {"say", "tap", "tap_key", "advance", "check"}
REPLY_CHECKS = {"expect", "not_expect", "expect_key", "not_expect_key", "values", "choices"}
STEP_KEYS = ACTIONS | REPLY_CHECKS | {"hint", "lang"}
STORE_KEYS = {"responses", "survey", "answers", "response", "contact"}


def require(condition: object, message: str) -> None:
    """Fail with only this message (no introspection of large values) when not `condition`."""
    if not condition:
        raise AssertionError(message)


def load(path: Path) -> dict[str, Any]:
    """Read a transcript and check its shape, so that a typo fails loudly."""
    with path.open(encoding="utf-8") as handle:
        data: Any = yaml.safe_load(handle)
    require(isinstance(data, dict), f"{path.name}: a transcript is a mapping")
    unknown = set(data) - TOP_KEYS
    require(not unknown, f"{path.name}: unknown keys {sorted(unknown)}")
    for key in ("name", "lang", "steps"):
        require(data.get(key), f"{path.name}: `{key}` is required")
    require(data["lang"] in ALL_LANGUAGES, f"{path.name}: unknown lang {data['lang']!r}")
    require(str(data.get("urn", "console:")).startswith("console:"), f"{path.name}: console URN")
    for index, step in enumerate(data["steps"], 1):
        check_shape(step, f"{path.name} step {index}")
    check_store_shape(data.get("result") or {}, f"{path.name} result")
    return dict(data)


def check_shape(step: Any, where: str) -> None:
    """Check one step: one action, known keys, existing UI strings, a readable duration."""
    require(isinstance(step, dict), f"{where}: a step is a mapping")
    unknown = set(step) - STEP_KEYS
    require(not unknown, f"{where}: unknown keys {sorted(unknown)}")
    actions = set(step) & ACTIONS
    require(len(actions) == 1, f"{where}: needs exactly one of {sorted(ACTIONS)}")
    if actions & {"advance", "check"}:
        extra = set(step) & (REPLY_CHECKS | {"hint"})
        require(not extra, f"{where}: {sorted(extra)} need a message (say/tap)")
    keys = as_list(step.get("expect_key")) + as_list(step.get("not_expect_key"))
    for key in keys + as_list(step.get("tap_key")):
        require(key in strings(), f"{where}: no UI string {key!r}")
    require(step.get("lang", "en") in ALL_LANGUAGES, f"{where}: unknown lang")
    if "advance" in step:
        duration(step["advance"])
    if "check" in step:
        check_store_shape(step["check"] or {}, where)


def check_store_shape(spec: Any, where: str) -> None:
    """Check a `result` or `check` mapping."""
    require(isinstance(spec, dict), f"{where}: a mapping of {sorted(STORE_KEYS)}")
    unknown = set(spec) - STORE_KEYS
    require(not unknown, f"{where}: unknown keys {sorted(unknown)}")
    require("survey" in spec or not {"answers", "response"} & set(spec), f"{where}: no `survey`")


def as_list(value: Any) -> list[Any]:
    """Accept one value or a list of them."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def duration(text: str) -> timedelta:
    """Read `30s`, `15m`, `5h` or `8d`."""
    number, unit = str(text)[:-1], str(text)[-1:]
    require(unit in UNITS and number.replace(".", "", 1).isdigit(), f"bad duration {text!r}")
    return timedelta(**{UNITS[unit]: float(number)})


def matches(actual: Any, expected: Any) -> bool:
    """Compare a stored value with an expected one (`<any>`: anything but null)."""
    if expected == ANY:
        return actual is not None
    return bool(actual == expected)


def check_fields(actual: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    """Assert that each expected field has the expected value."""
    for key, value in expected.items():
        assert key in actual, f"{what} has no field {key!r}: {sorted(actual)}"
        assert matches(actual[key], value), f"{what}.{key}: {actual[key]!r} != {value!r}"


def check_store(engine: Engine, urn: str, spec: dict[str, Any], where: str) -> None:
    """Assert what is stored (see the module docstring)."""
    with session_scope(engine) as session:
        if "responses" in spec:
            found = surveys.responses(session=session)
            assert len(found) == spec["responses"], (
                f"{where}: {len(found)} responses stored, expected {spec['responses']}: "
                f"{[(r.survey_id, r.answers) for r in found]}"
            )
        if "survey" in spec:
            found = surveys.responses(session=session, survey_id=spec["survey"])
            assert len(found) == 1, f"{where}: {len(found)} responses to {spec['survey']}"
            check_fields(found[0].answers, spec.get("answers") or {}, f"{where}: answers")
            check_fields(found[0].model_dump(), spec.get("response") or {}, f"{where}: response")
        if "contact" in spec:
            contact = contacts.get_contact_by_urn(session=session, urn=urn)
            if spec["contact"] is None:
                assert contact is None, f"{where}: {urn} still has a contact: {contact}"
            else:
                assert contact is not None, f"{where}: no contact holds {urn}"
                check_fields(contact.model_dump(), spec["contact"], f"{where}: contact")


def check_reply(d: Dialog, step: dict[str, Any], lang: str, where: str) -> None:
    """Assert the expectations of one step on the last reply."""
    text = d.text()
    shown = f"\n--- reply ---\n{text}\n--- choices: {d.labels()}"
    values = step.get("values") or {}
    for part in as_list(step.get("expect")):
        assert str(part) in text, f"{where}: {part!r} not in the reply{shown}"
    for part in as_list(step.get("not_expect")):
        assert str(part) not in text, f"{where}: {part!r} unexpectedly in the reply{shown}"
    for key in as_list(step.get("expect_key")):
        part = fragment(key, lang, **values)
        assert part in text, f"{where}: {key} ({lang}) {part!r} not in the reply{shown}"
    for key in as_list(step.get("not_expect_key")):
        part = fragment(key, lang)
        assert part not in text, f"{where}: {key} ({lang}) unexpectedly in the reply{shown}"
    if "choices" in step:
        expected = [str(c) for c in step["choices"]]
        assert d.labels() == expected, f"{where}: choices should be {expected}{shown}"


def play(d: Dialog, engine: Engine, transcript: dict[str, Any], name: str) -> None:
    """Play every step of a transcript, then check its result."""
    lang = transcript["lang"]
    hint = transcript.get("hint")
    for index, step in enumerate(transcript["steps"], 1):
        lang = step.get("lang", lang)
        where = f"{name} step {index}"
        if "advance" in step:
            d.clock.advance(duration(step["advance"]))
            continue
        if "check" in step:
            check_store(engine, d.urn, step["check"] or {}, where)
            continue
        step_hint = step.get("hint", hint)
        hint = None
        if "say" in step:
            where += f" (say {step['say']!r})"
            d.say(str(step["say"]), hint=step_hint)
        else:
            label = str(step["tap"]) if "tap" in step else t(step["tap_key"], lang)
            where += f" (tap {label!r})"
            d.say(tap=label, hint=step_hint)
        check_reply(d, step, lang, where)
    if transcript.get("result"):
        check_store(engine, d.urn, transcript["result"], f"{name} result")


def cases() -> list[Any]:
    """One pytest case per transcript file; known bugs are strict xfails."""
    params = []
    for path in sorted(TRANSCRIPTS.glob("*.yaml")):
        reason = load(path).get("xfail")  # a malformed file fails collection, xfail or not
        marks = [pytest.mark.xfail(strict=True, reason=str(reason))] if reason else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def test_there_are_transcripts() -> None:
    """The transcript directory is not empty (a wrong path would run no case at all)."""
    assert cases()


@pytest.mark.parametrize("path", cases())
def test_transcript(path: Path, dialog: Callable[..., Dialog], engine: Engine) -> None:
    """Play one transcript end to end and check what it expects."""
    transcript = load(path)
    urn = transcript.get("urn") or f"console:{path.stem}"  # the dialog drains console only
    play(dialog(urn), engine, transcript, path.stem)
