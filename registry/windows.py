"""The one whole-window rule: a change, a rate or a test comes only from whole windows.

A window is whole when every one of its months has a stored count. Crime data usually arrives
after delivery data, so a window running past the latest stored month has a short total that
reads as a fall; anything compared or divided from it would mislead. Every place that reports a
change, a rate or a test (``vru trend``, Overview, Explore, the Models page's trend tab, funder
summaries) asks :func:`is_whole` and, when a window is not whole, gives no figure and says how
many months are stored in the words of :func:`not_given`. For the same reason a page's period
ends by default on :func:`complete_month`, the latest month whose windows are whole for every
measure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import TypeVar, overload

import numpy as np
import pandas as pd

from registry.periods import add_months, month_range, months_between

MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
T = TypeVar("T")
# A window as (first month, last month, months with a stored count).
Stored = tuple[dt.date, dt.date, int]


def month_name(month: dt.date) -> str:
    """``September 2024``: the month as people say it (no locale involved)."""
    return f"{MONTH_NAMES[month.month - 1]} {month.year}"


def months_in(start: dt.date, end: dt.date) -> int:
    """How many months a window from ``start`` to ``end`` (both inclusive) has."""
    return months_between(start, end) + 1


@overload
def is_whole(start: dt.date, end: dt.date, months_stored: int) -> bool: ...


@overload
def is_whole(start: dt.date, end: dt.date, months_stored: np.ndarray) -> np.ndarray: ...


@overload
def is_whole(start: dt.date, end: dt.date, months_stored: pd.Series) -> pd.Series: ...


def is_whole(
    start: dt.date, end: dt.date, months_stored: int | np.ndarray | pd.Series
) -> bool | np.ndarray | pd.Series:
    """Whether every month from ``start`` to ``end`` is stored (elementwise for an array or a
    Series)."""
    return months_stored == months_in(start, end)


def stored_words(start: dt.date, end: dt.date, months_stored: int) -> str:
    """``only 2 of the 12 months to September 2024 are stored`` (lower case, no full stop)."""
    length = months_in(start, end)
    to = f"the {length} months to {month_name(end)}" if length > 1 else month_name(end)
    if months_stored <= 0:
        return f"none of {to} is stored" if length > 1 else f"{to} is not stored"
    if months_stored >= length:
        return f"all of {to} are stored" if length > 1 else f"{to} is stored"
    return f"only {months_stored} of {to} {'is' if months_stored == 1 else 'are'} stored"


def not_given(start: dt.date, end: dt.date, months_stored: int, what: str = "change") -> str:
    """``Only 2 of the 12 months to September 2024 are stored: no change is given.``"""
    words = stored_words(start, end, months_stored)
    return f"{words[0].upper()}{words[1:]}: no {what} is given."


def part_stored(windows: Iterable[Stored], what: str = "change") -> list[str]:
    """The :func:`not_given` sentence of each window that is not whole (empty when all are)."""
    return [not_given(s, e, m, what) for s, e, m in windows if not is_whole(s, e, m)]


def whole_only(value: T, windows: Iterable[Stored]) -> T | None:
    """``value`` when every window is whole, otherwise ``None`` (no figure at all)."""
    return value if all(is_whole(s, e, m) for s, e, m in windows) else None


def complete_month(held: Iterable[Collection[dt.date]], months: int = 12) -> dt.date | None:
    """Where a page's default window ends: the latest month at which every measure's
    ``months``-month window ending there is whole, given each measure's months with a stored
    count; ``None`` when there is no measure or one has no whole window at all. Crime data
    usually stops before delivery data: a page that opened on the latest delivery month would
    show only part-stored outcome windows.
    """
    ends = [_latest_whole_end(set(months_held), months) for months_held in held]
    return None if not ends or None in ends else min(e for e in ends if e is not None)


def _latest_whole_end(held: set[dt.date], months: int) -> dt.date | None:
    for end in sorted(held, reverse=True):
        start = add_months(end, 1 - months)
        if is_whole(start, end, sum(m in held for m in month_range(start, end))):
            return end
    return None
