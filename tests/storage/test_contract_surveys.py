"""Storage contract, surveys: pinned definitions, runs (start, save, end, expire), responses."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage import surveys
from storage.db import session_scope
from storage.models import SurveyRun
from tests.storage.contract_cases import (
    NOW,
    in_tx,
    new_contact,
    pin,
    start,
)

pytestmark = pytest.mark.postgres


def test_pin_definition_idempotent_per_digest(any_engine: Engine) -> None:
    """The same digest returns the same row; a changed digest stores a new one."""
    first = in_tx(any_engine, lambda s: pin(s, "d1"))
    with session_scope(any_engine) as session:
        assert pin(session, "d1") == first
        assert pin(session, "d1") == first
        changed = pin(session, "d2")
        assert changed != first
        other_survey = pin(session, "d1", survey_id="other")
        assert other_survey not in (first, changed)
    with session_scope(any_engine) as session:
        stored = surveys.get_definition(session=session, definition_id=first)
        assert stored is not None
        assert (stored.digest, stored.body) == ("d1", {"questions": [{"id": "q1"}]})


def test_start_run_cancels_previous_active_run(any_engine: Engine) -> None:
    """Starting a run cancels the contact's active one (same or earlier transaction) only."""
    me = new_contact(any_engine, "telegram:1")
    other = new_contact(any_engine, "telegram:2")
    first = in_tx(any_engine, lambda s: start(s, me))
    theirs = in_tx(any_engine, lambda s: start(s, other))
    second = in_tx(any_engine, lambda s: start(s, me))
    with session_scope(any_engine) as session:
        active = surveys.active_run(session=session, contact_id=me)
        assert active is not None and active.id == second.id
        still = surveys.active_run(session=session, contact_id=other)
        assert still is not None and still.id == theirs.id
        assert surveys.active_run(session=session, contact_id=other + me + 1000) is None
        # only the two runs still active expire: the first run of `me` is no longer active
        far = NOW + timedelta(days=30)
        expired = surveys.expire_runs(session=session, now=far)
        assert {r.id for r in expired} == {second.id, theirs.id}
        assert first.id not in {r.id for r in expired}
    third = new_contact(any_engine, "telegram:3")
    with session_scope(any_engine) as session:  # twice in one transaction: still one active
        a = start(session, third)
        b = start(session, third)
        assert (a.status, a.ended_at) == ("cancelled", NOW)
        active = surveys.active_run(session=session, contact_id=third)
        assert active is not None and active.id == b.id


def test_save_run_round_trips_json_exactly(any_engine: Engine) -> None:
    """Answers and state (nested dicts, lists, unicode, numbers) read back exactly."""
    me = new_contact(any_engine, "telegram:1")
    answers: dict[str, Any] = {
        "name": "Amina Kamara",
        "city": {"name": "Koidu", "geonameid": 2407790, "alt": ["Sefadu", "Koidu-Sefadu"]},
        "priorities": ["water", "roads", {"other": "électricité – 電力 🚰"}],
        "budget": 12.5,
        "count": 0,
        "flag": False,
        "nothing": None,
        "empty": {"list": [], "dict": {}},
    }
    state: dict[str, Any] = {"history": ["q1", "q2"], "pending": {"q3": [1, 2, 3]}, "then": "menu"}
    with session_scope(any_engine) as session:
        run = start(session, me)
        run.answers = answers
        run.state = state
        run.step = "q3"
        run.prompt_seq = 7
        surveys.save_run(session=session, run=run)
    with session_scope(any_engine) as session:
        stored = surveys.active_run(session=session, contact_id=me)
        assert stored is not None
        assert stored.answers == answers and stored.state == state
        assert json.dumps(stored.answers) == json.dumps(answers)
        assert json.dumps(stored.state) == json.dumps(state)
        assert (stored.step, stored.prompt_seq) == ("q3", 7)
        stored.answers = {**stored.answers, "name": "Ami"}
        stored.state = {}
        surveys.save_run(session=session, run=stored)
    with session_scope(any_engine) as session:
        again = surveys.active_run(session=session, contact_id=me)
        assert again is not None
        assert again.answers["name"] == "Ami" and again.state == {}


def test_end_run_closes_run(any_engine: Engine) -> None:
    """end_run sets status and end time; the contact then has no active run."""
    me = new_contact(any_engine, "telegram:1")
    run = in_tx(any_engine, lambda s: start(s, me))
    ended = NOW + timedelta(minutes=3)
    with session_scope(any_engine) as session:
        stored = surveys.active_run(session=session, contact_id=me)
        assert stored is not None and stored.id == run.id
        surveys.end_run(session=session, run=stored, status="submitted", now=ended)
        assert (stored.status, stored.ended_at, stored.updated_at) == ("submitted", ended, ended)
    with session_scope(any_engine) as session:
        assert surveys.active_run(session=session, contact_id=me) is None
        assert surveys.expire_runs(session=session, now=NOW + timedelta(days=30)) == []


