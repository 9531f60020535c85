"""Staff reports: survey results by region and country, donation and webinar figures, charts.

The survey section counts each official's latest development-needs answer (anonymous answers
count once each): how many chose each priority and each type of support, and the share of the
respondents that is. Donations and webinars come from their features' `summary()` and are left
out while those features are not installed. Charts are PNG files drawn with matplotlib.
"""

from __future__ import annotations

import logging
import os
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from handlers.definitions import catalog
from handlers.i18n import pick, t
from handlers.places import country_name
from handlers.staff_regions import REGIONS, UNKNOWN, area_name, region_of
from storage import reports as db
from storage import staff as features_db

logger = logging.getLogger(__name__)

SURVEY = "development_needs"
QUESTIONS = ("priorities", "support")
SECTIONS = ("surveys", "donations", "webinars")
CHART_LANGUAGES = frozenset({"en", "fr", "es", "ru", "pt"})  # scripts the default font draws
TOP = 3
MAX_COUNTRIES = 15


def files_dir(config: object = None) -> Path:
    """Where reports and exports are written (BotConfig, CITYBOT_FILES_DIR, or a temp dir)."""
    configured = getattr(config, "files_dir", None)
    base = configured or os.environ.get("CITYBOT_FILES_DIR")
    path = Path(base) if base else Path(tempfile.gettempdir()) / "citybot-files"
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_file(directory: Path, stem: str, suffix: str, now: datetime) -> Path:
    """A fresh file name such as `report-priorities-20261102-0900-1a2b3c4d.png`."""
    stamp = now.strftime("%Y%m%d-%H%M")
    return directory / f"{stem}-{stamp}-{uuid.uuid4().hex[:8]}{suffix}"


def prune(directory: Path, *, older_than: float = 7 * 86400) -> int:
    """Delete report and export files older than a week; return how many."""
    limit = time.time() - older_than
    removed = 0
    for path in directory.glob("*"):
        if path.is_file() and path.stat().st_mtime < limit:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


@dataclass(slots=True)
class Tally:
    """How many respondents chose each option, out of how many."""

    respondents: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, chosen: Iterable[str]) -> None:
        """Count one respondent's choices."""
        self.respondents += 1
        for option in dict.fromkeys(chosen):
            self.counts[option] = self.counts.get(option, 0) + 1

    def share(self, option: str) -> float:
        """The share of respondents who chose an option (0–1)."""
        return self.counts.get(option, 0) / self.respondents if self.respondents else 0.0

    def top(self, n: int | None = None) -> list[tuple[str, int]]:
        """Options by count, most chosen first."""
        ordered = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return ordered if n is None else ordered[:n]


@dataclass(slots=True)
class SurveyResults:
    """Tallies of each question overall, by region and by country."""

    respondents: int = 0
    overall: dict[str, Tally] = field(default_factory=dict)
    by_region: dict[str, dict[str, Tally]] = field(default_factory=dict)
    by_country: dict[str, dict[str, Tally]] = field(default_factory=dict)


def survey_results(*, session: Session) -> SurveyResults:
    """Tally the latest development-needs answers by question, region and country."""
    results = SurveyResults(overall={q: Tally() for q in QUESTIONS})
    for _contact, country, answers in db.latest_answers(session=session, survey_id=SURVEY):
        results.respondents += 1
        region = region_of(country)
        places = (
            results.by_region.setdefault(region, {q: Tally() for q in QUESTIONS}),
            results.by_country.setdefault(country or UNKNOWN, {q: Tally() for q in QUESTIONS}),
        )
        for question in QUESTIONS:
            value = answers.get(question)
            chosen = [str(v) for v in value] if isinstance(value, list) else []
            results.overall[question].add(chosen)
            for place in places:
                place[question].add(chosen)
    return results


def _labels(question: str, lang: str) -> dict[str, str]:
    """Option id → label in a language, from the current survey definition."""
    definition = catalog().get(SURVEY)
    if definition is None:
        return {}
    return {o.id: pick(o.label, lang) for o in definition.question(question).options}


def _place_name(kind: str, key: str, lang: str) -> str:
    """A region's or country's name (`unknown` localised)."""
    if key == UNKNOWN:
        return t("staff_rep_unknown", lang)
    return area_name(key, lang) if kind == "region" else country_name(key, lang)


def _tops(tally: Tally, labels: dict[str, str], n: int) -> str:
    """`Education 40%, Health 35%` — the most chosen options of a tally."""
    return ", ".join(
        f"{labels.get(o, o)} {round(100 * tally.share(o))}%" for o, _count in tally.top(n)
    )


