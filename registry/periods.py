"""Months, quarters, UK financial years and rolling windows.

A month is represented everywhere by the ``datetime.date`` of its first day. Financial years run
from April to March and are labelled like ``2023-24``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from registry.errors import RegistryError

_MONTH_RE = re.compile(r"^\s*(\d{4})-(\d{2})\s*$", re.ASCII)
_COMPACT_MONTH_RE = re.compile(r"^\s*(\d{4})(\d{2})\s*$", re.ASCII)
_FY_RE = re.compile(r"^\s*(?:FY\s*)?(\d{4})\s*[-/]\s*(\d{2}|\d{4})\s*$", re.IGNORECASE | re.ASCII)


class PeriodError(RegistryError, ValueError):
    """A month, quarter or financial year that cannot be read; the message says why."""


def as_date(value: object) -> dt.date:
    """A date column's value as a ``date``: drivers return a ``date`` (PostgreSQL), a ``datetime``
    or ISO text (SQLite, under ``func.min`` or a raw column)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _checked(year: int, month: int, original: str) -> dt.date:
    if not 1 <= month <= 12:
        raise PeriodError(f"{original!r} has month {month:02d}; months run from 01 to 12.")
    if not 1900 <= year <= 2200:
        raise PeriodError(f"{original!r} has year {year}, which is not a plausible year.")
    return dt.date(year, month, 1)


def parse_month(value: str) -> dt.date:
    """Read ``YYYY-MM`` (for example ``2023-04``) as the first day of that month."""
    if not isinstance(value, str):
        raise PeriodError(f"{value!r} is not a month; write it as YYYY-MM, for example 2023-04.")
    match = _MONTH_RE.match(value)
    if not match:
        raise PeriodError(f"{value!r} is not a month; write it as YYYY-MM, for example 2023-04.")
    return _checked(int(match.group(1)), int(match.group(2)), value)


def parse_compact_month(value: str) -> dt.date:
    """Read ``YYYYMM`` (the Met's column headers, for example ``202304``)."""
    match = _COMPACT_MONTH_RE.match(str(value))
    if not match:
        raise PeriodError(f"{value!r} is not a month in the form YYYYMM.")
    return _checked(int(match.group(1)), int(match.group(2)), str(value))


def format_month(month: dt.date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def month_index(month: dt.date) -> int:
    """A month as one whole number counting months from year 0, so months compare and subtract
    as integers (vectorised checks use it); :func:`index_month` turns it back."""
    return month.year * 12 + month.month - 1


def index_month(index: int) -> dt.date:
    return dt.date(index // 12, index % 12 + 1, 1)


def add_months(month: dt.date, n: int) -> dt.date:
    return index_month(month_index(month) + n)


def months_between(start: dt.date, end: dt.date) -> int:
    """Whole months from ``start`` to ``end`` (0 when they are the same month)."""
    return month_index(end) - month_index(start)


def month_range(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every month from ``start`` to ``end`` inclusive."""
    if end < start:
        return []
    return [add_months(month_start(start), i) for i in range(months_between(start, end) + 1)]


def check_period(start: dt.date, end: dt.date) -> None:
    """Refuse a period whose end month comes before its start month (the one wording for it)."""
    if end < start:
        raise PeriodError(
            f"The period ends ({format_month(end)}) before it starts ({format_month(start)})."
        )


def quarter_label(month: dt.date) -> str:
    """Calendar quarter, for example ``2023 Q2`` for April to June 2023."""
    return f"{month.year} Q{(month.month - 1) // 3 + 1}"


def quarter_start(month: dt.date) -> dt.date:
    return dt.date(month.year, (month.month - 1) // 3 * 3 + 1, 1)


def financial_year_start(month: dt.date) -> int:
    """The calendar year in which the UK financial year containing ``month`` begins."""
    return month.year if month.month >= 4 else month.year - 1


def financial_year_label(month: dt.date) -> str:
    """UK financial year (April to March): ``2023-24`` for any month from Apr 2023 to Mar 2024."""
    start = financial_year_start(month)
    return f"{start}-{(start + 1) % 100:02d}"


@dataclass(frozen=True)
class Window:
    """N whole months ending with ``end`` (both ends inclusive)."""

    start: dt.date
    end: dt.date

    @property
    def months(self) -> int:
        return months_between(self.start, self.end) + 1

    def contains(self, month: dt.date) -> bool:
        return self.start <= month <= self.end

    def label(self) -> str:
        return f"{format_month(self.start)} to {format_month(self.end)}"

    def check(self) -> None:
        """Refuse this window when it ends before it starts (:func:`check_period`)."""
        check_period(self.start, self.end)


def rolling_window(end: dt.date, months: int = 12) -> Window:
    """The ``months`` whole months ending with ``end``; a rolling 12 months by default."""
    if months < 1:
        raise PeriodError(f"A window needs at least one month, not {months}.")
    end = month_start(end)
    return Window(add_months(end, -(months - 1)), end)


def financial_year_window(label: str) -> Window:
    """The window of a financial year written ``2023-24``, ``2023/24`` or ``2023-2024``."""
    match = _FY_RE.match(label)
    if not match:
        raise PeriodError(f"{label!r} is not a financial year; write it like 2023-24.")
    first = int(match.group(1))
    second = match.group(2)
    expected = first + 1
    if (len(second) == 2 and int(second) != expected % 100) or (
        len(second) == 4 and int(second) != expected
    ):
        raise PeriodError(
            f"{label!r} is not a financial year: the second year must follow the first "
            f"({first}-{expected % 100:02d})."
        )
    return Window(dt.date(first, 4, 1), dt.date(first + 1, 3, 1))


def last_complete_month(today: dt.date | None = None) -> dt.date:
    """The month before the current one: the newest month that can be complete."""
    today = today or dt.date.today()
    return add_months(month_start(today), -1)
