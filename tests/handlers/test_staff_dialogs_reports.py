"""Staff in chat: reports with charts as images, exports as documents in a chosen language."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy.engine import Engine

from tests.handlers.staff_cases import actions
from tests.handlers.staff_cases import files_dir as files_dir  # a fixture
from tests.handlers.staff_cases import officials as officials  # a fixture
from tests.handlers.staff_cases import reporter as reporter  # a fixture
from tests.support import Dialog


def test_report_arrives_with_charts_as_images(engine: Engine, reporter: Dialog) -> None:
    """/report: priorities and support by region and country, as text and PNG images."""
    reporter.say("/report surveys")
    text = reporter.text()
    assert "Development needs survey: 9 respondents" in text
    assert "Education — 8 (89%)" in text
    assert "Africa (8): Education 88%" in text
    assert "Kenya (5): Education 100%" in text and "Sierra Leone (3)" in text
    images = reporter.last.attachments
    assert images and all(a.kind == "image" for a in images)
    for image in images:
        assert Path(image.path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "report" in actions(engine)


def test_export_arrives_as_a_document_with_labels_in_the_chosen_language(
    engine: Engine, reporter: Dialog
) -> None:
    """/export responses csv fr: one row per response, French labels; contacts as XLSX."""
    reporter.say("/export responses csv fr development_needs")
    assert "9 rows" in reporter.text()
    document = reporter.last.attachments[0]
    assert document.kind == "document" and document.filename.endswith(".csv")
    with open(document.path, encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 10
    header = rows[0]
    assert "Pays" in header and "Région" in header
    column = header.index(
        "Quelles sont les trois principales priorités de développement de votre ville ?"
    )
    assert "Éducation" in rows[1][column]
    reporter.say("/export contacts xlsx")
    from openpyxl import load_workbook  # type: ignore[import-untyped]

    book = load_workbook(reporter.last.attachments[0].path, read_only=True)
    rows = list(book["contacts"].iter_rows(values_only=True))
    assert len(rows) == 1 + 10  # nine officials and the staff member
    assert rows[0][:3] == ("id", "Name", "Role") and rows[1][2] == "City official"
    reporter.say("/export")
    assert "Usage: /export" in reporter.text()
    assert actions(engine).count("export") == 2
