"""Staff exports as CSV or XLSX: contacts, survey responses, donation and webinar records.

Survey responses come one row per response with labels (questions and answers) in a chosen
language, over the union of the questions of every version each survey had (a response to an
older version keeps its answers; a question it never had stays empty). Rows are streamed from
the database and written as they come (openpyxl's write-only workbook), so memory stays flat.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlmodel import Session

from handlers.answers import show_answer
from handlers.definitions import Definition, Question, catalog, from_stored
from handlers.i18n import pick, t
from handlers.places import country_name
from handlers.staff_regions import area_name, region_of
from storage import reports as db
from storage import staff as features_db

logger = logging.getLogger(__name__)

CORE_KINDS = ("contacts", "responses")
KINDS = (*CORE_KINDS, *features_db.FEATURE_TABLES)
FORMATS = ("csv", "xlsx")
SHEET_TITLE = 31  # Excel's limit for a sheet name


class ExportError(ValueError):
    """An export that cannot be made; the key is a UI string."""

    def __init__(self, key: str, **values: Any) -> None:
        """Keep the UI string key and its values."""
        super().__init__(key)
        self.key = key
        self.values = values


@dataclass(slots=True)
class Table:
    """One sheet of an export: a name, its header and its rows (streamed)."""

    name: str
    header: list[str]
    rows: Iterator[list[Any]]


@dataclass(frozen=True, slots=True)
class Exported:
    """A written export file."""

    path: Path
    kind: str
    fmt: str
    rows: int


@cache
def _country(code: str | None, lang: str) -> str:
    """A country's name in a language ('' when unknown), looked up once per export process."""
    return country_name(code, lang) if code else ""


@cache
def _region(code: str | None, lang: str) -> str:
    """The M49 region of a country, by name in a language ('' when unknown)."""
    region = region_of(code)
    return area_name(region, lang) if code and region != "unknown" else ""


def _cell(value: Any, *, xlsx: bool) -> Any:
    """A value as a spreadsheet cell: UTC times, JSON for structures, text otherwise."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if xlsx else value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value if xlsx else value.isoformat()
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


# -- contacts ------------------------------------------------------------------------------------


def _role_label(role: str | None, lang: str) -> str:
    """A registration role's label."""
    if not role or "registration" not in catalog():
        return role or ""
    option = catalog()["registration"].question("role").option(role)
    return pick(option.label, lang) if option else role


def contacts_table(session: Session, lang: str) -> Table:
    """Every contact with profile, status and channel addresses."""
    header = [
        "id",
        t("staff_col_name", lang),
        t("staff_col_role", lang),
        t("staff_col_organisation", lang),
        t("staff_col_city", lang),
        "country_code",
        t("staff_col_country", lang),
        t("staff_col_region", lang),
        "timezone",
        t("staff_col_language", lang),
        "staff_role",
        "opted_out",
        "unreachable",
        "consent_version",
        "consent_at (UTC)",
        "created_at (UTC)",
        "last_inbound_at (UTC)",
        "erased_at (UTC)",
        "urns",
    ]
    urns = db.urns_by_contact(session=session)

    def rows() -> Iterator[list[Any]]:
        for c in db.iter_contacts(session=session):
            yield [
                c.id,
                c.name,
                _role_label(c.role, lang),
                c.organisation,
                c.city_name,
                c.country_code,
                _country(c.country_code, lang),
                _region(c.country_code, lang),
                c.timezone,
                c.language,
                c.staff_role,
                c.opted_out,
                c.unreachable,
                c.consent_version,
                c.consent_at,
                c.created_at,
                c.last_inbound_at,
                c.erased_at,
                " ".join(urns.get(c.id or 0, [])),
            ]

    return Table(name="contacts", header=header, rows=rows())


# -- survey responses ----------------------------------------------------------------------------


def _short(text: str) -> str:
    """A question's first sentence, as a column label."""
    for stop in ("?", "？", "؟", ":", "：", ". ", "。"):
        if stop in text:
            return text.split(stop, 1)[0] + stop.strip()
    return text


@dataclass(frozen=True, slots=True)
class Column:
    """A question column of a survey export: answer key, repeat item, the question."""

    key: str
    item: str
    question: Question
    definition: Definition


def survey_columns(definitions: Iterable[Definition]) -> list[Column]:
    """The union of the answer columns of every version, in order of first appearance."""
    seen: dict[tuple[str, str], Column] = {}
    for definition in definitions:
        for question in definition.questions:
            if question.for_each:
                source = definition.question(question.for_each)
                for option in source.options:
                    key = (question.id, option.id)
                    seen.setdefault(key, Column(question.id, option.id, question, definition))
            else:
                seen.setdefault((question.id, ""), Column(question.id, "", question, definition))
    return list(seen.values())


def _column_label(column: Column, lang: str) -> str:
    """A column's header: the question (with the repeated item) in a language."""
    text = pick(column.question.prompt, lang)
    if column.item:
        source = column.definition.question(column.question.for_each or "")
        option = source.option(column.item)
        text = text.replace("{item}", pick(option.label, lang) if option else column.item)
    return _short(text)


def _option_labels(column: Column, lang: str) -> dict[str, str]:
    """Option id → label in a language, for a choice question's column."""
    return {o.id: pick(o.label, lang) for o in column.question.options}


