"""Reading a delivery spreadsheet (CSV or XLSX) into text cells, checking the file itself.

Everything about the *file* is checked here: its type, size, text encoding, emptiness and headers.
Every cell comes back as text, with the row number a spreadsheet shows (the header is row 1), so
the row checks in :mod:`registry.deliveries` can quote exactly what the user typed.

Excel writes CSV as UTF-8 (with or without a byte-order mark) or as Windows-1252, so those three are
accepted; anything else (UTF-16, binary) is refused with advice.

The file is parsed in a child process within the size, shape, memory and time limits of
:mod:`registry.untrusted`; only the cheap checks of the name, size and first bytes run here.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from registry.config import get_settings
from registry.problems import HEADER_ROW, Problem, sheet_row, without_blank_rows
from registry.untrusted import (
    ERROR_CODES,
    FileRefused,
    Limits,
    check_header_columns,
    check_no_nul,
    check_xlsx,
    column_letter,
    error_reason,
    first_line,
    ragged_row,
    run_limited,
    xlsx_rows,
)

TEMPLATE_COLUMNS = ("programme", "borough", "month", "opportunities", "participants", "spend_gbp")
REQUIRED_COLUMNS = ("programme", "borough", "month", "opportunities")
FORMATS = {".csv": "csv", ".xlsx": "xlsx"}
# Header spellings people use for the template's columns.
_HEADER_ALIASES = {
    "programme_name": "programme",
    "program": "programme",
    "borough_name": "borough",
    "gss_code": "borough",
    "borough_code": "borough",
    "spend": "spend_gbp",
    "spend_(£)": "spend_gbp",
    "spend_£": "spend_gbp",
}
_XLS_MAGIC = b"\xd0\xcf\x11\xe0"
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Sheet:
    """The cells of an upload as text, with a ``row`` column of spreadsheet row numbers."""

    frame: pd.DataFrame
    format: str
    problems: list[Problem] = field(default_factory=list)


_EXAMPLE = ("Example programme", "Camden", "2024-04", "25", "20", "1250.00")


def template_frame() -> pd.DataFrame:
    """The upload template: the columns and one example row."""
    return pd.DataFrame([_EXAMPLE], columns=list(TEMPLATE_COLUMNS))


def template_csv() -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TEMPLATE_COLUMNS)
    writer.writerow(_EXAMPLE)
    return buffer.getvalue().encode("utf-8")


def _header_key(name: object) -> str:
    text = str(name if name is not None else "").replace("\ufeff", "").replace("\u00a0", " ")
    return re.sub(r"\s+", "_", text.strip().casefold())


def _refuse(reason: str, value: str = "", row: int | None = None) -> Sheet:
    return Sheet(pd.DataFrame(), "", [Problem(reason=reason, row=row, column="", value=value)])


def _decode(content: bytes) -> str | Problem:
    if b"\x00" in content[:4096]:
        return Problem(
            reason="The file is not UTF-8 or Windows-1252 text (it looks like UTF-16 or a binary "
            "file). In Excel choose Save As > 'CSV UTF-8 (Comma delimited)'.",
            column="",
            value="",
        )
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    try:
        return content.decode("cp1252")
    except UnicodeDecodeError:
        line = content[: utf8_error.start].count(b"\n") + 1
        byte = content[utf8_error.start : utf8_error.start + 1].hex()
        return Problem(
            reason="The file is neither UTF-8 nor Windows-1252 text. In Excel choose Save As > "
            "'CSV UTF-8 (Comma delimited)'.",
            row=line,
            column="",
            value=f"0x{byte}",
        )


def _read_csv(content: bytes, limits: Limits) -> Sheet:
    text = _decode(content)
    if isinstance(text, Problem):
        return Sheet(pd.DataFrame(), "csv", [text])
    check_no_nul(io.BytesIO(content))
    if not text.strip():
        return _refuse("The file is empty: it has no header and no rows.")
    check_header_columns(first_line(text), limits)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            header=None,
            skipinitialspace=False,
            nrows=limits.max_rows + 2,  # the header, the limit, and one more to know it is over
        ).fillna("")
    except pd.errors.EmptyDataError:
        return _refuse("The file has no header row and no cells that CSV can read.")
    except pd.errors.ParserError as exc:
        ragged = ragged_row(exc)
        if ragged is None:
            return _refuse("The file is not a readable CSV table; save it again as CSV UTF-8.")
        expected, row, seen = ragged
        return Sheet(
            pd.DataFrame(),
            "",
            [
                Problem(
                    reason=f"This row has {seen} cells but the first row has {expected}: remove "
                    f"the extra cells from column {column_letter(expected)} on.",
                    row=row,
                    column=column_letter(expected),
                    value=f"{seen} cells",
                )
            ],
        )
    return _with_header(frame, "csv")


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        if value.day == 1 and (not isinstance(value, dt.datetime) or value.time() == dt.time()):
            return f"{value.year:04d}-{value.month:02d}"
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_xlsx(content: bytes, limits: Limits) -> Sheet:
    check_xlsx(content, limits)
    rows = [[_cell_text(v) for v in row] for row in xlsx_rows(content, limits)]
    if not rows:
        return _refuse("The file is empty: its first sheet has no header and no rows.")
    return _with_header(pd.DataFrame(rows, dtype=str).fillna(""), "xlsx")


def _with_header(raw: pd.DataFrame, fmt: str) -> Sheet:
    """Turn the first row into column names, check them, and number the data rows."""
    header = [_header_key(v) for v in raw.iloc[0].tolist()]
    header = [_HEADER_ALIASES.get(h, h) for h in header]
    data = raw.iloc[1:].set_axis(range(raw.shape[1]), axis=1)
    data.insert(0, "row", [sheet_row(i) for i in range(len(data))])
    # Blank lines and rows of empty cells are skipped; the row numbers of the others stay true.
    data = without_blank_rows(data, range(raw.shape[1]))
    # Trailing unnamed, empty columns are common in exported sheets.
    while header and header[-1] == "" and (data[len(header) - 1].str.strip() == "").all():
        header.pop()
        data = data.drop(columns=len(header))
    if not set(header) & set(TEMPLATE_COLUMNS):
        first = ",".join(str(v) for v in raw.iloc[0].tolist()).strip(",")
        return Sheet(
            pd.DataFrame(),
            fmt,
            [
                Problem(
                    reason="The first row is not the template's header; it must name the columns "
                    f"{', '.join(TEMPLATE_COLUMNS)}.",
                    row=HEADER_ROW,
                    column="",
                    value=first,
                )
            ],
        )
    problems: list[Problem] = []
    seen: set[str] = set()
    for position, name in enumerate(header):
        letter = column_letter(position)
        if name == "":
            problems.append(
                Problem(
                    reason="This column has no header.", row=HEADER_ROW, column=letter, value=""
                )
            )
        elif name not in TEMPLATE_COLUMNS:
            problems.append(
                Problem(
                    reason=f"Unknown column {name!r}; the template's columns are "
                    f"{', '.join(TEMPLATE_COLUMNS)}.",
                    row=HEADER_ROW,
                    column=letter,
                    value=name,
                )
            )
        elif name in seen:
            problems.append(
                Problem(
                    reason=f"The column {name!r} appears twice.",
                    row=HEADER_ROW,
                    column=letter,
                    value=name,
                )
            )
        seen |= {name}
    for name in REQUIRED_COLUMNS:
        if name not in seen:
            problems.append(
                Problem(
                    reason=f"The required column {name!r} is missing from the header.",
                    row=HEADER_ROW,
                    column=name,
                    value="",
                )
            )
    if problems:
        return Sheet(pd.DataFrame(), fmt, problems)
    for position, name in enumerate(header):
        failed = data[position].isin(ERROR_CODES).to_numpy(dtype=bool)
        problems += [
            Problem(reason=error_reason(value), row=int(row), column=name, value=value)
            for row, value in zip(data["row"][failed], data[position][failed], strict=True)
        ]
    if problems:
        return Sheet(pd.DataFrame(), fmt, problems)
    if data.empty:
        return Sheet(
            pd.DataFrame(),
            fmt,
            [Problem(reason="The file has no data rows.", column="", value="")],
        )
    data = data.set_axis(["row", *header], axis=1)
    for name in TEMPLATE_COLUMNS:
        if name not in data.columns:
            data[name] = ""
    return Sheet(data[["row", *TEMPLATE_COLUMNS]].reset_index(drop=True), fmt)


def read_upload(content: bytes, file_name: str) -> Sheet:
    """Read an uploaded file; the sheet's ``problems`` say why a file cannot be used at all."""
    settings = get_settings()
    suffix = Path(file_name).suffix.lower()
    if suffix not in FORMATS:
        return _refuse(
            f"{Path(file_name).name!r} is not a CSV or XLSX file; upload the template as .csv "
            "or .xlsx.",
            value=suffix,
        )
    if len(content) > settings.max_upload_bytes:
        return _refuse(
            f"The file is {len(content):,} bytes; the limit is {settings.max_upload_bytes:,} "
            "bytes. Split it into smaller files.",
        )
    if not content:
        return _refuse("The file is empty: it has no header and no rows.")
    if content.startswith(_XLS_MAGIC):
        return _refuse(
            "This is an old Excel 97-2003 (.xls) workbook; save it as .xlsx or CSV UTF-8."
        )
    if suffix == ".xlsx" and not content.startswith(_ZIP_MAGIC):
        return _refuse("The file is named .xlsx but is not an Excel workbook.")
    if suffix == ".csv" and content.startswith(_ZIP_MAGIC):
        return _refuse("The file is named .csv but is an Excel workbook; name it .xlsx.")
    limits = Limits.from_settings(settings)
    try:
        return run_limited(_parse, content, suffix, limits, limits=limits, what="the file")
    except FileRefused as exc:
        return _refuse(str(exc))


def _parse(content: bytes, suffix: str, limits: Limits) -> Sheet:
    """Read the file's cells (in the child process of :func:`read_upload`)."""
    sheet = _read_csv(content, limits) if suffix == ".csv" else _read_xlsx(content, limits)
    if not sheet.problems and len(sheet.frame) > limits.max_rows:
        rows = f"more than {limits.max_rows:,}" if suffix == ".csv" else f"{len(sheet.frame):,}"
        return _refuse(
            f"The file has {rows} rows; the limit is {limits.max_rows:,}. Split it into "
            "smaller files."
        )
    return sheet
