"""The bad-file corpus: every file in tests/fixtures/bad_uploads is rejected with the expected row,
column and reason, and the database is left exactly as it was (every table, every row)."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import deliveries
from registry.uploads import TEMPLATE_COLUMNS
from tests.conftest import STAFF
from tests.entry_helpers import add_programmes, dump

CORPUS = Path(__file__).parent / "fixtures" / "bad_uploads"

# file -> the problems expected: (row as a spreadsheet shows it, column, a fragment of the reason).
# Row None is the whole file. Column letters name header cells that are not template columns.
EXPECTED: dict[str, list[tuple[int | None, str, str]]] = {
    "01_unknown_programme.csv": [(2, "programme", "Did you mean 'Youth Mentoring'?")],
    "02_unknown_borough.csv": [(2, "borough", "Did you mean 'Camden'?")],
    "03_month_as_words.csv": [(2, "month", "Not a month in the form YYYY-MM")],
    "04_month_with_slash.csv": [(2, "month", "Not a month in the form YYYY-MM")],
    "05_month_thirteen.csv": [(2, "month", "Not a month in the form YYYY-MM")],
    "06_month_in_future.csv": [(2, "month", "In the future")],
    "07_before_programme_start.csv": [(2, "month", "Before the programme started (2020-01-01)")],
    "08_after_programme_closed.csv": [(2, "month", "After the programme closed (2021-06-30)")],
    "09_negative_opportunities.csv": [(2, "opportunities", "Negative")],
    "10_non_integer_count.csv": [(2, "opportunities", "Not a whole number")],
    "11_count_not_a_number.csv": [(2, "opportunities", "Not a number")],
    "12_participants_exceed_opportunities.csv": [
        (2, "participants", "More participants than opportunities")
    ],
    "13_negative_spend.csv": [(2, "spend_gbp", "Negative")],
    "14_spend_three_decimals.csv": [(2, "spend_gbp", "More than two decimal places")],
    "15_duplicate_triple.csv": [(3, "month", "Duplicate: row 2 already has")],
    "16_empty_borough.csv": [(2, "borough", "Empty")],
    "17_empty_opportunities.csv": [(2, "opportunities", "Empty")],
    "18_missing_column.csv": [(1, "opportunities", "required column 'opportunities' is missing")],
    "19_wrong_header.csv": [
        (1, "D", "Unknown column 'opps'"),
        (1, "opportunities", "is missing"),
    ],
    "20_no_header_row.csv": [(1, "", "first row is not the template's header")],
    "21_utf16.csv": [(None, "", "not UTF-8 or Windows-1252")],
    "22_not_utf8_or_1252.csv": [(3, "", "neither UTF-8 nor Windows-1252")],
    "23_not_a_spreadsheet.pdf": [(None, "", "is not a CSV or XLSX file")],
    "24_old_excel_97.xlsx": [(None, "", "Excel 97-2003")],
    "25_empty_file.csv": [(None, "", "The file is empty")],
    "26_header_only.csv": [(None, "", "no data rows")],
    "27_too_large.csv": [(None, "", "the limit is 1,000 bytes")],
    "28_too_many_rows.csv": [(None, "", "The file has more than 5 rows; the limit is 5")],
    "29_text_named_xlsx.xlsx": [(None, "", "not an Excel workbook")],
    "30_ragged_row.csv": [(3, "G", "cells but the first row has 6")],
    "31_mixture.csv": [
        (2, "programme", "Unknown programme"),
        (3, "opportunities", "Negative"),
        (4, "month", "Not a month"),
        (6, "month", "Duplicate: row 5"),
        (8, "participants", "More participants"),
        (8, "spend_gbp", "Not an amount of money"),
    ],
    "32_mixture.xlsx": [
        (2, "borough", "Did you mean 'Westminster'?"),
        (3, "participants", "More participants"),
        (4, "month", "Empty"),
    ],
    "33_windows_1252_with_bad_row.csv": [(3, "borough", "Did you mean 'Bromley'?")],
    "34_bom_duplicate_column.csv": [(1, "D", "appears twice")],
    "35_unnamed_column_with_data.csv": [(1, "E", "no header")],
}
LIMITS = {
    "27_too_large.csv": ("VRU_MAX_UPLOAD_BYTES", "1000"),
    "28_too_many_rows.csv": ("VRU_MAX_UPLOAD_ROWS", "5"),
}


def test_the_corpus_is_complete() -> None:
    files = sorted(p.name for p in CORPUS.iterdir())
    assert files == sorted(EXPECTED)
    assert len(files) >= 25


@pytest.fixture
def before(session, engine):
    add_programmes(session)
    return dump(engine)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_is_rejected_and_nothing_changes(
    name: str, before, session, engine, monkeypatch
) -> None:
    if name in LIMITS:
        monkeypatch.setenv(*LIMITS[name])
    result = deliveries.import_file(
        session, principal=STAFF, content=(CORPUS / name).read_bytes(), file_name=name
    )
    session.commit()
    assert not result.ok
    got = [(p.row, p.column, p.reason) for p in result.problems]
    assert [(r, c) for r, c, _ in got] == [(r, c) for r, c, _ in EXPECTED[name]], got
    for (_, _, reason), (_, _, fragment) in zip(got, EXPECTED[name], strict=True):
        assert fragment in reason
    row_problems = {r for r, c, _ in EXPECTED[name] if c in TEMPLATE_COLUMNS and r and r > 1}
    assert result.summary()["rejected"] == len(row_problems)
    assert dump(engine) == before
