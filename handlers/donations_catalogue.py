"""The donation item catalogue (handlers/data/donations/catalogue.yaml): names, units, bounds."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from handlers.answers import show_number
from handlers.i18n import pick
from handlers.text import normalise

DATA = Path(__file__).parent / "data" / "donations"


@dataclass(frozen=True, slots=True)
class Item:
    """A catalogue item."""

    id: str
    name: dict[str, str]
    unit: str
    pack: int
    group: str
    bound: int | None = None
    check_below: int | None = None
    survey: str | None = None


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Every item, the unit names and the word for a box."""

    items: dict[str, Item]
    units: dict[str, dict[str, str]]
    box: dict[str, str]

    def item(self, item_id: str) -> Item:
        """Return an item (the `other` item for an unknown id)."""
        return self.items.get(item_id) or self.items["other"]

    def by_survey_option(self, option: str) -> Item | None:
        """Return the item an emergency-survey supply option stands for."""
        return next((i for i in self.items.values() if i.survey == option), None)

    def find(self, text: str) -> Item | None:
        """Find an item by id or by its name in any language (`masks` alone is ambiguous)."""
        key = normalise(text).replace(" ", "_")
        if key in self.items:
            return self.items[key]
        wanted = normalise(text)
        hits = [
            item
            for item in self.items.values()
            if any(normalise(name) == wanted for name in item.name.values())
        ]
        return hits[0] if len(hits) == 1 else None


def _item(raw: dict[str, Any]) -> Item:
    """Read one item."""
    return Item(
        id=str(raw["id"]),
        name={str(k): str(v) for k, v in raw["name"].items()},
        unit=str(raw["unit"]),
        pack=int(raw.get("pack", 1)),
        group=str(raw["group"]),
        bound=int(raw["bound"]) if raw.get("bound") is not None else None,
        check_below=int(raw["check_below"]) if raw.get("check_below") is not None else None,
        survey=str(raw["survey"]) if raw.get("survey") else None,
    )


@cache
def catalogue() -> Catalogue:
    """Load the catalogue once."""
    with (DATA / "catalogue.yaml").open(encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    items = {item.id: item for item in (_item(entry) for entry in raw["items"])}
    return Catalogue(items=items, units=raw["units"], box=raw["box"])


def item_name(item_id: str, lang: str, description: str | None = None) -> str:
    """Return an item's name in a language (an `other` line shows what was typed)."""
    if item_id == "other" and description:
        return description
    return pick(catalogue().item(item_id).name, lang)


def quantity_text(quantity: int, item_id: str, lang: str) -> str:
    """Show a quantity with its unit: `200,000 pieces`."""
    unit = catalogue().item(item_id).unit
    return f"{show_number(quantity, lang)} {pick(catalogue().units[unit], lang)}"
