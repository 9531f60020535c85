"""The survey engine's city question: typed names resolved, candidates labelled, manual entry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.answers import Invalid, read_text
from handlers.definitions import Question
from handlers.engine_state import RunState, Turn
from handlers.i18n import t
from handlers.places import Place, country_name

if TYPE_CHECKING:
    from handlers.engine import Walker


def _place_label(self: Walker, geonameid: int) -> str:
    """Show a candidate city with its country."""
    place = self.places.by_id(geonameid)
    if place is None:
        return str(geonameid)
    return f"{place.name}, {country_name(place.country_code, self.lang)}"


def _on_city(
    self: Walker, state: RunState, question: Question, text: str, value: str | None
) -> Turn:
    """Resolve a typed city: unique match, choice among several, or typed by hand."""
    mode = state.pending.get("city_mode")
    if value == "#notlisted":
        state.pending = {"city_mode": "manual_name"}
        return self.reprompt(state)
    if mode == "candidates" and value and value.startswith("c"):
        place = self.places.by_id(int(value[1:]))
        if place is not None and place.geonameid in state.pending["candidates"]:
            return self._store(state, state.step or "", question, place.as_answer())
    if value is not None:
        return self.reprompt(state, lead=t("invalid_choice", self.lang))
    if mode == "manual_name":
        name = read_text(question, text)
        if isinstance(name, Invalid):
            return self.reprompt(state, lead=t(name.key, self.lang, **name.values))
        state.pending = {"city_mode": "manual_country", "name": name}
        return self.reprompt(state)
    if mode == "manual_country":
        code = self.places.country(text)
        if code is None:
            return self.reprompt(state, lead=t("country_not_found", self.lang, typed=text[:60]))
        place = Place(
            name=state.pending["name"],
            country_code=code,
            timezone=self.places.country_timezone(code),
        )
        return self._store(state, state.step or "", question, place.as_answer())
    found = self.places.resolve(text)
    if len(found) == 1:
        return self._store(state, state.step or "", question, found[0].as_answer())
    if not found:
        state.pending = {}
        return self.reprompt(state, lead=t("city_not_found", self.lang, typed=text[:60]))
    state.pending = {
        "city_mode": "candidates",
        "typed": text[:60],
        "candidates": [p.geonameid for p in found],
    }
    return self.reprompt(state)