def _answer(column: Column, answers: dict[str, Any], lang: str, labels: dict[str, str]) -> Any:
    """A response's answer to a column, shown in a language ('' when not asked)."""
    value = answers.get(column.key)
    if column.item:
        value = value.get(column.item) if isinstance(value, dict) else None
    if value is None:
        return ""
    kind = column.question.type
    if kind == "number" and isinstance(value, int | float):
        return value
    if kind == "multi_choice" and isinstance(value, list):
        return "; ".join(labels.get(str(v), str(v)) for v in value)
    if kind == "single_choice":
        return labels.get(str(value), str(value))
    if kind == "text":
        return str(value)
    try:
        return show_answer(column.question, value, lang)
    except (KeyError, TypeError, ValueError):
        return _cell(value, xlsx=False)


def response_tables(session: Session, lang: str, survey: str | None) -> list[Table]:
    """One table per survey (or the chosen one): a row per response, every version's columns."""
    stored = db.definitions_used(session=session, survey_ids=[survey] if survey else None)
    by_survey: dict[str, list[tuple[int, Definition]]] = {}
    for row in stored:
        by_survey.setdefault(row.survey_id, []).append((row.id or 0, from_stored(row.body)))
    if survey and survey not in by_survey:
        if survey not in catalog():
            raise ExportError("staff_export_no_survey", survey=survey)
        by_survey[survey] = []
    tables: list[Table] = []
    for survey_id, versions in sorted(by_survey.items()):
        definitions = [d for _id, d in sorted(versions, key=lambda v: v[1].version)]
        columns = survey_columns(definitions)
        labels = [_column_label(c, lang) for c in columns]
        counts: dict[str, int] = {}
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
        header = [
            "response_id",
            "survey",
            "version",
            "submitted_at (UTC)",
            t("staff_col_language", lang),
            "contact_id",
            "country_code",
            t("staff_col_country", lang),
            t("staff_col_region", lang),
            t("staff_col_city", lang),
            *(
                label
                if counts[label] == 1
                else f"{label} [{c.key}{'#' + c.item if c.item else ''}]"
                for label, c in zip(labels, columns, strict=True)
            ),
        ]
        tables.append(
            Table(
                name=survey_id,
                header=header,
                rows=_response_rows(session, survey_id, columns, lang),
            )
        )
    return tables


def _response_rows(
    session: Session, survey_id: str, columns: list[Column], lang: str
) -> Iterator[list[Any]]:
    """Stream the rows of one survey's responses."""
    labels = [_option_labels(c, lang) for c in columns]
    for r in db.iter_responses(session=session, survey_ids=[survey_id]):
        answers = dict(r.answers or {})
        yield [
            r.id,
            r.survey_id,
            r.version,
            r.submitted_at,
            r.language,
            r.contact_id,
            r.country_code,
            _country(r.country_code, lang),
            _region(r.country_code, lang),
            r.city_name,
            *(_answer(c, answers, lang, o) for c, o in zip(columns, labels, strict=True)),
        ]


# -- feature tables ------------------------------------------------------------------------------


def feature_tables(session: Session, kind: str) -> list[Table]:
    """A donations or webinars table as it is stored, every column."""
    model = features_db.feature_table(kind)
    if model is None:
        raise ExportError("staff_export_unavailable", kind=kind)
    header = db.columns_of(model)

    def rows() -> Iterator[list[Any]]:
        for row in db.iter_table(session=session, model=model):
            yield [row[name] for name in header]

    return [Table(name=kind, header=header, rows=rows())]


# -- writing -------------------------------------------------------------------------------------


def _write_csv(path: Path, tables: list[Table]) -> int:
    """Write tables one after the other into a CSV file (UTF-8 with BOM, for Excel)."""
    count = 0
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        for index, table in enumerate(tables):
            if index:
                writer.writerow([])
            writer.writerow(table.header)
            for row in table.rows:
                writer.writerow([_cell(v, xlsx=False) for v in row])
                count += 1
    return count


def _write_xlsx(path: Path, tables: list[Table]) -> int:
    """Write each table to its own sheet of a write-only (streaming) workbook."""
    from openpyxl import Workbook  # type: ignore[import-untyped]
    from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped]
    from openpyxl.styles import Font  # type: ignore[import-untyped]

    workbook = Workbook(write_only=True)
    bold = Font(bold=True)
    count = 0
    for table in tables or [Table(name="empty", header=[], rows=iter(()))]:
        sheet = workbook.create_sheet(title=table.name[:SHEET_TITLE])
        header = []
        for name in table.header:
            cell = WriteOnlyCell(sheet, value=name)
            cell.font = bold
            header.append(cell)
        sheet.append(header)
        sheet.freeze_panes = "A2"
        for row in table.rows:
            sheet.append([_cell(v, xlsx=True) for v in row])
            count += 1
    workbook.save(path)
    return count


def tables_for(session: Session, kind: str, lang: str, survey: str | None) -> list[Table]:
    """The tables of an export kind."""
    if kind == "contacts":
        return [contacts_table(session, lang)]
    if kind == "responses":
        return response_tables(session, lang, survey)
    if kind in features_db.FEATURE_TABLES:
        return feature_tables(session, kind)
    raise ExportError("staff_export_kinds", kinds=", ".join(KINDS))


def export(
    *,
    session: Session,
    kind: str,
    fmt: str,
    lang: str,
    path: Path,
    survey: str | None = None,
) -> Exported:
    """Write an export file; return where, and how many rows."""
    if fmt not in FORMATS:
        raise ExportError("staff_export_formats", formats=", ".join(FORMATS))
    tables = tables_for(session, kind, lang, survey)
    rows = _write_xlsx(path, tables) if fmt == "xlsx" else _write_csv(path, tables)
    logger.info("export written kind=%s format=%s rows=%d", kind, fmt, rows)
    return Exported(path=path, kind=kind, fmt=fmt, rows=rows)
