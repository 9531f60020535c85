"""Property tests: whatever a person sends, at any step of any survey, the engine answers."""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.config import ALL_LANGUAGES
from handlers.definitions import catalog
from handlers.engine import SUMMARY, RunState, Walker
from handlers.places import Gazetteer, gazetteer

KEYWORDS = ["back", "skip", "done", "yes", "no", "retour", "跳过", "1", "0", "99", "-3", ""]
odd_text = st.one_of(
    st.text(max_size=300),
    st.sampled_from(KEYWORDS),
    st.from_regex(r"[0-9 ,.\u066b\u0660-\u0669kKmM万]{1,12}", fullmatch=True),
    st.text(alphabet=st.characters(categories=["So", "Cf", "Zs", "Mn"]), max_size=20),
)


def _places() -> Gazetteer:
    """The shared gazetteer."""
    return gazetteer()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    survey=st.sampled_from(sorted(catalog())),
    lang=st.sampled_from(ALL_LANGUAGES),
    messages=st.lists(
        st.tuples(odd_text, st.one_of(st.none(), st.text(max_size=12), st.just("s1:#done"))),
        max_size=25,
    ),
)
def test_every_message_gets_an_answer_and_state_stays_valid(
    survey: str, lang: str, messages: list[tuple[str, str | None]]
) -> None:
    """No exception, a reply for every message until the run ends, and a valid step."""
    walker = Walker(catalog()[survey], lang, _places(), date(2026, 11, 2))
    state = RunState()
    assert walker.start(state).replies
    for text, choice_id in messages:
        turn = walker.answer(state, text, choice_id)
        if turn.outcome is not None:
            return
        assert turn.replies and all(r.text.strip() for r in turn.replies)
        assert (
            state.step == SUMMARY or state.step.startswith("#") or walker.question_of(state.step)
        )
        for reply in turn.replies:
            assert all(len(c.id.encode()) <= 64 for c in reply.choices)  # Telegram's limit


@settings(max_examples=100, deadline=None)
@given(lang=st.sampled_from(ALL_LANGUAGES), answers=st.lists(odd_text, min_size=1, max_size=6))
def test_results_only_hold_answers_of_steps_that_apply(lang: str, answers: list[str]) -> None:
    """Whatever was typed, the results hold only steps the skip logic keeps."""
    walker = Walker(catalog()["emergency_needs"], lang, _places(), date(2026, 11, 2))
    state = RunState()
    walker.start(state)
    for text in answers:
        if walker.answer(state, text, None).outcome:
            break
    results = walker.results(state)
    applicable = {step.split("#")[0] for step in walker.steps(state.answers)}
    assert set(results) <= applicable
