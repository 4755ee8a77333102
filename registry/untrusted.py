"""Reading files nobody vouches for: limits checked while streaming, and parsing in a child process.

Every uploaded or imported file (delivery spreadsheets, crime and population files) passes
through here before anything is held whole:

- **Text files** (CSV): no NUL byte anywhere (a NUL once turned ``10`` into ``1`` silently), and
  no more columns than :attr:`Limits.max_columns`, counted from the header before pandas reads a
  cell.
- **Workbooks** (XLSX): the zip's declared sizes are added up before anything is decompressed
  (:attr:`Limits.max_unzipped_bytes`; Python's zip reader never returns more than an entry
  declares), every XML part is refused if it carries a DTD or entity (Excel never writes one;
  billion-laughs and external-entity attacks need one), and each sheet's declared dimension
  (``A1:XFD300001``) is checked against the row and column limits before a row is read. Rows are
  then streamed in read-only mode, counted and measured as they come.
- **Spreadsheet error cells** (``#DIV/0!``, ``#REF!``...) are named with their place, not passed on
  as text for a later check to misread.
- **The parse itself** runs in a child process (:func:`run_limited`) whose address space and CPU
  time are capped (``resource.setrlimit``) and which is killed after a wall-clock limit, so a
  hostile file costs that child, never the server that serves everyone's pages.

A refusal is a :class:`FileRefused` whose message says in plain words what is wrong and what to do.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import re
import resource
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerProcess, set_spawning_popen
from typing import IO, Any, TypeVar

from registry.config import Settings, get_settings
from registry.errors import RegistryError

log = logging.getLogger("vru.untrusted")
T = TypeVar("T")

# What a spreadsheet writes into a cell whose formula failed.
ERROR_CODES = frozenset(
    ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#GETTING_DATA")
)
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="([A-Z]+)?(\d+)?(?::([A-Z]+)(\d+))?"')
_PROLOG_BYTES = 64 * 1024  # a DTD comes before the root element; a dimension before sheetData
_MAX_ZIP_ENTRIES = 10_000


class FileRefused(RegistryError):
    """A file refused before or while it was read; nothing was imported."""


@dataclass(frozen=True)
class Limits:
    """What one file may be: size, shape, and what parsing it may cost. Passed to the child
    process explicitly, so it never depends on the child's copy of the environment."""

    max_bytes: int
    max_rows: int
    max_columns: int
    max_unzipped_bytes: int
    memory_mb: int
    seconds: int

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Limits:
        s = settings or get_settings()
        return cls(
            max_bytes=s.max_upload_bytes,
            max_rows=s.max_upload_rows,
            max_columns=s.max_upload_columns,
            max_unzipped_bytes=s.max_unzipped_bytes,
            memory_mb=s.parse_memory_mb,
            seconds=s.parse_seconds,
        )


_active: Limits | None = None  # set in the child process of run_limited


def current_limits() -> Limits:
    """The limits of the file being read: those given to this child process, else the settings."""
    return _active or Limits.from_settings()


