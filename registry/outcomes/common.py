"""What every importer shares: the file being read, refusals, and the parsed result."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import unicodedata
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from registry import boroughs
from registry.errors import RegistryError
from registry.problems import Problem, sheet_row, sheet_row_of
from registry.untrusted import (
    ERROR_CODES,
    FileRefused,
    check_header_columns,
    check_no_nul,
    check_xlsx,
    current_limits,
    error_reason,
    first_line,
    ragged_row,
    xlsx_rows,
)

Progress = Callable[[float, str], None]
MAX_PROBLEMS_SHOWN = 10


def no_progress(_fraction: float, _message: str) -> None:
    """The default progress callback: report nothing."""


@dataclass(frozen=True)
class Source:
    """A file to import: a path on disk, or the bytes of an upload with its original name."""

    name: str
    path: Path | None = None
    content: bytes | None = None

    @classmethod
    def from_path(cls, path: Path) -> Source:
        return cls(name=path.name, path=path)

    @classmethod
    def from_bytes(cls, name: str, content: bytes) -> Source:
        return cls(name=name, content=content)

    def open(self) -> IO[bytes]:
        if self.content is not None:
            return io.BytesIO(self.content)
        assert self.path is not None
        return self.path.open("rb")

    def size(self) -> int:
        if self.content is not None:
            return len(self.content)
        assert self.path is not None
        return self.path.stat().st_size

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with self.open() as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def text(self) -> str:
        """The file as text: UTF-8, with stray Windows-1252 bytes (an NBSP) read as such."""
        with self.open() as stream:
            raw = stream.read()
        return decode_lenient(raw)


def decode_lenient(raw: bytes) -> str:
    """Decode UTF-8, reading any line that is not valid UTF-8 as Windows-1252.

    Published files are UTF-8 with the odd Windows-1252 byte (``\\xa0`` after a name) pasted in.
    """
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        lines = raw.split(b"\n")
        out = []
        for line in lines:
            try:
                out.append(line.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(line.decode("cp1252", errors="replace"))
        return "\n".join(out)


def clean(value: object) -> str:
    """A cell as trimmed text, with non-breaking and odd spaces folded to plain ones."""
    text = unicodedata.normalize("NFKC", str(value)).replace("\u00a0", " ")
    return re.sub(r"\s+", " ", text).strip()


def category_key(value: str) -> str:
    """How source categories are compared: case, spacing and NBSPs do not matter."""
    return clean(value).casefold()


class ImportRefused(RegistryError):
    """A file that cannot be imported; nothing was written. ``problems`` says why, row by row."""

    def __init__(self, file_name: str, problems: Iterable[Problem]) -> None:
        self.file_name = file_name
        self.problems = list(problems)
        shown = "; ".join(str(p) for p in self.problems[:MAX_PROBLEMS_SHOWN])
        more = len(self.problems) - MAX_PROBLEMS_SHOWN
        extra = f"; and {more} more" if more > 0 else ""
        super().__init__(f"{file_name} refused, nothing imported: {shown}{extra}.")

    def __reduce__(self) -> tuple[type[ImportRefused], tuple[str, list[Problem]]]:
        # Rebuilt from its parts when it crosses from the parsing child process.
        return (ImportRefused, (self.file_name, self.problems))


def refuse(
    file_name: str,
    reason: str,
    *,
    row: int | None = None,
    column: str | None = None,
    value: str | None = None,
) -> ImportRefused:
    return ImportRefused(file_name, [Problem(reason, row, column, value)])


@dataclass
class ParsedCrime:
    """Counts read from one or more files, aggregated, ready to compare with the database.

    ``rows_read`` is the number of source rows; every one of them is a borough row, a London
    unallocated row (``unallocated_rows`` by source area) or a skipped row (``skipped`` by reason).
    """

    format: str
    file_name: str
    sha256: str
    rows_read: int = 0
    layout: str | None = None
    files: list[dict[str, str]] = field(default_factory=list)
    counts: dict[tuple[str, str, dt.date], int] = field(default_factory=dict)
    unallocated: dict[tuple[str, str, dt.date], int] = field(default_factory=dict)
    borough_rows: int = 0
    unallocated_rows: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    unmapped: set[str] = field(default_factory=set)

    def note_borough_rows(self, n: int) -> None:
        self.borough_rows += n

    def add_count(self, measure: str, gss: str, month: dt.date, n: int) -> None:
        key = (measure, gss, month)
        self.counts[key] = self.counts.get(key, 0) + n

    def add_unallocated(self, measure: str, area: str, month: dt.date, n: int) -> None:
        key = (measure, area, month)
        self.unallocated[key] = self.unallocated.get(key, 0) + n

    def add_row(self, place: tuple[str, str], measure: str, month: dt.date, n: int) -> None:
        """One source row's count at ``place``, a :func:`crime_area`: a borough's, or London
        unallocated (a row of the Met's non-borough area)."""
        kind, target = place
        if kind == "borough":
            self.note_borough_rows(1)
            self.add_count(measure, target, month, n)
        else:
            self.unallocated_rows[target] += 1
            self.add_unallocated(measure, target, month, n)


@dataclass
class ParsedPopulation:
    """People per borough, year and age band, read from one file."""

    format: str
    file_name: str
    sha256: str
    rows_read: int = 0
    people: dict[tuple[str, int, str], int] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)