def survey_text(results: SurveyResults, lang: str, *, countries: int | None) -> str:
    """Render the survey section."""
    lines = [t("staff_rep_survey", lang, count=results.respondents)]
    if not results.respondents:
        return "\n".join(lines)
    for question in QUESTIONS:
        labels = _labels(question, lang)
        tally = results.overall[question]
        lines.append("")
        lines.append(t(f"staff_rep_{question}", lang))
        for option, count in tally.top():
            share = round(100 * tally.share(option))
            lines.append(f"  • {labels.get(option, option)} — {count} ({share}%)")
    priorities = _labels("priorities", lang)
    lines += ["", t("staff_rep_by_region", lang)]
    for region, tallies in sorted(
        results.by_region.items(), key=lambda kv: -kv[1]["priorities"].respondents
    ):
        tally = tallies["priorities"]
        name = _place_name("region", region, lang)
        lines.append(f"  • {name} ({tally.respondents}): {_tops(tally, priorities, TOP)}")
    lines += ["", t("staff_rep_by_country", lang)]
    ordered = sorted(
        results.by_country.items(), key=lambda kv: (-kv[1]["priorities"].respondents, kv[0])
    )
    for country, tallies in ordered[:countries] if countries else ordered:
        tally = tallies["priorities"]
        name = _place_name("country", country, lang)
        lines.append(f"  • {name} ({tally.respondents}): {_tops(tally, priorities, TOP)}")
    if countries and len(ordered) > countries:
        lines.append("  " + t("staff_rep_more_countries", lang, count=len(ordered) - countries))
    return "\n".join(lines)


def _plain(value: Any) -> str:
    """A summary value as text: counts `a 3 · b 2`, lists one item per line."""
    if isinstance(value, dict):
        if all(not isinstance(v, dict | list) for v in value.values()):
            return " · ".join(f"{k} {v}" for k, v in value.items()) or "—"
        return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items()) or "—"
    if isinstance(value, list):
        if not value:
            return "—"
        items = [
            " · ".join(str(v) for v in item.values()) if isinstance(item, dict) else str(item)
            for item in value
        ]
        return "\n    " + "\n    ".join(items)
    return str(value)


def summary_text(title: str, summary: dict[str, Any]) -> str:
    """Render a feature summary (donations, webinars) key by key."""
    lines = [title]
    for key, value in summary.items():
        lines.append(f"  • {key.replace('_', ' ')}: {_plain(value)}")
    return "\n".join(lines)


# -- charts --------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
    """A matplotlib figure that needs no display."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def bar_chart(path: Path, title: str, labels: list[str], values: list[float], unit: str) -> Path:
    """Draw a horizontal bar chart (largest at the top) and save it as PNG."""
    figure = _figure(8, max(2.5, 0.45 * len(labels) + 1.2))
    axes = figure.subplots()
    wrapped = [textwrap.fill(label, 38) for label in labels]
    bars = axes.barh(wrapped[::-1], values[::-1], color="#1f77b4")
    axes.bar_label(bars, labels=[f"{v:.0f}{unit}" for v in values[::-1]], padding=3, fontsize=8)
    axes.set_title(title)
    axes.tick_params(axis="y", labelsize=8)
    axes.set_xlim(0, max([*values, 1.0]) * 1.15)
    axes.spines[["top", "right"]].set_visible(False)
    figure.savefig(path, format="png")
    return path


def heatmap(
    path: Path, title: str, rows: list[str], columns: list[str], values: list[list[float]]
) -> Path:
    """Draw a table of shares (rows × columns, in %) as a heatmap and save it as PNG."""
    figure = _figure(max(6.0, 0.55 * len(columns) + 3), max(2.5, 0.5 * len(rows) + 2.2))
    axes = figure.subplots()
    image = axes.imshow(values, cmap="Blues", vmin=0, vmax=100, aspect="auto")
    axes.set_xticks(
        range(len(columns)),
        [textwrap.fill(c, 18) for c in columns],
        fontsize=7,
        rotation=60,
        ha="right",
        rotation_mode="anchor",
    )
    axes.set_yticks(range(len(rows)), rows, fontsize=8)
    for r, row in enumerate(values):
        for c, value in enumerate(row):
            axes.text(
                c,
                r,
                f"{value:.0f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > 55 else "black",
            )
    figure.colorbar(image, ax=axes, label="%")
    axes.set_title(title)
    figure.savefig(path, format="png")
    return path


def survey_charts(results: SurveyResults, lang: str, directory: Path, now: datetime) -> list[Path]:
    """Draw the survey charts: each question's shares, and priorities by region."""
    chart_lang = lang if lang in CHART_LANGUAGES else "en"
    charts: list[Path] = []
    if not results.respondents:
        return charts
    for question in QUESTIONS:
        tally = results.overall[question]
        labels = _labels(question, chart_lang)
        top = tally.top()
        if not top:
            continue
        path = new_file(directory, f"report-{question}", ".png", now)
        charts.append(
            bar_chart(
                path,
                t(f"staff_rep_{question}", chart_lang).rstrip(" :：")
                + f" (n={tally.respondents})",
                [labels.get(o, o) for o, _ in top],
                [100 * tally.share(o) for o, _ in top],
                "%",
            )
        )
    labels = _labels("priorities", chart_lang)
    options = [o for o, _ in results.overall["priorities"].top()]
    regions = [r for r in (*REGIONS, UNKNOWN) if r in results.by_region]
    if options and regions:
        matrix = [
            [100 * results.by_region[r]["priorities"].share(o) for o in options] for r in regions
        ]
        sizes = [results.by_region[r]["priorities"].respondents for r in regions]
        names = [
            f"{_place_name('region', r, chart_lang)} ({n})"
            for r, n in zip(regions, sizes, strict=True)
        ]
        path = new_file(directory, "report-priorities-by-region", ".png", now)
        charts.append(
            heatmap(
                path,
                t("staff_rep_by_region", chart_lang).rstrip(" :："),
                names,
                [labels.get(o, o) for o in options],
                matrix,
            )
        )
    return charts