def test_expire_runs_only_active_runs_due(any_engine: Engine) -> None:
    """expire_runs ends active runs with expires_at <= now, and nothing else."""
    people = [new_contact(any_engine, f"telegram:{i}") for i in range(4)]
    offsets = [timedelta(hours=-1), timedelta(0), timedelta(seconds=1), timedelta(hours=-2)]
    runs: list[SurveyRun] = []
    for contact_id, offset in zip(people, offsets, strict=True):
        with session_scope(any_engine) as session:
            runs.append(start(session, contact_id, expires_at=NOW + offset))
    with session_scope(any_engine) as session:
        done = surveys.active_run(session=session, contact_id=people[3])
        assert done is not None and done.id == runs[3].id
        surveys.end_run(session=session, run=done, status="submitted", now=NOW)
    expired = in_tx(any_engine, lambda s: surveys.expire_runs(session=s, now=NOW))
    assert [r.id for r in expired] == [runs[0].id, runs[1].id]
    assert all(r.status == "expired" and r.ended_at == NOW for r in expired)
    with session_scope(any_engine) as session:
        active = [surveys.active_run(session=session, contact_id=c) for c in people]
        assert [r.id if r else None for r in active] == [None, None, runs[2].id, None]
    assert in_tx(any_engine, lambda s: surveys.expire_runs(session=s, now=NOW)) == []
    later = in_tx(
        any_engine, lambda s: surveys.expire_runs(session=s, now=NOW + timedelta(seconds=1))
    )
    assert [r.id for r in later] == [runs[2].id]


def test_save_response_idempotent_per_run_and_counted(any_engine: Engine) -> None:
    """A run has at most one response; count_responses counts per survey for a contact."""
    me = new_contact(any_engine, "telegram:1")

    def submit(session: Session, run: SurveyRun, answers: dict[str, Any]) -> int | None:
        """Save a response for the run."""
        return surveys.save_response(
            session=session,
            run=run,
            version=1,
            language="fr",
            answers=answers,
            now=NOW,
            contact_id=me,
            country_code="SL",
            city_name="Koidu",
        )

    with session_scope(any_engine) as session:
        run = start(session, me)
        first = submit(session, run, {"q1": "oui"})
        assert submit(session, run, {"q1": "non"}) == first
    with session_scope(any_engine) as session:
        assert submit(session, run, {"q1": "encore"}) == first
        second_run = start(session, me)
        assert submit(session, second_run, {"q1": "deux"}) != first
    with session_scope(any_engine) as session:
        assert surveys.count_responses(session=session, contact_id=me) == {"city_profile": 2}
        stored = surveys.responses(session=session, survey_id="city_profile")
        assert [r.answers for r in stored] == [{"q1": "oui"}, {"q1": "deux"}]
        assert surveys.count_responses(session=session, contact_id=me + 1000) == {}


def test_anonymise_contact_data_unlinks_responses_and_drops_runs(any_engine: Engine) -> None:
    """Responses lose contact and city but keep country; the contact's runs are deleted."""
    me = new_contact(any_engine, "telegram:1")
    other = new_contact(any_engine, "telegram:2")
    run_ids: dict[int, int | None] = {}
    for cid in (me, other):
        with session_scope(any_engine) as session:
            run = start(session, cid)
            run_ids[cid] = run.id
            surveys.save_response(
                session=session,
                run=run,
                version=1,
                language="en",
                answers={"q1": cid},
                now=NOW,
                contact_id=cid,
                country_code="SL",
                city_name="Koidu",
            )
            start(session, cid)  # a second, still active run
    n = in_tx(any_engine, lambda s: surveys.anonymise_contact_data(session=s, contact_id=me))
    assert n == 1
    with session_scope(any_engine) as session:
        by_answer = {r.answers["q1"]: r for r in surveys.responses(session=session)}
        mine, theirs = by_answer[me], by_answer[other]
        assert (mine.contact_id, mine.city_name, mine.country_code) == (None, None, "SL")
        assert (theirs.contact_id, theirs.city_name, theirs.country_code) == (other, "Koidu", "SL")
        assert surveys.count_responses(session=session, contact_id=me) == {}
        assert surveys.active_run(session=session, contact_id=me) is None
        assert surveys.active_run(session=session, contact_id=other) is not None
        # only the other contact's active run is left to expire; `me` has no runs at all
        left = surveys.expire_runs(session=session, now=NOW + timedelta(days=30))
        assert [r.contact_id for r in left] == [other]
        assert run_ids[me] not in {r.id for r in left}