UNKNOWN_AREA = "not a London borough or one of the Met's known non-borough areas"


def crime_area(name: str, code: str = "") -> tuple[str, str] | None:
    """Where a crime count of area ``name`` (and GSS ``code``, tried first, if the file has one)
    belongs: ``("borough", GSS code)``, ``("pseudo", the Met's name of the non-borough area)``
    for a London unallocated count, or ``None`` when it is neither (see :func:`unknown_area`)."""
    borough = (boroughs.find(code) if code else None) or boroughs.find(name)
    if borough is not None:
        return ("borough", borough.gss_code)
    pseudo = boroughs.pseudo_area_name(name)
    return None if pseudo is None else ("pseudo", pseudo)


def did_you_mean(name: str) -> str:
    """The end of a refusal of an unknown area: the borough it is likely a slip for, if any."""
    hint = boroughs.suggest(name)
    return f"; did you mean {hint!r}?" if hint else ""


def unknown_area(name: str, row: int, column: str) -> Problem:
    """The refusal of an area :func:`crime_area` does not know, suggesting the likely borough."""
    return Problem(UNKNOWN_AREA + did_you_mean(name), row, column, name)


COUNT_REASON = "a count must be a whole number of 0 or more"
MISSING_COUNT_REASON = "the count is missing (write 0 for none)"


def whole_number(text: str) -> int | None:
    """``text`` (cleaned) as a whole number of 0 or more written in digits only, else ``None``."""
    return int(text) if text.isdigit() else None


def check_counts(values: pd.DataFrame, limit: int = 50) -> tuple[pd.DataFrame, list[Problem]]:
    """Count cells (cleaned text) as numbers, and a problem for each of the first ``limit`` cells
    that is not a whole number of 0 or more (``12.0`` is one, as spreadsheets write it)."""
    numbers = values.apply(pd.to_numeric, errors="coerce")
    bad = (numbers.isna() | (numbers < 0) | (numbers % 1 != 0)).to_numpy()
    problems = []
    rows, cols = np.nonzero(bad)
    for r, c in zip(rows[:limit], cols[:limit], strict=True):
        value = str(values.iat[r, c])
        reason = COUNT_REASON if value else MISSING_COUNT_REASON
        problems.append(
            Problem(reason, sheet_row_of(values.index[r]), str(values.columns[c]), value)
        )
    return numbers, problems


def combined_sha256(hashes: Iterable[str]) -> str:
    """One fingerprint for a set of files, whatever order they were given in."""
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()


def parser_refusal(file_name: str, exc: Exception) -> ImportRefused:
    """Turn pandas' complaint about a malformed CSV into a refusal a person can act on."""
    ragged = ragged_row(exc)
    if ragged:
        expected, line, saw = ragged
        return refuse(
            file_name,
            f"{saw} cells where the header has {expected} columns (a comma in an unquoted name?)",
            row=line,
        )
    if isinstance(exc, pd.errors.ParserWarning):
        return refuse(file_name, "the first row has more cells than the header has columns")
    if isinstance(exc, pd.errors.EmptyDataError):
        return refuse(file_name, "the file is empty")
    return refuse(file_name, f"not a readable CSV file ({str(exc).splitlines()[0]})")


