"""Render a :class:`Report` as CSV (a zip of tidy tables), XLSX or PDF.

CSV and XLSX are byte-identical when rebuilt from the same data: zip entries carry a fixed
timestamp and the workbook's document dates are fixed. Text cells that a spreadsheet would read
as a formula are neutralised in both, the one way every file people open is written
(:mod:`registry.files`).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from registry.files import csv_bytes, neutralise, safe_frame
from registry.reports.build import Report

FORMATS = ("csv", "xlsx", "pdf")
_FIXED_ZIP_TIME = (2000, 1, 1, 0, 0, 0)
_FIXED_DOC_TIME = dt.datetime(2000, 1, 1)


def _deterministic_zip(entries: Iterable[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def table_csv(frame: pd.DataFrame) -> bytes:
    return csv_bytes(frame)


def to_csv_zip(report: Report) -> bytes:
    """One tidy CSV per table, plus the notes, in a zip."""
    entries = [(f"{name}.csv", table_csv(frame)) for name, frame in report.tables.items()]
    entries.append(("notes.txt", ("\n\n".join(report.notes) + "\n").encode("utf-8")))
    return _deterministic_zip(entries)


def to_xlsx(report: Report) -> bytes:
    """One sheet per table (headers frozen, numbers as numbers) and a Notes sheet first."""
    workbook = Workbook()
    notes = workbook.worksheets[0]  # a new workbook holds one sheet
    notes.title = "Notes"
    notes["A1"] = neutralise(f"VRU outcome summary: {report.scope.title()}")
    notes["A1"].font = Font(bold=True, size=14)
    for i, line in enumerate(report.notes, start=3):
        cell = notes.cell(row=i, column=1, value=neutralise(line))
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    notes.column_dimensions["A"].width = 120
    header_fill = PatternFill("solid", fgColor="1D3557")
    for name, frame in report.tables.items():
        sheet = workbook.create_sheet(title=name[:31])
        safe = safe_frame(frame)
        sheet.append(list(safe.columns))
        for cell in sheet[1]:
            cell.font = Font(bold=True, color="FFFFFF")
            cell.fill = header_fill
        for row in safe.itertuples(index=False):
            sheet.append([_cell(v) for v in row])
        sheet.freeze_panes = "A2"
        for i, column in enumerate(safe.columns, start=1):
            width = max([len(str(column)), *(len(str(v)) for v in safe[column].head(200))])
            sheet.column_dimensions[get_column_letter(i)].width = min(60, width + 2)
    workbook.properties.creator = "VRU registry"
    workbook.properties.created = _FIXED_DOC_TIME
    workbook.properties.modified = _FIXED_DOC_TIME
    raw = io.BytesIO()
    workbook.save(raw)
    return _normalise_xlsx(raw.getvalue())


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return None
    if hasattr(value, "item"):  # numpy scalar to a plain number
        return value.item()
    return value


def _normalise_xlsx(data: bytes) -> bytes:
    """Re-pack the workbook with fixed timestamps so a rebuild is byte-identical."""
    source = zipfile.ZipFile(io.BytesIO(data))
    entries = []
    for info in source.infolist():
        content = source.read(info.filename)
        if info.filename == "docProps/core.xml":
            content = re.sub(
                rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:)",
                rb"\g<1>2000-01-01T00:00:00Z\g<3>",
                content,
            )
        entries.append((info.filename, content))
    return _deterministic_zip(entries)


def render(report: Report, fmt: str) -> bytes:
    if fmt == "csv":
        return to_csv_zip(report)
    if fmt == "xlsx":
        return to_xlsx(report)
    if fmt == "pdf":
        from registry.reports.pdf import to_pdf

        return to_pdf(report)
    raise ValueError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")


def write(report: Report, fmt: str, out: Path) -> list[Path]:
    """Write ``report`` to ``out``; CSV to a folder of files unless ``out`` ends in ``.zip``."""
    if fmt == "csv" and out.suffix.lower() != ".zip":
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, frame in report.tables.items():
            path = out / f"{name}.csv"
            path.write_bytes(table_csv(frame))
            paths.append(path)
        notes = out / "notes.txt"
        notes.write_text("\n\n".join(report.notes) + "\n", encoding="utf-8")
        return [*paths, notes]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(render(report, fmt))
    return [out]
