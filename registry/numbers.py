"""How figures are written for people, in one place, so pages, CLI text and reports agree.

- counts are whole numbers with thousands separators: ``1,236``;
- rates (per 1,000 or 100,000 people, per month) have one decimal: ``1,234.5``;
- percentages have one decimal, and a change carries its sign: ``6.9%``, ``+6.9%``, ``-6.9%``;
- money is pounds and pence: ``£1,250.50``;
- a missing figure is written as a dash, never ``None``, ``nan`` or ``null``.

The same rules are given as d3 format strings for chart labels and tooltips (``D3``) and as
printf format strings for Streamlit's table columns (``PRINTF``), and :func:`column_kind` says
which rule a table column follows, so a table, a chart and a sentence show one figure alike.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable
from typing import Any, Literal

Kind = Literal["count", "rate", "percent", "change", "money", "plain"]

MISSING = "–"

# d3-format (Vega-Lite) and printf (Streamlit's NumberColumn, sprintf-js) spellings of each rule.
D3: dict[Kind, str] = {
    "count": ",.0f",
    "rate": ",.1f",
    "percent": ",.1f",
    "change": "+,.1f",
    "plain": "d",
}
PRINTF: dict[Kind, str] = {
    "count": "%,d",
    "rate": "%,.1f",
    "percent": "%,.1f%%",
    "change": "%+,.1f",
    "money": "£%,.2f",
    "plain": "%d",
}


def missing(value: Any) -> bool:
    """True for ``None``, pandas' NA and NaN: the figure is not known."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and pd.NA are not equal to themselves
    except TypeError:  # pd.NA refuses to be a bool
        return True


def count(value: Any) -> str:
    """A whole number with thousands separators: ``1,236``."""
    return MISSING if missing(value) else f"{round(float(value)):,}"


def rate(value: Any) -> str:
    """A rate to one decimal, with thousands separators: ``1,234.5``."""
    return MISSING if missing(value) else f"{float(value):,.1f}"


def percent(value: Any) -> str:
    """A percentage (already multiplied by 100) to one decimal: ``6.9%``."""
    return MISSING if missing(value) else f"{float(value):,.1f}%"


def change(value: Any) -> str:
    """A percentage change (already multiplied by 100) with its sign: ``+6.9%``, ``-6.9%``."""
    return MISSING if missing(value) else f"{float(value):+,.1f}%"


def money(value: Any) -> str:
    """Pounds and pence: ``£1,250.50``."""
    return MISSING if missing(value) else f"£{float(value):,.2f}"


def figure(value: Any) -> str:
    """A figure of unknown kind: whole numbers as counts, others as rates."""
    if missing(value):
        return MISSING
    if isinstance(value, numbers.Integral) or float(value).is_integer():
        return count(value)
    return rate(value)


FORMATTERS = {
    "count": count,
    "rate": rate,
    "percent": percent,
    "change": change,
    "money": money,
    "plain": lambda v: MISSING if missing(v) else str(v),
}

# Column names that are labels or codes though they hold numbers, and never take separators.
_PLAIN = re.compile(r"^(id|year|row|col|version|batch|age_min|age_max|gss_code)$|_id$", re.I)
_CHANGE = re.compile(r"change|%|pct|percent", re.I)
_MONEY = re.compile(r"spend|gbp|£|cost", re.I)
_RATE = re.compile(r"rate|per 1,000|per 100,000|per_1000|per_100000|expected|mean", re.I)
# Model statistics keep the precision their page gives them.
_STATISTIC = re.compile(r"estimate|ci_|interval|p_value|p-value|irr|coef|std|statistic", re.I)


def column_kind(name: str, values: Iterable[Any]) -> Kind | None:
    """Which rule a table column follows, from its name and values; ``None`` for text, true or
    false, and model statistics (which keep their own precision)."""
    present = [v for v in values if not missing(v)]
    if present and not all(
        isinstance(v, numbers.Number) and not isinstance(v, bool) for v in present
    ):
        return None
    if _STATISTIC.search(name):
        return None
    if _PLAIN.search(name):
        return "plain"
    if _CHANGE.search(name):
        return "change"
    if _MONEY.search(name):
        return "money"
    if _RATE.search(name):
        return "rate"
    if all(isinstance(v, numbers.Integral) or float(v).is_integer() for v in present):
        return "count"
    return "rate"
