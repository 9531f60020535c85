"""Survey definitions: validation, and runs pinned to the version they started with."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from handlers.definitions import DefinitionError, catalog, parse_definition
from storage import surveys
from storage.db import session_scope
from tests.support import Dialog

BASE: dict[str, Any] = {
    "id": "x",
    "version": 1,
    "title": {"en": "X"},
    "intro": {"en": "Intro"},
    "done": {"en": "Done"},
    "questions": [
        {
            "id": "a",
            "type": "multi_choice",
            "prompt": {"en": "A?"},
            "options": [{"id": "o", "label": {"en": "O"}}],
        },
        {"id": "b", "type": "number", "prompt": {"en": "B {item}?"}, "for_each": "a"},
    ],
}


def _broken(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """A copy of the base definition with one change."""
    body = copy.deepcopy(BASE)
    change(body)
    return body


@pytest.mark.parametrize(
    "body",
    [
        _broken(lambda b: b["questions"][0].update(type="essay")),
        _broken(lambda b: b["questions"][0].pop("options")),
        _broken(lambda b: b["questions"][1].update(options=[{"id": "p", "label": {"en": "P"}}])),
        _broken(lambda b: b["questions"][1].update(for_each="nope")),
        _broken(lambda b: b["questions"][1].update(when={"answer": "later"})),
        _broken(lambda b: b["questions"][1].update(id="a")),
        _broken(lambda b: b["questions"][0].update(prompt={"fr": "A ?"})),
        _broken(lambda b: b.update(questions=[])),
    ],
)
def test_broken_definitions_are_refused_at_load(body: dict[str, Any]) -> None:
    """Unknown types, missing options, bad references and missing English are caught on load."""
    with pytest.raises(DefinitionError):
        parse_definition(body)


def test_shipped_definitions_load() -> None:
    """The three shipped definitions parse."""
    assert {"registration", "development_needs", "emergency_needs"} <= set(catalog())


def test_a_run_keeps_the_definition_it_started_with(
    dialog: Callable[..., Dialog], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A definition changed mid-run does not touch the run; new runs take the new version."""
    d = dialog("console:pin")
    d.say("Good morning, I would like to register")
    d.say("no")
    d.say("/ppe")
    d.say("gloves")
    original = catalog()["emergency_needs"]
    changed = copy.deepcopy(original.body)
    changed["version"] = 2
    changed["questions"][2]["prompt"]["en"] = "NEW WORDING: how many {item}?"
    new = parse_definition(changed)
    monkeypatch.setitem(catalog(), "emergency_needs", new)
    assert "How many Gloves" in d.text()
    d.say("100")
    assert "Who will receive" in d.text()  # the old run goes on with the old definition
    d.say("cancel")
    d.say("/ppe")
    d.say("gloves")
    assert "NEW WORDING" in d.text()
    with session_scope(engine) as session:
        run = surveys.active_run(session=session, contact_id=1)
        assert run is not None
        pinned = surveys.get_definition(session=session, definition_id=run.definition_id)
        assert pinned is not None and pinned.version == 2