def column_letter(position: int) -> str:
    """The spreadsheet letter of a 0-based column position (0 -> A, 26 -> AA)."""
    letters = ""
    position += 1
    while position:
        position, rem = divmod(position - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _column_number(letters: str) -> int:
    number = 0
    for ch in letters:
        number = number * 26 + ord(ch) - 64
    return number


# --- text ------------------------------------------------------------------------------------


def check_no_nul(stream: IO[bytes], chunk: int = 1 << 20) -> None:
    """Refuse a text file holding a NUL byte anywhere, saying where the first one is."""
    offset = 0
    line = 1
    while block := stream.read(chunk):
        at = block.find(b"\x00")
        if at >= 0:
            line += block.count(b"\n", 0, at)
            raise FileRefused(
                f"The file holds a NUL byte (a zero byte) at byte {offset + at:,}, on line "
                f"{line:,}: it is not plain text, or it was damaged. Save it again as "
                "'CSV UTF-8 (Comma delimited)' and upload that."
            )
        offset += len(block)
        line += block.count(b"\n")


def check_header_columns(first_line: str, limits: Limits) -> None:
    """Refuse a CSV whose header row has more columns than the limit (counted before parsing)."""
    import csv

    row = next(csv.reader([first_line]), [])
    if len(row) > limits.max_columns:
        raise FileRefused(
            f"The first row has {len(row):,} columns; the limit is {limits.max_columns:,}. "
            "Remove the extra columns (often empty ones after the data) and save again."
        )


_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def ragged_row(exc: Exception) -> tuple[int, int, int] | None:
    """From pandas' complaint about a CSV row wider than the header: the header's width, the
    row's line number and its width; ``None`` for any other complaint."""
    match = _RAGGED.search(str(exc))
    if match is None:
        return None
    expected, line, saw = (int(g) for g in match.groups())
    return expected, line, saw


def first_line(text: str) -> str:
    """The header row of CSV text (up to its first line break; quotes in headers are rare)."""
    end = text.find("\n")
    return text if end < 0 else text[:end]


def error_reason(value: str) -> str:
    return (
        f"This cell holds the spreadsheet error {value.strip()} (a formula that failed), not a "
        "figure: fix the formula in the original sheet, or type the figure, and save again."
    )


# --- workbooks -------------------------------------------------------------------------------


def check_xlsx(content: bytes, limits: Limits) -> None:
    """Check a workbook's zip, XML and declared sheet sizes before any of it is parsed."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise FileRefused(
            "The file is not a readable XLSX workbook; save it again from Excel."
        ) from None
    if len(entries) > _MAX_ZIP_ENTRIES:
        raise FileRefused(
            f"The workbook holds {len(entries):,} parts; a spreadsheet has a few dozen. It is "
            "not an ordinary Excel file."
        )
    unzipped = sum(e.file_size for e in entries)
    if unzipped > limits.max_unzipped_bytes:
        raise FileRefused(
            f"The workbook unpacks to {unzipped:,} bytes; the limit is "
            f"{limits.max_unzipped_bytes:,}. Split it into smaller files, or save it as CSV."
        )
    for entry in entries:
        if not entry.filename.endswith((".xml", ".rels", ".vml")):
            continue
        try:
            with archive.open(entry) as part:
                prolog = part.read(_PROLOG_BYTES)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            raise FileRefused(
                f"Part {entry.filename} of the workbook is damaged; save it again from Excel."
            ) from None
        if _DTD.search(prolog):
            raise FileRefused(
                f"Part {entry.filename} of the workbook declares a DTD or XML entities, which "
                "Excel never writes (they are used to attack XML readers). Save the sheet again "
                "from Excel, or as CSV."
            )
        if entry.filename.startswith("xl/worksheets/"):
            _check_dimension(prolog, limits)
            _count_rows(archive, entry, limits)


def _check_dimension(prolog: bytes, limits: Limits) -> None:
    found = _DIMENSION.search(prolog)
    if not found:
        return  # no declared size: the rows are counted as they are read
    first_col, first_row, last_col, last_row = found.groups()
    last_col = last_col or first_col
    last_row = last_row or first_row
    if last_col is None or last_row is None:
        return
    columns, rows = _column_number(last_col.decode()), int(last_row)
    if rows > limits.max_rows + 1 or columns > limits.max_columns:
        ref = found.group(0).split(b'"')[1].decode()
        raise FileRefused(
            f"The sheet declares {rows:,} rows and {columns:,} columns ({ref}); the limits are "
            f"{limits.max_rows:,} data rows and {limits.max_columns:,} columns. If your data is "
            "smaller, Excel has recorded formatting far beyond it: delete the empty rows and "
            "columns after the data and save again."
        )


_ROW_TAG = re.compile(rb"<(?:\w+:)?row[\s>/]")


def _count_rows(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, limits: Limits) -> None:
    """Count a sheet's rows in its decompressed XML, a block at a time, before any parsing:
    a sheet whose declared size is missing or false is caught here in a fraction of a second,
    where parsing it row by row would take minutes."""
    rows, carry = 0, b""
    with archive.open(entry) as part:
        while block := part.read(1 << 20):
            data = carry + block
            # A tag may be cut at the block's end: from the last "<" near the end, it waits for
            # the next block (a row tag holds no other "<", so nothing is counted twice).
            cut = data.rfind(b"<", max(0, len(data) - 16))
            cut = len(data) if cut < 0 else cut
            rows += len(_ROW_TAG.findall(data, 0, cut))
            carry = data[cut:]
            if rows > limits.max_rows + 1:
                break
    rows += len(_ROW_TAG.findall(carry))
    if rows > limits.max_rows + 1:
        raise FileRefused(
            f"The sheet has more than {limits.max_rows:,} data rows (the limit). Split it into "
            "smaller files."
        )


def xlsx_rows(content: bytes, limits: Limits) -> Iterator[list[Any]]:
    """The first sheet's rows as lists of values, streamed within the limits.

    :func:`check_xlsx` has already run. The declared dimension is not trusted for reading (a
    wrong one would make openpyxl skip rows), so rows are read as they are and counted here.
    """
    from defusedxml import DefusedXmlException
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except DefusedXmlException:
        raise FileRefused(_HOSTILE_XML) from None
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, IndexError, TypeError):
        raise FileRefused(
            "The file is not a readable XLSX workbook; save it again from Excel."
        ) from None
    try:
        if not workbook.worksheets:
            raise FileRefused("The workbook has no sheet.")
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            if number > limits.max_rows + 1:
                raise FileRefused(
                    f"The sheet has more than {limits.max_rows:,} data rows (the limit). Split "
                    "it into smaller files."
                )
            if len(row) > limits.max_columns:
                raise FileRefused(
                    f"Row {number:,} reaches column {column_letter(len(row) - 1)} "
                    f"({len(row):,} columns); the limit is {limits.max_columns:,}. Delete the "
                    "columns after the data and save again."
                )
            yield list(row)
    except DefusedXmlException:
        raise FileRefused(_HOSTILE_XML) from None
    finally:
        workbook.close()


_HOSTILE_XML = (
    "The workbook holds XML that Excel never writes (a DTD or entity declaration, used to attack "
    "XML readers). Save the sheet again from Excel, or as CSV."
)


# --- the child process ------------------------------------------------------------------------


@dataclass(frozen=True)
class RunStats:
    """What one parse cost: wall time and the child's peak resident memory."""

    what: str
    seconds: float
    peak_rss_bytes: int | None
    outcome: str


def _vm_size() -> int:
    with open("/proc/self/status", encoding="ascii") as status:  # noqa: PTH123
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(
    conn: Connection,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    limits: Limits,
    with_progress: bool,
) -> None:
    """Run ``fn(*args)`` under the limits and send back ``(kind, payload, peak)``."""
    global _active
    _active = limits
    budget = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (_vm_size() + budget, resource.RLIM_INFINITY))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.seconds, resource.RLIM_INFINITY))
    kwargs: dict[str, Any] = {}
    if with_progress:
        kwargs["progress"] = lambda fraction, message: conn.send(("progress", fraction, message))
    try:
        try:
            conn.send(("ok", fn(*args, **kwargs), _peak()))
        except MemoryError:
            conn.send(("memory", None, _peak()))
        except RegistryError as exc:
            conn.send(("refused", exc, _peak()))
    except MemoryError:
        conn.send(("memory", None, _peak()))
    except Exception as exc:  # reported to the parent as a plain refusal, never a traceback
        log.exception("reading a file failed")
        conn.send(("crash", f"{type(exc).__name__}: {str(exc)[:200]}", _peak()))
    finally:
        conn.close()


