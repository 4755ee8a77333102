"""Months, quarters, financial years and rolling windows."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from registry import periods as p


def test_parse_and_format_month() -> None:
    assert p.parse_month("2023-04") == dt.date(2023, 4, 1)
    assert p.parse_month(" 2023-12 ") == dt.date(2023, 12, 1)
    assert p.format_month(dt.date(2023, 4, 17)) == "2023-04"
    assert p.parse_compact_month("201904") == dt.date(2019, 4, 1)


@pytest.mark.parametrize(
    "bad", ["2023-13", "2023-00", "23-04", "2023/04", "April 2023", "", "2023-4", "0001-01"]
)
def test_bad_months_are_refused_with_the_expected_form(bad: str) -> None:
    with pytest.raises(p.PeriodError) as info:
        p.parse_month(bad)
    assert bad.strip() in str(info.value) or repr(bad) in str(info.value)


def test_add_months_across_years() -> None:
    assert p.add_months(dt.date(2023, 11, 1), 3) == dt.date(2024, 2, 1)
    assert p.add_months(dt.date(2023, 1, 1), -1) == dt.date(2022, 12, 1)
    assert p.months_between(dt.date(2022, 12, 1), dt.date(2024, 2, 1)) == 14
    assert len(p.month_range(dt.date(2022, 12, 1), dt.date(2023, 11, 1))) == 12
    assert p.month_range(dt.date(2023, 2, 1), dt.date(2023, 1, 1)) == []


def test_quarters_and_financial_years() -> None:
    assert p.quarter_label(dt.date(2023, 4, 1)) == "2023 Q2"
    assert p.quarter_start(dt.date(2023, 12, 1)) == dt.date(2023, 10, 1)
    assert p.financial_year_label(dt.date(2023, 4, 1)) == "2023-24"
    assert p.financial_year_label(dt.date(2024, 3, 1)) == "2023-24"
    assert p.financial_year_label(dt.date(2000, 1, 1)) == "1999-00"
    window = p.financial_year_window("2023/24")
    assert (window.start, window.end, window.months) == (
        dt.date(2023, 4, 1),
        dt.date(2024, 3, 1),
        12,
    )
    assert p.financial_year_window("2023-2024") == window
    with pytest.raises(p.PeriodError):
        p.financial_year_window("2023-25")


def test_rolling_window() -> None:
    window = p.rolling_window(dt.date(2024, 3, 1))
    assert window.start == dt.date(2023, 4, 1) and window.months == 12
    assert window.label() == "2023-04 to 2024-03"
    assert window.contains(dt.date(2023, 4, 1)) and not window.contains(dt.date(2023, 3, 1))
    assert p.rolling_window(dt.date(2024, 3, 1), 1).start == dt.date(2024, 3, 1)
    with pytest.raises(p.PeriodError):
        p.rolling_window(dt.date(2024, 3, 1), 0)
    assert p.last_complete_month(dt.date(2026, 1, 15)) == dt.date(2025, 12, 1)


@pytest.mark.parametrize(
    "value",
    [
        dt.date(2024, 3, 1),
        dt.datetime(2024, 3, 1, 12, 30),
        "2024-03-01",
        "2024-03-01 00:00:00.000000",
    ],
)
def test_as_date_reads_what_either_driver_returns_for_a_date_column(value: object) -> None:
    assert p.as_date(value) == dt.date(2024, 3, 1)
    assert type(p.as_date(value)) is dt.date


def test_a_period_ending_before_it_starts_is_refused_in_one_wording() -> None:
    p.check_period(dt.date(2023, 6, 1), dt.date(2023, 6, 1))
    wording = "The period ends (2023-01) before it starts (2023-06)."
    with pytest.raises(p.PeriodError, match=re.escape(wording)):
        p.check_period(dt.date(2023, 6, 1), dt.date(2023, 1, 1))
    with pytest.raises(p.PeriodError, match=re.escape(wording)):
        p.Window(dt.date(2023, 6, 1), dt.date(2023, 1, 1)).check()


def test_month_index_round_trips_and_drives_the_arithmetic() -> None:
    for month in (dt.date(1999, 12, 1), dt.date(2024, 1, 1), dt.date(2024, 2, 1)):
        assert p.index_month(p.month_index(month)) == month
    assert p.month_index(dt.date(2024, 1, 1)) - p.month_index(dt.date(2023, 12, 1)) == 1
    assert p.months_between(dt.date(2023, 11, 1), dt.date(2024, 2, 1)) == 3
