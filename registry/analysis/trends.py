"""Trends: London and borough series, rolling 12-month totals, change against a baseline, STL.

Definitions (stated the same way in the README and on the pages):

- London: every stored count for the measure, boroughs plus London unallocated, so a London total
  matches the publisher's; a borough: that borough's counts only;
- a window: N whole months ending with a stated month; change against a baseline window is
  (current - baseline) / baseline, reported with both windows' start, end and totals.

The interval on a change is exact for counts: conditional on the two windows' total ``n``, the
current count is binomial with ``p = rate_current / (rate_current + rate_baseline)`` (equal
window lengths), so a Clopper-Pearson interval for ``p`` becomes one for the rate ratio
``p / (1 - p)`` and for the change, ratio - 1.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy.orm import Session
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint
from statsmodels.tsa.seasonal import STL

from registry import boroughs
from registry.analysis.result import TrendChange
from registry.analysis.series import (
    LONDON,
    borough_series,
    monthly_series,
    rolling_totals,
    window_total,
)
from registry.auth import Principal
from registry.demo import SYNTHETIC_NOTE, is_synthetic
from registry.errors import RegistryError
from registry.outcomes.measures import series_breaks
from registry.periods import add_months, format_month, month_range


def change_interval(
    current: int, baseline: int, level: float = 0.95
) -> tuple[float, float, float, float]:
    """Change ``(current - baseline) / baseline`` with an exact interval and p-value.

    Two windows of equal length: conditional on ``current + baseline``, ``current`` is binomial
    with ``p = ratio / (1 + ratio)``. The Clopper-Pearson interval for ``p`` maps to the ratio;
    the p-value is the exact binomial test of ``p = 1/2`` (no change).
    """
    if baseline <= 0:
        raise RegistryError(
            "The baseline window has a total of 0, so a change against it is undefined; choose "
            "a longer window or another baseline."
        )
    n = current + baseline
    low, high = proportion_confint(current, n, alpha=1 - level, method="beta")
    ratio_low = low / (1 - low)
    ratio_high = high / (1 - high) if high < 1 else float("inf")
    p_value = float(stats.binomtest(current, n, 0.5).pvalue)
    return (current - baseline) / baseline, ratio_low - 1, ratio_high - 1, p_value


def compare_windows(
    series: pd.DataFrame,
    *,
    measure: str,
    area: str,
    end: dt.date,
    baseline_end: dt.date,
    months: int = 12,
) -> TrendChange:
    """Change of the window ending ``end`` against the window ending ``baseline_end`` (pure).

    Only whole windows are compared: when either is part-stored the change, interval and
    p-value are NaN and a caveat says how many months are stored.
    """
    current = window_total(series, end, months)
    baseline = window_total(series, baseline_end, months)
    if baseline.end >= current.start:
        raise RegistryError(
            f"The baseline window ({format_month(baseline.start)} to "
            f"{format_month(baseline.end)}) must end before the current window starts "
            f"({format_month(current.start)})."
        )
    caveats = []
    for name, w in (("current", current), ("baseline", baseline)):
        if w.months_with_data == 0:
            raise RegistryError(
                f"No {measure} counts are stored for {area} in the {name} window "
                f"({format_month(w.start)} to {format_month(w.end)})."
            )
        if not w.whole:  # the one rule (registry.windows): no change from a part-stored window
            caveats.append(f"The {name} window: {w.not_given()}")
    if caveats:
        nan = float("nan")
        return TrendChange(measure, area, months, current, baseline, nan, nan, nan, nan, caveats)
    change, low, high, p = change_interval(current.count, baseline.count)
    if current.count + baseline.count < 20:
        caveats.append(
            "Small counts: with so few events the interval is wide; read it, not the point."
        )
    return TrendChange(measure, area, months, current, baseline, change, low, high, p, caveats)


def baseline_sensitivity(
    series: pd.DataFrame,
    *,
    end: dt.date,
    window_lengths: Sequence[int] = (6, 12, 24, 36),
    measure: str = "",
    area: str = LONDON,
) -> pd.DataFrame:
    """How the change moves with the baseline year and window length.

    For each window length, every baseline ending in the same calendar month of an earlier year
    (with complete data and not overlapping the current window) gives one row, so a flattering
    baseline cannot be picked unseen.
    """
    rows = []
    for months in window_lengths:
        current = window_total(series, end, months)
        if not current.whole:
            continue
        years = 1
        while True:
            baseline_end = add_months(end, -12 * years)
            years += 1
            baseline = window_total(series, baseline_end, months)
            if baseline.end < series["month"].min():
                break
            if baseline.end >= current.start or not baseline.whole:
                continue
            if baseline.count == 0:
                continue
            change, low, high, p = change_interval(current.count, baseline.count)
            rows.append(
                {
                    "window_months": months,
                    "baseline_start": baseline.start,
                    "baseline_end": baseline.end,
                    "baseline_count": baseline.count,
                    "current_start": current.start,
                    "current_end": current.end,
                    "current_count": current.count,
                    "change": change,
                    "ci_low": low,
                    "ci_high": high,
                    "p_value": p,
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "window_months",
            "baseline_start",
            "baseline_end",
            "baseline_count",
            "current_start",
            "current_end",
            "current_count",
            "change",
            "ci_low",
            "ci_high",
            "p_value",
        ],
    )


def stl_decompose(series: pd.DataFrame, *, period: int = 12, robust: bool = True) -> pd.DataFrame:
    """Seasonal-trend decomposition (statsmodels STL) of a monthly ``count`` series.

    Needs at least two whole years with no month missing.
    """
    full = month_range(series["month"].min(), series["month"].max()) if len(series) else []
    if len(full) < 2 * period:
        raise RegistryError(
            f"A seasonal decomposition needs at least {2 * period} months; the series has "
            f"{len(full)}."
        )
    counts = series.set_index("month")["count"].reindex(full)
    if counts.isna().any():
        gaps = ", ".join(format_month(m) for m in counts[counts.isna()].index[:5])
        raise RegistryError(
            f"The series has months with no stored count ({gaps}); fill them first."
        )
    index = pd.PeriodIndex([pd.Period(m, freq="M") for m in full])
    fit = STL(
        pd.Series(counts.to_numpy(dtype=float), index=index), period=period, robust=robust
    ).fit()
    return pd.DataFrame(
        {
            "month": full,
            "observed": counts.to_numpy(dtype=float),
            "trend": np.asarray(fit.trend),
            "seasonal": np.asarray(fit.seasonal),
            "resid": np.asarray(fit.resid),
        }
    )


def _first_month(end: dt.date, baseline_end: dt.date, window: int) -> dt.date:
    """The first month either window covers (refusing a window of no months)."""
    if window < 1:
        raise RegistryError(f"A window needs at least one month, not {window}.")
    return add_months(min(end, baseline_end), -(window - 1))


def _change(
    series: pd.DataFrame,
    *,
    synthetic: bool,
    measure: str,
    area: str,
    end: dt.date,
    baseline_end: dt.date,
    window: int,
) -> TrendChange:
    change = compare_windows(
        series, measure=measure, area=area, end=end, baseline_end=baseline_end, months=window
    )
    if synthetic:
        change = dataclasses.replace(change, caveats=[SYNTHETIC_NOTE, *change.caveats])
    return change


def with_series_breaks(session: Session, change: TrendChange) -> TrendChange:
    """``change`` with every series break from its baseline's start to its current window's end,
    listed and said in a caveat (the comparison crosses each of them)."""
    breaks = series_breaks(session, change.measure, change.baseline.start, change.current.end)
    return dataclasses.replace(
        change,
        series_breaks=[b.to_dict() for b in breaks],
        caveats=[*change.caveats, *(b.sentence() for b in breaks)],
    )


def trend_change(
    session: Session,
    *,
    principal: Principal,
    measure: str,
    end: dt.date,
    baseline_end: dt.date,
    window: int = 12,
    borough: str | None = None,
) -> TrendChange:
    """``vru trend``: a window's total against a baseline window's, from the database."""
    first = _first_month(end, baseline_end, window)
    series = monthly_series(
        session, principal=principal, measure=measure, borough=borough, start=first, end=end
    )
    change = _change(
        series,
        synthetic=is_synthetic(session),
        measure=measure,
        area=boroughs.lookup(borough).name if borough else LONDON,
        end=end,
        baseline_end=baseline_end,
        window=window,
    )
    return with_series_breaks(session, change)


@dataclass(frozen=True)
class TrendReport:
    """A change against a baseline with what keeps it honest: the baseline-sensitivity table
    and the monthly series (with rolling 12-month totals) it came from."""

    change: TrendChange
    sensitivity: pd.DataFrame
    series: pd.DataFrame
    boroughs: pd.DataFrame | None = None
    seasonal: pd.DataFrame | None = None


def trend_report(
    session: Session,
    *,
    principal: Principal,
    measure: str,
    end: dt.date,
    baseline_end: dt.date,
    window: int = 12,
    borough: str | None = None,
) -> TrendReport:
    """The change of :func:`trend_change`, its baseline-sensitivity table and the series.

    For London it also tests each borough's change, Holm-corrected (:func:`borough_changes`).
    The STL decomposition is included when the series allows one (two whole years, no gaps).
    """
    _first_month(end, baseline_end, window)
    # One series serves the change, the sensitivity table and the rolling totals.
    series = monthly_series(session, principal=principal, measure=measure, borough=borough, end=end)
    change = _change(
        series,
        synthetic=is_synthetic(session),
        measure=measure,
        area=boroughs.lookup(borough).name if borough else LONDON,
        end=end,
        baseline_end=baseline_end,
        window=window,
    )
    change = with_series_breaks(session, change)
    lengths = sorted({6, 12, 24, 36, window})
    sensitivity = baseline_sensitivity(
        series, end=end, window_lengths=lengths, measure=measure, area=change.area
    )
    by_borough = None
    if borough is None:
        by_borough = borough_changes(
            session,
            principal=principal,
            measure=measure,
            end=end,
            baseline_end=baseline_end,
            window=window,
        )
    try:
        seasonal = stl_decompose(series)
    except RegistryError:
        seasonal = None
    return TrendReport(change, sensitivity, rolling_totals(series), by_borough, seasonal)


def borough_changes(
    session: Session,
    *,
    principal: Principal,
    measure: str,
    end: dt.date,
    baseline_end: dt.date,
    window: int = 12,
    method: str = "holm",
) -> pd.DataFrame:
    """Which boroughs changed significantly, corrected for multiple comparisons.

    One exact test per borough (see :func:`change_interval`), then statsmodels
    ``multipletests`` (Holm by default) across the boroughs tested. A borough is tested only when
    every month of both windows has a stored count (``tested``): a part-stored window's total is
    short and would read as a fall. Part-stored boroughs are listed, untested.
    """
    by_borough = borough_series(
        session,
        principal=principal,
        measure=measure,
        start=_first_month(end, baseline_end, window),
        end=end,
    )
    synthetic = is_synthetic(session)
    rows = []
    for info in boroughs.BOROUGHS:
        if info.gss_code not in by_borough:
            continue  # no counts stored (the City in Met data): nothing to test
        try:
            change = _change(
                by_borough[info.gss_code],
                synthetic=synthetic,
                measure=measure,
                area=info.name,
                end=end,
                baseline_end=baseline_end,
                window=window,
            )
        except RegistryError:
            continue  # none in a window, or a zero baseline: nothing to test
        rows.append(
            {
                "borough": info.name,
                "current": change.current.count,
                "baseline": change.baseline.count,
                "change": change.change,
                "ci_low": change.ci_low,
                "ci_high": change.ci_high,
                "p_value": change.p_value,
                "current_months": change.current.months_with_data,
                "baseline_months": change.baseline.months_with_data,
                "tested": change.current.whole and change.baseline.whole,
            }
        )
    if not rows:
        raise RegistryError(f"No borough has {measure} counts in both windows.")
    frame = pd.DataFrame(rows)
    frame["p_adjusted"] = np.nan
    frame["significant"] = False
    if frame["tested"].any():
        tested = frame["tested"]
        reject, adjusted, _, _ = multipletests(
            frame.loc[tested, "p_value"], alpha=0.05, method=method
        )
        frame.loc[tested, "p_adjusted"] = adjusted
        frame.loc[tested, "significant"] = reject
    return frame
