"""Hostile files are refused quickly, in bounded memory, with a plain reason (issue #19).

Each file is built here: a workbook whose sheet claims A1:XFD300001, a CSV with a million columns,
a workbook of three million rows, a CSV with a NUL byte after its first 4 KiB, a workbook with an
XML bomb, a sheet of ``#DIV/0!`` cells. Each goes through ``vru import deliveries`` (exit 1, one
line, nothing written) and the peak memory of the child process that parsed it is read from the
record :mod:`registry.untrusted` logs (``ru_maxrss``), and must stay under 300 MB.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import func, select

from registry import db, programmes
from registry.cli import cli
from registry.outcomes.common import ImportRefused, Source
from registry.outcomes.store import import_crime, import_population
from registry.schema import Delivery, ImportBatch
from registry.untrusted import RunStats
from tests.conftest import ADMIN

PEAK_LIMIT = 300 * 2**20
HEADER = "programme,borough,month,opportunities,participants,spend_gbp\n"


def _workbook(rows: list[list[object]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _replace_sheet(xlsx: bytes, sheet_xml: bytes | None = None, **parts: bytes) -> bytes:
    """``xlsx`` with its first sheet's XML (or other parts, by name) replaced."""
    source = zipfile.ZipFile(io.BytesIO(xlsx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml" and sheet_xml is not None:
                data = sheet_xml
            data = parts.get(info.filename, data)
            target.writestr(info.filename, data)
    return out.getvalue()


def _sheet(dimension: str | None, rows: bytes) -> bytes:
    dim = f'<dimension ref="{dimension}"/>'.encode() if dimension else b""
    return (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + dim
        + b"<sheetData>"
        + rows
        + b"</sheetData></worksheet>"
    )


def _many_rows(count: int) -> bytes:
    return b"".join(b'<row r="%d"><c r="A%d"><v>1</v></c></row>' % (i, i) for i in range(1, count))


@pytest.fixture
def ready(engine):
    with db.session_scope(engine) as s:
        programmes.add_funding_stream(s, principal=ADMIN, name="Fund", funder="City Hall")
        programmes.add_programme(
            s,
            principal=ADMIN,
            name="Mentors",
            funding_stream="Fund",
            start=dt.date(2020, 1, 1),
        )
    return engine


def _refused(url: str, path: Path, caplog) -> tuple[str, RunStats]:
    caplog.set_level(logging.INFO, logger="vru.untrusted")
    caplog.clear()
    result = CliRunner().invoke(cli, ["--database-url", url, "import", "deliveries", str(path)])
    assert result.exit_code == 1, result.output
    stats = [r.stats for r in caplog.records if hasattr(r, "stats")]
    assert stats, "the file was not read in the limited child process"
    return result.stderr + result.output, stats[-1]


def _nothing_written(engine) -> None:
    with db.session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0
        assert s.scalar(select(func.count()).select_from(ImportBatch)) == 0


def test_sheet_claiming_a1_to_xfd300001_is_refused_from_its_dimension(
    ready, db_url, tmp_path, caplog
) -> None:
    rows = _many_rows(2000)  # a real sheet's worth of bytes behind a huge claim
    path = tmp_path / "claims.xlsx"
    path.write_bytes(_replace_sheet(_workbook([[1]]), _sheet("A1:XFD300001", rows)))
    text, stats = _refused(db_url, path, caplog)
    assert "declares 300,001 rows and 16,384 columns (A1:XFD300001)" in text
    assert stats.peak_rss_bytes < PEAK_LIMIT
    _nothing_written(ready)


def test_a_cell_far_to_the_right_is_refused_while_streaming(
    ready, db_url, tmp_path, caplog
) -> None:
    row = (
        b'<row r="1"><c r="A1" t="inlineStr"><is><t>programme</t></is></c>'
        b'<c r="XFD1"><v>1</v></c></row>'
    )
    path = tmp_path / "wide.xlsx"
    path.write_bytes(_replace_sheet(_workbook([[1]]), _sheet(None, row)))
    text, stats = _refused(db_url, path, caplog)
    assert "reaches column XFD (16,384 columns); the limit is 1,000" in text
    assert stats.peak_rss_bytes < PEAK_LIMIT


def test_csv_with_a_million_columns_is_refused_from_its_header(
    ready, db_url, tmp_path, caplog
) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(1_000_000)) + "\n1\n", encoding="utf-8")
    text, stats = _refused(db_url, path, caplog)
    assert "The first row has 1,000,000 columns; the limit is 1,000" in text
    assert stats.peak_rss_bytes < PEAK_LIMIT
    _nothing_written(ready)


