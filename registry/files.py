"""Files people open (CSV and XLSX), written one way: text that a spreadsheet would run as a
formula is made inert.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula (OWASP "CSV injection"); openpyxl would even store it
as one. Every such text cell (and header) gets a leading apostrophe, which spreadsheets show as
text. A text that already starts with an apostrophe followed by one of those characters (or by
another apostrophe) gets one too, so :func:`restore` undoes :func:`neutralise` exactly: the
delivery importer strips the guard, and ``vru export deliveries`` output re-imports unchanged.

Numbers stay numbers: only text is touched.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd

from registry.errors import RegistryError

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
_GUARD = "'"


def neutralise(value: Any) -> Any:
    """Make a text cell inert in a spreadsheet; numbers, blanks and safe text pass unchanged."""
    if not isinstance(value, str):
        return value
    if value.startswith(DANGEROUS) or (
        value.startswith(_GUARD) and value[1:].startswith((*DANGEROUS, _GUARD))
    ):
        return _GUARD + value
    return value


def restore(value: str) -> str:
    """Undo :func:`neutralise` on a cell read back from a file this product wrote."""
    if value.startswith(_GUARD) and value[1:].startswith((*DANGEROUS, _GUARD)):
        return value[1:]
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell and header neutralised (a copy)."""
    out = frame.copy()
    out.columns = [neutralise(str(c)) for c in out.columns]
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            out.isetitem(position, column.map(neutralise, na_action="ignore").array)
    return out


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as UTF-8 CSV (no index, ``\\n`` line ends), formulas neutralised."""
    return safe_frame(frame).to_csv(index=False, lineterminator="\n").encode("utf-8")


def xlsx_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as a one-sheet workbook, formulas neutralised."""
    buffer = io.BytesIO()
    safe_frame(frame).to_excel(buffer, index=False, engine="openpyxl")
    return buffer.getvalue()


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as CSV (UTF-8) or XLSX, chosen by ``path``'s extension; another
    extension, or a folder that does not exist, is refused with a plain message."""
    suffix = path.suffix.lower()
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise RegistryError(
            f"Cannot write {path.name}: the folder {str(folder)!r} {what}. "
            "Choose a folder that exists."
        )
    if suffix not in (".csv", ".xlsx"):
        raise RegistryError(f"Choose a file name ending .csv or .xlsx, not {path.name!r}.")
    path.write_bytes(csv_bytes(frame) if suffix == ".csv" else xlsx_bytes(frame))
