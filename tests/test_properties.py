"""Property-based tests: any input is accepted or refused with a message, never a traceback."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from registry import boroughs, periods

# Slow lane: property-based (hypothesis); `make test-fast` leaves it out.
pytestmark = pytest.mark.slow

ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)


@given(ANY_TEXT)
@example("Kensington & Chelsea\u00a0")
@example("E09000034")
@example("")
@settings(max_examples=400, deadline=None)
def test_borough_lookup_accepts_or_explains(value: str) -> None:
    try:
        found = boroughs.lookup(value)
    except boroughs.UnknownBoroughError as exc:
        assert "is not a London borough" in str(exc) and "Accepted" in str(exc)
    else:
        assert found in boroughs.BOROUGHS
        assert boroughs.lookup(found.gss_code) == found


@given(
    st.sampled_from(boroughs.BOROUGHS),
    st.sampled_from([str.upper, str.lower, str.title]),
    st.text(alphabet=" \u00a0\t", max_size=3),
    st.text(alphabet=" \u00a0\t", max_size=3),
)
def test_any_case_and_padding_of_a_real_name_is_found(b, case, left, right) -> None:
    assert boroughs.lookup(left + case(b.name) + right) == b
    assert boroughs.lookup(left + case(b.name.replace(" and ", " & ")) + right) == b


@given(ANY_TEXT)
@example("2023-13")
@example("0000-01")
@example("\uff12\uff10\uff12\uff13-04")
@settings(max_examples=400, deadline=None)
def test_month_parser_accepts_or_explains(value: str) -> None:
    try:
        month = periods.parse_month(value)
    except periods.PeriodError as exc:
        assert repr(value) in str(exc) or value in str(exc)
    else:
        assert month.day == 1 and periods.format_month(month) == value.strip()


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2199, 12, 31)))
def test_month_round_trip_and_financial_year(day: dt.date) -> None:
    month = periods.month_start(day)
    assert periods.parse_month(periods.format_month(month)) == month
    window = periods.financial_year_window(periods.financial_year_label(month))
    assert window.contains(month) and window.months == 12


@given(ANY_TEXT)
def test_financial_year_parser_accepts_or_explains(value: str) -> None:
    try:
        window = periods.financial_year_window(value)
    except periods.PeriodError as exc:
        assert "financial year" in str(exc)
    else:
        assert window.start.month == 4 and window.months == 12


@given(
    st.dates(min_value=dt.date(1901, 1, 1), max_value=dt.date(2190, 1, 1)),
    st.integers(min_value=-1200, max_value=1200),
)
def test_add_months_is_consistent(day: dt.date, n: int) -> None:
    month = periods.month_start(day)
    moved = periods.add_months(month, n)
    assert periods.months_between(month, moved) == n
    if n >= 0:
        assert len(periods.month_range(month, moved)) == n + 1