@pytest.mark.slow
def test_workbook_of_three_million_rows_is_refused(ready, db_url, tmp_path, caplog) -> None:
    path = tmp_path / "tall.xlsx"
    path.write_bytes(_replace_sheet(_workbook([[1]]), _sheet("A1:A3000000", _many_rows(3_000_001))))
    text, stats = _refused(db_url, path, caplog)
    assert "declares 3,000,000 rows" in text
    assert stats.peak_rss_bytes < PEAK_LIMIT
    _nothing_written(ready)


def test_rows_beyond_the_limit_are_counted_while_streaming(
    ready, db_url, tmp_path, caplog, monkeypatch
) -> None:
    """With no declared size (or a false one), rows are counted as they are read."""
    monkeypatch.setenv("VRU_MAX_UPLOAD_ROWS", "1000")
    path = tmp_path / "undeclared.xlsx"
    path.write_bytes(_replace_sheet(_workbook([[1]]), _sheet("A1", _many_rows(50_000))))
    text, stats = _refused(db_url, path, caplog)
    assert "more than 1,000 data rows" in text
    assert stats.peak_rss_bytes < PEAK_LIMIT


def test_nul_byte_after_the_first_4_kib_is_refused(ready, db_url, tmp_path, caplog) -> None:
    rows = "".join(f"Mentors,Camden,2023-{m:02d},10,5,\n" for m in range(1, 13)) * 20
    content = (HEADER + rows).encode()
    at = content.index(b",10,", 5000) + 2  # inside a "10"
    assert at > 4096
    path = tmp_path / "nul.csv"
    path.write_bytes(content[:at] + b"\x00" + content[at:])
    text, stats = _refused(db_url, path, caplog)
    assert "NUL byte" in text and f"at byte {at:,}" in text
    assert stats.peak_rss_bytes < PEAK_LIMIT
    _nothing_written(ready)


BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b']><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData>'
    b"</worksheet>"
)


def test_xml_bomb_in_a_workbook_is_refused_with_a_plain_reason(
    ready, db_url, tmp_path, caplog
) -> None:
    book = _workbook([["programme"], ["x"]])
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(_replace_sheet(book, BOMB))
    text, _ = _refused(db_url, path, caplog)
    assert "declares a DTD or XML entities" in text and "Unexpected" not in text


def test_spreadsheet_error_cells_are_named(ready, engine) -> None:
    from registry import deliveries
    from tests.conftest import STAFF

    content = _workbook(
        [
            ["programme", "borough", "month", "opportunities", "participants"],
            ["Mentors", "Camden", "2024-01", "#DIV/0!", 3],
            ["Mentors", "Hackney", "2024-01", 12, "#REF!"],
        ]
    )
    with db.session_scope(engine) as s:
        result = deliveries.import_file(s, principal=STAFF, content=content, file_name="e.xlsx")
    assert not result.ok
    got = [(p.row, p.column, p.value) for p in result.problems]
    assert got == [(2, "opportunities", "#DIV/0!"), (3, "participants", "#REF!")]
    assert all("spreadsheet error" in p.reason for p in result.problems)


def test_outcome_imports_refuse_hostile_files_with_plain_reasons(engine, tmp_path) -> None:
    wide = ",".join(f"c{i}" for i in range(5000)) + "\n"
    cases = [
        (
            Source.from_bytes(
                "nul.csv", b"measure,borough,month,count\n" + b"a" * 9000 + b"\x00\n"
            ),
            "long",
            "NUL byte",
        ),
        (Source.from_bytes("wide.csv", wide.encode()), "long", "columns; the limit is 1,000"),
    ]
    for source, fmt, reason in cases:
        with db.session_scope(engine) as s, pytest.raises(ImportRefused, match=reason):
            import_crime(s, principal=ADMIN, sources=[source], fmt=fmt)
    bomb = _replace_sheet(_workbook([["Month_Year"], ["x"]]), BOMB)
    with db.session_scope(engine) as s, pytest.raises(ImportRefused, match="DTD or XML entities"):
        import_crime(
            s, principal=ADMIN, sources=[Source.from_bytes("d.xlsx", bomb)], fmt="mps-dashboard"
        )
    divided = b"borough,year,age_band,people\nCamden,2020,10-24,#DIV/0!\n"
    with db.session_scope(engine) as s, pytest.raises(ImportRefused, match="spreadsheet error"):
        import_population(
            s, principal=ADMIN, source=Source.from_bytes("p.csv", divided), fmt="long"
        )