class _Popen(popen_forkserver.Popen):
    """The fork server's launcher, without re-running the parent's main script in the child.

    multiprocessing asks every child to run the parent's ``__main__`` again (Streamlit's or
    ``vru``'s script, importing most of the app: most of a second per file), and Python 3.11's
    fork server never preloads it (it looks for a ``main_path`` key that is not there). The
    functions run here are importable from the registry, so the child does not need it.
    """

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_path", None)
        prep_data.pop("init_main_from_name", None)
        buf = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            set_spawning_popen(None)
        # typeshed leaves out the private multiprocessing names used below (connect_to_new_process,
        # util.close_fds); they are what popen_forkserver.Popen._launch itself calls.
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
        _parent_w = os.dup(w)
        self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))  # type: ignore[attr-defined]
        with open(w, "wb", closefd=True) as f:  # noqa: PTH123 - a file descriptor
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _Process(ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> _Popen:  # noqa: N802 - multiprocessing's name
        return _Popen(process_obj)


def _context() -> multiprocessing.context.BaseContext:
    """A fork server: children forked from a small single-threaded process that has already
    imported pandas and openpyxl, so a child starts in milliseconds and never inherits the
    server's threads or database connections."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        ["registry.untrusted", "registry.uploads", "registry.outcomes.store"]
    )
    return context


def run_limited(
    fn: Callable[..., T],
    *args: Any,
    limits: Limits,
    what: str,
    progress: Callable[[float, str], None] | None = None,
) -> T:
    """``fn(*args)`` in a child process within ``limits``; its result, or a :class:`FileRefused`.

    ``fn`` must be a module-level function and its arguments picklable. A registry refusal the
    child raises is raised here as it was. With ``progress``, ``fn`` is given a ``progress``
    callback whose calls are relayed to this one.
    """
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    process = _Process(
        target=_child, args=(sender, fn, args, limits, progress is not None), daemon=True
    )
    started = time.monotonic()
    process.start()
    sender.close()
    deadline = started + limits.seconds
    message: tuple[Any, ...] | None = None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not receiver.poll(remaining):
                process.kill()
                _record(what, started, None, "timeout")
                raise FileRefused(
                    f"Reading {what} took longer than {limits.seconds:,} s, the limit, so it was "
                    "stopped. Split it into smaller files."
                )
            try:
                message = receiver.recv()
            except EOFError:
                message = None
                break
            if message[0] != "progress":
                break
            if progress is not None:
                progress(message[1], message[2])
    finally:
        receiver.close()
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()
    if message is None:
        _record(what, started, None, "killed")
        raise FileRefused(
            f"Reading {what} needed more memory or time than an upload may use (limits "
            f"{limits.memory_mb:,} MB, {limits.seconds:,} s), so it was stopped. Split it into "
            "smaller files."
        )
    kind, payload, peak = message
    _record(what, started, peak, kind)
    if kind == "ok":
        return payload
    if kind == "refused":
        raise payload
    if kind == "memory":
        raise FileRefused(
            f"Reading {what} needed more than {limits.memory_mb:,} MB of memory, the limit, so "
            "it was stopped. Split it into smaller files."
        )
    raise FileRefused(f"{what} could not be read ({payload}). Save it again and retry.")


def _record(what: str, started: float, peak: int | None, outcome: str) -> None:
    stats = RunStats(what, time.monotonic() - started, peak, outcome)
    log.info(
        "read %s in %.2f s, peak %s, %s",
        what,
        stats.seconds,
        "unknown" if peak is None else f"{peak / 2**20:.0f} MB",
        outcome,
        extra={"stats": stats},
    )
