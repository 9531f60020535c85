"""The item catalogue is complete and the request form offers exactly its items."""

from __future__ import annotations

from datetime import date

from handlers import donations_match
from handlers.config import ALL_LANGUAGES
from handlers.definitions import catalog
from handlers.donations_catalogue import catalogue
from storage.donations import Candidate


def test_every_item_has_a_name_unit_and_group_in_every_language() -> None:
    """Names and units in the seven languages; equivalence groups as documented."""
    items = catalogue().items
    for item in items.values():
        assert all(item.name.get(lang) for lang in ALL_LANGUAGES), item.id
        assert all(catalogue().units[item.unit].get(lang) for lang in ALL_LANGUAGES), item.id
        assert item.pack >= 1 and (item.bound is None or item.bound > 0)
    assert items["n95_respirator"].group == items["kn95_respirator"].group == "respirator"
    assert catalogue().find("KN95 respirators") is items["kn95_respirator"]
    assert catalogue().find("Masques chirurgicaux") is items["surgical_mask"]
    assert catalogue().by_survey_option("respirators") is items["n95_respirator"]


def test_the_request_form_offers_the_catalogue() -> None:
    """Same ids in the same order, same labels in every language."""
    options = catalog()["donation_request"].question("items").options
    assert [o.id for o in options] == list(catalogue().items)
    for option in options:
        assert option.label == catalogue().items[option.id].name, option.id


def test_every_emergency_survey_supply_maps_to_an_item() -> None:
    """So a survey answer always becomes request lines."""
    for option in catalog()["emergency_needs"].question("supplies").options:
        assert catalogue().by_survey_option(option.id) is not None, option.id


def _candidate(**changes: object) -> Candidate:
    """A candidate pair, changed as told."""
    base: dict[str, object] = dict(
        request_line_id=1, request_id=1, request_ref="R-2222", request_item="n95_respirator",
        remaining=1000, urgency="medium", needed_by=None, request_country="SL",
        requested_at=None, pledge_line_id=1, pledge_id=1, pledge_ref="P-2222",
        pledge_item="n95_respirator", available=1000, logistics_covered=False,
        donor_name="D", donor_country="CN",
    )  # fmt: skip
    base.update(changes)
    return Candidate(**base)  # type: ignore[arg-type]


def test_match_scores_follow_item_quantity_urgency_and_region() -> None:
    """Exact beats equivalent, full cover beats half, critical beats low, near beats far."""
    today = date(2026, 11, 2)
    score = donations_match.score
    assert score(_candidate(), today) > score(_candidate(pledge_item="kn95_respirator"), today)
    assert score(_candidate(), today) > score(_candidate(available=500), today)
    assert score(_candidate(urgency="critical"), today) > score(_candidate(urgency="low"), today)
    assert score(_candidate(needed_by=date(2026, 11, 10)), today) == score(
        _candidate(urgency="critical"), today
    )
    assert score(_candidate(donor_country="GN"), today) > score(_candidate(), today)
    assert score(_candidate(donor_country="SL"), today) > score(
        _candidate(donor_country="GN"), today
    )
    assert score(_candidate(logistics_covered=True), today) == score(_candidate(), today) + 3