def _counts_chart(path: Path, title: str, counts: dict[str, Any], unit: str = "") -> Path | None:
    """A bar chart of a `{name: number}` mapping, when it has numbers."""
    pairs = [(str(k), float(v)) for k, v in counts.items() if isinstance(v, int | float)]
    if not pairs:
        return None
    pairs.sort(key=lambda kv: -kv[1])
    return bar_chart(path, title, [k for k, _ in pairs], [v for _, v in pairs], unit)


def feature_charts(
    name: str, summary: dict[str, Any], lang: str, directory: Path, now: datetime
) -> list[Path]:
    """Charts of a feature summary: each `{status: count}` mapping of it as bars."""
    chart_lang = lang if lang in CHART_LANGUAGES else "en"
    charts: list[Path] = []
    title = t(f"staff_rep_{name}", chart_lang)
    for key, value in summary.items():
        if not isinstance(value, dict) or not value:
            continue
        path = new_file(directory, f"report-{name}-{key}", ".png", now)
        drawn = _counts_chart(path, f"{title} — {key.replace('_', ' ')}", value)
        if drawn is not None:
            charts.append(drawn)
    per_webinar = summary.get("per_webinar")
    if isinstance(per_webinar, list) and per_webinar:
        counts = {
            f"#{w.get('id')} {str(w.get('title', ''))[:30]}": w.get("registered", 0)
            for w in per_webinar
            if isinstance(w, dict)
        }
        path = new_file(directory, f"report-{name}-per-webinar", ".png", now)
        drawn = _counts_chart(path, f"{title} — registered", counts)
        if drawn is not None:
            charts.append(drawn)
    return charts


@dataclass(slots=True)
class Report:
    """A report: its text, its charts (PNG files), and the sections not available."""

    text: str
    charts: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def build(
    *,
    session: Session,
    lang: str,
    now: datetime,
    directory: Path,
    sections: Iterable[str] = SECTIONS,
    countries: int | None = MAX_COUNTRIES,
    charts: bool = True,
) -> Report:
    """Build the report text and charts of the chosen sections."""
    chosen = [s for s in SECTIONS if s in set(sections)]
    parts = [t("staff_rep_title", lang, at=now.strftime("%Y-%m-%d %H:%M"))]
    report = Report(text="")
    if "surveys" in chosen:
        results = survey_results(session=session)
        parts.append(survey_text(results, lang, countries=countries))
        if charts:
            report.charts += survey_charts(results, lang, directory, now)
    for name, summary_of in (
        ("donations", features_db.donations_summary),
        ("webinars", features_db.webinars_summary),
    ):
        if name not in chosen:
            continue
        summary = summary_of(session=session)
        if summary is None:
            report.missing.append(name)
            parts.append(t("staff_rep_unavailable", lang, section=t(f"staff_rep_{name}", lang)))
            continue
        parts.append(summary_text(t(f"staff_rep_{name}", lang), summary))
        if charts:
            report.charts += feature_charts(name, summary, lang, directory, now)
    report.text = "\n\n".join(parts)
    logger.info("report built sections=%s charts=%d", ",".join(chosen), len(report.charts))
    return report
