"""Regions of the UN geoscheme (M49): country → sub-region → region, names in each language."""

from __future__ import annotations

from functools import cache

# M49 regions (id, numeric code) and their sub-regions (id, numeric code, ISO 3166 countries).
REGIONS: dict[str, str] = {
    "africa": "002",
    "americas": "019",
    "asia": "142",
    "europe": "150",
    "oceania": "009",
}
SUBREGIONS: dict[str, tuple[str, str, str]] = {
    # id: (region, M49 code, space-separated ISO alpha-2 codes)
    "northern_africa": ("africa", "015", "DZ EG LY MA SD TN EH"),
    "eastern_africa": (
        "africa",
        "014",
        "IO BI KM DJ ER ET TF KE MG MW MU YT MZ RE RW SC SO SS UG TZ ZM ZW",
    ),
    "middle_africa": ("africa", "017", "AO CM CF TD CG CD GQ GA ST"),
    "southern_africa": ("africa", "018", "BW SZ LS NA ZA"),
    "western_africa": ("africa", "011", "BJ BF CV CI GM GH GN GW LR ML MR NE NG SH SN SL TG"),
    "caribbean": (
        "americas",
        "029",
        "AI AG AW BS BB BQ VG KY CU CW DM DO GD GP HT JM MQ MS PR BL KN LC MF VC SX TT TC VI AN",
    ),
    "central_america": ("americas", "013", "BZ CR SV GT HN MX NI PA"),
    "south_america": ("americas", "005", "AR BO BV BR CL CO EC FK GF GY PY PE GS SR UY VE"),
    "northern_america": ("americas", "021", "BM CA GL PM US"),
    "central_asia": ("asia", "143", "KZ KG TJ TM UZ"),
    "eastern_asia": ("asia", "030", "CN HK MO KP JP MN KR TW"),
    "south_eastern_asia": ("asia", "035", "BN KH ID LA MY MM PH SG TH TL VN"),
    "southern_asia": ("asia", "034", "AF BD BT IN IR MV NP PK LK"),
    "western_asia": (
        "asia",
        "145",
        "AM AZ BH CY GE IQ IL JO KW LB OM QA SA PS SY TR AE YE",
    ),
    "eastern_europe": ("europe", "151", "BY BG CZ HU PL MD RO RU SK UA"),
    "northern_europe": ("europe", "154", "AX DK EE FO FI GG IS IE IM JE LV LT NO SJ SE GB"),
    "southern_europe": (
        "europe",
        "039",
        "AL AD BA HR GI GR VA IT MT ME MK PT SM RS SI ES XK CS",
    ),
    "western_europe": ("europe", "155", "AT BE FR DE LI LU MC NL CH"),
    "australia_new_zealand": ("oceania", "053", "AU CX CC HM NZ NF"),
    "melanesia": ("oceania", "054", "FJ NC PG SB VU"),
    "micronesia": ("oceania", "057", "GU KI MH FM NR MP PW UM"),
    "polynesia": ("oceania", "061", "AS CK PF NU PN WS TK TO TV WF"),
}
UNKNOWN = "unknown"


@cache
def _country_index() -> dict[str, tuple[str, str]]:
    """Map each country code to (region, sub-region)."""
    index: dict[str, tuple[str, str]] = {}
    for sub, (region, _code, countries) in SUBREGIONS.items():
        for country in countries.split():
            index[country] = (region, sub)
    return index


def region_of(country_code: str | None) -> str:
    """Return the M49 region id of a country (`unknown` when not known)."""
    return _country_index().get((country_code or "").upper(), (UNKNOWN, UNKNOWN))[0]


def subregion_of(country_code: str | None) -> str:
    """Return the M49 sub-region id of a country (`unknown` when not known)."""
    return _country_index().get((country_code or "").upper(), (UNKNOWN, UNKNOWN))[1]


def countries_of(area: str) -> tuple[str, ...]:
    """Return the country codes of a region or sub-region (by id or M49 code); () if unknown."""
    wanted = area.strip().lower().replace("-", "_").replace(" ", "_")
    for region, code in REGIONS.items():
        if wanted in (region, code):
            return tuple(sorted(c for c, (r, _s) in _country_index().items() if r == region))
    for sub, (_region, code, countries) in SUBREGIONS.items():
        if wanted in (sub, code):
            return tuple(sorted(countries.split()))
    return ()


def is_area(area: str) -> bool:
    """Say whether a name is a known region or sub-region."""
    return bool(countries_of(area))


def area_name(area: str, lang: str) -> str:
    """Return a region's or sub-region's name in a language (CLDR names; the id otherwise)."""
    from babel import Locale

    code = REGIONS.get(area) or SUBREGIONS.get(area, ("", "", ""))[1]
    if not code:
        return area
    return str(Locale.parse(lang).territories.get(code, area))
