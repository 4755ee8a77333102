"""Trend windows against hand-computed totals, exact intervals, sensitivity table, STL."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats
from sqlalchemy import select
from statsmodels.stats.multitest import multipletests

from registry import db
from registry.analysis.trends import (
    baseline_sensitivity,
    borough_changes,
    change_interval,
    compare_windows,
    history_dispersion,
    monthly_series,
    overdispersed_interval,
    rolling_totals,
    stl_decompose,
    trend_change,
)
from registry.cli import cli
from registry.errors import PermissionDenied, RegistryError
from registry.periods import month_range
from registry.schema import Borough, ImportBatch, OutcomeCount, OutcomeMeasure
from tests.analysis_db import load_small
from tests.conftest import ADMIN, COMMISSIONER, FUNDER


@pytest.fixture
def small_url(db_url: str) -> str:
    load_small(db_url)
    return db_url


def _trend(url: str, *args: str):
    return CliRunner().invoke(cli, ["--database-url", url, "trend", *args], catch_exceptions=False)


def _exact(current: int, baseline: int) -> tuple[float, float]:
    n = current + baseline
    p_low = stats.beta.ppf(0.025, current, n - current + 1)
    p_high = stats.beta.ppf(0.975, current + 1, n - current)
    return p_low / (1 - p_low) - 1, p_high / (1 - p_high) - 1


def test_london_window_crossing_a_year_by_hand(small_url: str) -> None:
    # Current 2021-09..2022-02: Camden 9+10+11+12+1+2 = 45, Hackney 6 x 2 = 12, unallocated 6.
    # Baseline 2021-03..2021-08: Camden 3+4+5+6+7+8 = 33, Hackney 12, unallocated 6.
    result = _trend(
        small_url,
        "--measure",
        "homicide",
        "--end",
        "2022-02",
        "--baseline-end",
        "2021-08",
        "--window",
        "6",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    low, high = _exact(63, 51)
    assert data == {
        "measure": "homicide",
        "area": "London",
        "window_months": 6,
        "current": {
            "start": "2021-09",
            "end": "2022-02",
            "count": 63,
            "unallocated": 6,
            "months_stored": 6,
        },
        "baseline": {
            "start": "2021-03",
            "end": "2021-08",
            "count": 51,
            "unallocated": 6,
            "months_stored": 6,
        },
        "change_pct": 23.5,
        "ci_low": round(100 * low, 1),
        "ci_high": round(100 * high, 1),
        "p_value": pytest.approx(stats.binomtest(63, 114, 0.5).pvalue),
        "series_breaks": [],
        # Two years of history hold no year-on-year pair of whole windows before 2021-09.
        "overdispersion": {
            "dispersion": None,
            "year_pairs": 0,
            "ci_low": None,
            "ci_high": None,
            "p_value": None,
        },
    }


def test_borough_window_has_no_unallocated(small_url: str) -> None:
    engine = db.make_engine(small_url)
    with db.session_scope(engine) as s:
        change = trend_change(
            s,
            principal=COMMISSIONER,
            measure="homicide",
            end=dt.date(2022, 2, 1),
            baseline_end=dt.date(2021, 8, 1),
            window=6,
            borough="camden",
        )
    engine.dispose()
    assert change.area == "Camden"
    assert (change.current.count, change.baseline.count) == (45, 33)
    assert change.current.unallocated == change.baseline.unallocated == 0
    assert change.change == pytest.approx(12 / 33)


def test_window_with_a_missing_month_gives_no_change_and_says_so(small_url: str) -> None:
    # Current 2021-07..2022-06 without 2022-03: Camden 7+..+12 + 1+2+4+5+6 = 75, Hackney 11 x 2
    # = 22, unallocated 11. Baseline 2020-07..2021-06 holds only 2021-01..06: 21 + 12 + 6 = 39.
    result = _trend(
        small_url,
        "--measure",
        "homicide",
        "--end",
        "2022-06",
        "--baseline-end",
        "2021-06",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["current"] == {
        "start": "2021-07",
        "end": "2022-06",
        "count": 108,
        "unallocated": 11,
        "months_stored": 11,
    }
    assert data["baseline"] == {
        "start": "2020-07",
        "end": "2021-06",
        "count": 39,
        "unallocated": 6,
        "months_stored": 6,
    }
    # Totals as stored, but no change, interval or test from part-stored windows.
    assert [data[k] for k in ("change_pct", "ci_low", "ci_high", "p_value")] == [None] * 4
    assert "Only 11 of the 12 months to June 2022 are stored: no change is given." in result.stderr
    assert "Only 6 of the 12 months to June 2021 are stored: no change is given." in result.stderr


def test_trend_refusals_are_one_line(small_url: str) -> None:
    empty = _trend(
        small_url, "--measure", "homicide", "--end", "2023-06", "--baseline-end", "2019-06"
    )
    assert empty.exit_code == 1
    assert empty.stderr.startswith("Error: No homicide counts are stored for London")
    unknown = _trend(
        small_url, "--measure", "arson", "--end", "2023-06", "--baseline-end", "2022-06"
    )
    assert unknown.exit_code == 1 and "There is no outcome measure 'arson'" in unknown.stderr
    bad = _trend(
        small_url, "--measure", "homicide", "--end", "2023-13", "--baseline-end", "2022-06"
    )
    assert bad.exit_code == 2


def test_missing_month_totals_by_hand() -> None:
    months = [
        m for m in month_range(dt.date(2021, 1, 1), dt.date(2023, 6, 1)) if m != dt.date(2022, 3, 1)
    ]
    series = pd.DataFrame(
        {
            "month": months,
            "boroughs": [m.month + 2 for m in months],
            "unallocated": [1] * len(months),
        }
    )
    series["count"] = series["boroughs"] + series["unallocated"]
    change = compare_windows(
        series,
        measure="homicide",
        area="London",
        end=dt.date(2022, 6, 1),
        baseline_end=dt.date(2021, 6, 1),
        months=6,
    )
    # Current 2022-01..06 without March: (1+2+4+5+6) + 5 x 2 + 5 x 1 = 33; baseline 2021-01..06:
    # 21 + 12 + 6 = 39.
    assert change.current.count == 33 and change.current.months_with_data == 5
    assert change.baseline.count == 39 and change.baseline.months_with_data == 6
    assert change.current.unallocated == 5
    assert change.caveats == [
        "The current window: Only 5 of the 6 months to June 2022 are stored: no change is given."
    ]
    assert not change.given and math.isnan(change.change) and math.isnan(change.p_value)


def test_rolling_totals_do_not_treat_a_missing_month_as_zero() -> None:
    months = [
        m
        for m in month_range(dt.date(2021, 1, 1), dt.date(2022, 12, 1))
        if m != dt.date(2022, 3, 1)
    ]
    series = pd.DataFrame({"month": months, "count": [1] * len(months)})
    rolled = rolling_totals(series).set_index("month")["rolling_12"]
    assert rolled[dt.date(2021, 12, 1)] == 12
    assert rolled[dt.date(2022, 2, 1)] == 12
    assert math.isnan(rolled[dt.date(2022, 3, 1)])
    assert math.isnan(rolled[dt.date(2022, 12, 1)])  # still includes March 2022
    assert math.isnan(rolled[dt.date(2021, 11, 1)])  # not 12 months yet


def test_exact_interval_matches_clopper_pearson_and_rejects_zero_baseline() -> None:
    change, low, high, p = change_interval(30, 50)
    assert change == pytest.approx(-0.4)
    assert (low, high) == pytest.approx(_exact(30, 50))
    assert p == pytest.approx(stats.binomtest(30, 80, 0.5).pvalue)
    _, low0, _, _ = change_interval(0, 5)
    assert low0 == pytest.approx(-1.0)
    with pytest.raises(RegistryError, match="baseline window has a total of 0"):
        change_interval(4, 0)


def test_overlapping_windows_are_refused() -> None:
    series = pd.DataFrame(
        {
            "month": month_range(dt.date(2021, 1, 1), dt.date(2022, 12, 1)),
            "count": 1,
            "unallocated": 0,
        }
    )
    with pytest.raises(RegistryError, match="must end before the current window starts"):
        compare_windows(
            series,
            measure="m",
            area="London",
            end=dt.date(2022, 12, 1),
            baseline_end=dt.date(2022, 6, 1),
            months=12,
        )


def test_baseline_sensitivity_lists_every_baseline_year_and_length() -> None:
    months = month_range(dt.date(2018, 1, 1), dt.date(2023, 12, 1))
    series = pd.DataFrame(
        {"month": months, "count": [100 if m.year < 2021 else 80 for m in months], "unallocated": 0}
    )
    table = baseline_sensitivity(series, end=dt.date(2023, 12, 1), window_lengths=(12, 24))
    twelve = table[table["window_months"] == 12]
    assert [d.year for d in twelve["baseline_end"]] == [2022, 2021, 2020, 2019, 2018]
    assert twelve.set_index(twelve["baseline_end"].map(lambda d: d.year))["change"][
        2019
    ] == pytest.approx(-0.2)
    assert twelve.set_index(twelve["baseline_end"].map(lambda d: d.year))["change"][
        2022
    ] == pytest.approx(0.0)
    twenty_four = table[table["window_months"] == 24]
    assert [d.year for d in twenty_four["baseline_end"]] == [2021, 2020, 2019]
    assert set(table.columns) >= {"ci_low", "ci_high", "baseline_start", "current_count"}


def test_stl_recovers_the_seasonal_shape() -> None:
    months = month_range(dt.date(2018, 1, 1), dt.date(2022, 12, 1))
    season = [10 * math.cos(2 * math.pi * (m.month - 7) / 12) for m in months]
    series = pd.DataFrame({"month": months, "count": [100 + s for s in season]})
    parts = stl_decompose(series)
    assert np.allclose(parts["trend"] + parts["seasonal"] + parts["resid"], parts["observed"])
    july = parts[[m.month == 7 for m in parts["month"]]]["seasonal"]
    assert july.mean() == pytest.approx(10, abs=1.5)
    with pytest.raises(RegistryError, match="at least 24 months"):
        stl_decompose(series.head(20))


def test_monthly_series_needs_outcomes_read(small_url: str) -> None:
    engine = db.make_engine(small_url)
    with db.session_scope(engine) as s:
        with pytest.raises(PermissionDenied):
            monthly_series(s, principal=FUNDER, measure="homicide")
        london = monthly_series(s, principal=ADMIN, measure="homicide")
    engine.dispose()
    assert len(london) == 29  # 30 months less the missing one
    first = london.iloc[0]
    assert (first["boroughs"], first["unallocated"], first["count"]) == (3, 1, 4)


def test_borough_changes_are_corrected_for_multiple_comparisons(small_url: str) -> None:
    engine = db.make_engine(small_url)
    with db.session_scope(engine) as s:
        table = borough_changes(  # 2022-07..12 against 2021-07..12: every month stored
            s,
            principal=COMMISSIONER,
            measure="homicide",
            end=dt.date(2022, 12, 1),
            baseline_end=dt.date(2021, 12, 1),
            window=6,
        )
        # 2022 lacks March (load_small stores nothing for 2022-03): listed, not tested.
        part = borough_changes(
            s,
            principal=COMMISSIONER,
            measure="homicide",
            end=dt.date(2022, 12, 1),
            baseline_end=dt.date(2021, 12, 1),
        )
    engine.dispose()
    # Every borough has a row; those untested say why (issue #14.6: untested boroughs named).
    assert len(table) == 33
    tested = table[table["tested"]]
    assert list(tested["borough"]) == ["Camden", "Hackney"]
    assert set(table.loc[~table["tested"], "not_tested_because"]) == {"no counts stored"}
    assert (tested["p_adjusted"] >= tested["p_value"]).all()
    assert table["significant"].dtype == bool
    stored = part[part["borough"].isin(["Camden", "Hackney"])]
    assert list(stored["current_months"]) == [11, 11]
    assert set(stored["not_tested_because"]) == {"a window only partly stored"}
    assert not part["tested"].any() and not part["significant"].any()
    assert part["p_adjusted"].isna().all()


def test_readme_states_the_definitions_word_for_word() -> None:
    from pathlib import Path

    from registry.analysis import DEFINITIONS

    readme = " ".join((Path(__file__).parent.parent / "README.md").read_text().split())
    for definition in DEFINITIONS:
        assert f"- {definition}" in readme


def test_trend_report_for_london(small_url: str) -> None:
    from registry.analysis.trends import trend_report

    engine = db.make_engine(small_url)
    with db.session_scope(engine) as s:
        report = trend_report(
            s,
            principal=COMMISSIONER,
            measure="homicide",
            end=dt.date(2023, 6, 1),
            baseline_end=dt.date(2022, 6, 1),
        )
    engine.dispose()
    assert report.change.area == "London"
    reasons = report.boroughs.set_index("borough")["not_tested_because"]
    assert reasons["Camden"] == reasons["Hackney"] == "a window only partly stored"
    assert not report.boroughs["tested"].any()
    assert report.seasonal is None  # March 2022 is missing: no decomposition over a gap
    # Complete 12-month windows end 2021-12..2022-02 (3) and 2023-03..2023-06 (4).
    complete = report.series.loc[report.series["rolling_12"].notna(), "month"]
    assert [m.isoformat()[:7] for m in complete] == [
        "2021-12",
        "2022-01",
        "2022-02",
        "2023-03",
        "2023-04",
        "2023-05",
        "2023-06",
    ]


def _yearly(totals: list[int], first_year: int = 2018) -> pd.DataFrame:
    """Monthly counts whose calendar-year totals are ``totals`` (spread evenly, remainder in
    December)."""
    rows = []
    for i, total in enumerate(totals):
        for m in range(1, 13):
            share = total // 12 + (total % 12 if m == 12 else 0)
            rows.append((dt.date(first_year + i, m, 1), share))
    return pd.DataFrame(rows, columns=["month", "count"]).assign(unallocated=0)


def test_dispersion_comes_from_the_series_own_year_on_year_history() -> None:
    series = _yearly([100, 120, 90, 110, 80])
    dispersion, pairs = history_dispersion(series, before=dt.date(2022, 1, 1), months=12)
    by_hand = [(110 - 90) ** 2 / 200, (90 - 120) ** 2 / 210, (120 - 100) ** 2 / 220]
    assert pairs == 3 and dispersion == pytest.approx(sum(by_hand) / 3)
    # Steady years vary less than Poisson: the dispersion is never below 1.
    assert history_dispersion(_yearly([100] * 5), before=dt.date(2022, 1, 1), months=12)[0] == 1
    # Too short a history leaves it unestimated.
    assert math.isnan(history_dispersion(series, before=dt.date(2020, 1, 1), months=12)[0])
    change = compare_windows(
        series,
        measure="m",
        area="London",
        end=dt.date(2022, 12, 1),
        baseline_end=dt.date(2021, 12, 1),
    )
    assert change.dispersion == pytest.approx(dispersion) and change.dispersion_pairs == 3
    assert change.od_ci_low < change.ci_low and change.od_ci_high > change.ci_high
    assert change.od_p_value > change.p_value


def test_overdispersed_interval_scales_the_poisson_variance() -> None:
    low1, high1, _ = overdispersed_interval(80, 100, 1.0, 1000)
    low4, high4, _ = overdispersed_interval(80, 100, 4.0, 1000)
    se = math.sqrt(1 / 80 + 1 / 100)
    assert math.log(1 + low1) == pytest.approx(math.log(0.8) - 1.96 * se, abs=1e-3)
    # Four times the variance: twice the width on the log scale.
    width1 = math.log((1 + high1) / (1 + low1))
    assert math.log((1 + high4) / (1 + low4)) == pytest.approx(2 * width1)
    assert all(math.isnan(v) for v in overdispersed_interval(5, 0, 2.0, 5))


def test_a_zero_baseline_is_tested_and_counted_in_holm(small_url: str) -> None:
    """Sutton: 5 homicides against none. Dropping it would shrink Holm's family silently."""
    engine = db.make_engine(small_url)
    with db.session_scope(engine) as s:
        sutton = s.scalar(select(Borough.id).where(Borough.name == "Sutton"))
        measure = s.scalar(select(OutcomeMeasure.id).where(OutcomeMeasure.code == "homicide"))
        batch = ImportBatch(kind="test", created_by="test")
        s.add(batch)
        s.flush()
        for month in month_range(dt.date(2021, 7, 1), dt.date(2022, 12, 1)):
            count = 1 if month >= dt.date(2022, 8, 1) else 0
            s.add(
                OutcomeCount(
                    measure_id=measure,
                    source="long",
                    borough_id=sutton,
                    month=month,
                    count=count,
                    import_batch_id=batch.id,
                )
            )
        table = borough_changes(
            s,
            principal=COMMISSIONER,
            measure="homicide",
            end=dt.date(2022, 12, 1),
            baseline_end=dt.date(2021, 12, 1),
            window=6,
        )
    engine.dispose()
    row = table.set_index("borough").loc["Sutton"]
    assert row["tested"] and (row["current"], row["baseline"]) == (5, 0)
    assert row["p_value"] == pytest.approx(2 * 0.5**5)
    low = 0.025**0.2  # Clopper-Pearson lower limit for 5 of 5
    assert math.isinf(row["change"]) and row["ci_low"] == pytest.approx(low / (1 - low) - 1)
    tested = table[table["tested"]]
    assert set(tested["borough"]) == {"Camden", "Hackney", "Sutton"}
    _, adjusted, _, _ = multipletests(tested["p_value"], method="holm")
    assert list(tested["p_adjusted"]) == pytest.approx(list(adjusted))
    result = _trend(
        small_url,
        "--measure",
        "homicide",
        "--end",
        "2022-12",
        "--baseline-end",
        "2021-12",
        "--window",
        "6",
    )
    assert "Holm's correction for 3 tests" in result.stdout
    assert "Not tested, no counts stored: City of London, Barking and Dagenham" in result.stdout