XLSX_MAGIC = b"PK\x03\x04"  # a zip archive, as every XLSX workbook is
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def require_text(source: Source, fmt: str) -> None:
    """Refuse a workbook or other binary file given to a format that reads CSV text.

    Without this a workbook reaches the CSV parser and is refused for "2 cells where the header
    has 1 columns", which sends the user looking for a comma instead of the right file.
    """
    with source.open() as stream:
        head = stream.read(8192)
    if head.startswith(XLSX_MAGIC):
        with source.open() as stream:
            try:
                names = zipfile.ZipFile(stream).namelist()
            except zipfile.BadZipFile:
                names = []
        what = "an Excel workbook" if any(n.startswith("xl/") for n in names) else "a zip archive"
        raise refuse(
            source.name, f"This is {what}; --format {fmt} takes the CSV file (save it as CSV)"
        )
    if head.startswith(_OLE_MAGIC):
        raise refuse(
            source.name,
            f"This is an old Excel (.xls) workbook; --format {fmt} takes the CSV file "
            "(save it as CSV)",
        )
    if b"\x00" in head:
        raise refuse(source.name, f"This is not a text file; --format {fmt} takes a CSV file")
    with source.open() as stream:
        try:
            check_no_nul(stream)
        except FileRefused as exc:
            raise refuse(source.name, str(exc).rstrip(".")) from None


def read_csv_text(source: Source, fmt: str) -> pd.DataFrame:
    """A whole CSV file as text cells (nothing guessed), refusing rows of the wrong width.

    ``fmt`` names the import format, for the refusal of a file that is not text at all.
    """
    require_text(source, fmt)
    limits = current_limits()
    text = source.text()
    try:
        check_header_columns(first_line(text), limits)
    except FileRefused as exc:
        raise refuse(source.name, str(exc).rstrip(".")) from None
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(
                io.StringIO(text),
                dtype=str,
                keep_default_na=False,
                index_col=False,
                nrows=limits.max_rows + 1,
            )
        except (pd.errors.ParserError, pd.errors.ParserWarning, pd.errors.EmptyDataError) as exc:
            raise parser_refusal(source.name, exc) from exc
    if len(frame) > limits.max_rows:
        raise refuse(
            source.name,
            f"the file has more than {limits.max_rows:,} rows, the limit; split it into smaller "
            "files",
        )
    refuse_error_cells(source.name, frame)
    return frame


def header_of(source: Source) -> list[str]:
    """The first row of a CSV file, or of the first sheet of an XLSX workbook."""
    with source.open() as stream:
        head = stream.read(64 * 1024)
    if head.startswith(XLSX_MAGIC):
        return [clean(c) for c in read_xlsx(source, header_only=True).columns]
    text = decode_lenient(head)
    first = next(csv.reader(io.StringIO(text)), [])
    return [clean(c) for c in first]


def _excel_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def read_xlsx(source: Source, header_only: bool = False) -> pd.DataFrame:
    """The first sheet of a workbook as a table (its first row the header), read within the
    limits of :mod:`registry.untrusted`; error cells are refused. ``header_only``: no rows."""
    limits = current_limits()
    with source.open() as stream:
        content = stream.read(limits.max_unzipped_bytes + 1)
    rows: list[list[object]] = []
    try:
        check_xlsx(content, limits)
        for row in xlsx_rows(content, limits):
            rows.append([_excel_value(v) for v in row])
            if header_only:
                break
    except FileRefused as exc:
        raise refuse(source.name, str(exc).rstrip(".")) from None
    if not rows:
        raise refuse(source.name, "the first sheet of the workbook is empty")
    header = [str(v) for v in rows[0]]
    body = [r[: len(header)] + [""] * (len(header) - len(r)) for r in rows[1:]]
    while body and all(v == "" for v in body[-1]):
        body.pop()
    frame = pd.DataFrame(body, columns=header, dtype=object)
    refuse_error_cells(source.name, frame)
    return frame


def refuse_error_cells(file_name: str, frame: pd.DataFrame) -> None:
    """Refuse a table holding spreadsheet error cells (``#DIV/0!``...), naming each place.

    Rows are numbered as a spreadsheet shows them: the header is row 1.
    """
    problems = []
    for column in frame.columns:
        values = frame[column]
        failed = values.isin(ERROR_CODES)
        for position in failed.to_numpy().nonzero()[0][:MAX_PROBLEMS_SHOWN]:
            value = str(values.iloc[position])
            problems.append(
                Problem(error_reason(value).rstrip("."), sheet_row(position), str(column), value)
            )
    if problems:
        raise ImportRefused(file_name, problems)
