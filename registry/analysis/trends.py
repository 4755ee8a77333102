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

Counts of crime vary more than Poisson from year to year (London's yearly totals 1.4-2.6 times
as much), so beside the exact interval each change carries one allowing for overdispersion:
the dispersion ``phi`` is estimated from the series' own history of year-on-year changes (see
:func:`history_dispersion`), and the log rate ratio's standard error becomes
``sqrt(phi (1/current + 1/baseline))`` with t on as many degrees of freedom as year pairs used.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy.orm import Session
from statsmodels.stats.proportion import proportion_confint
from statsmodels.tsa.seasonal import STL

from registry import boroughs
from registry.analysis.inference import holm
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


# Fewer year pairs than this leave the dispersion unestimated (and the adjusted interval out).
MIN_DISPERSION_PAIRS = 3


def history_dispersion(series: pd.DataFrame, *, before: dt.date, months: int) -> tuple[float, int]:
    """Overdispersion of ``months``-month totals from the series' history before ``before``.

    Each whole window ending before ``before`` is set against the window a year (for windows
    longer than 12 months: a whole number of years, so they do not overlap) earlier. Under
    Poisson with no change, ``(a - b)^2 / (a + b)`` averages 1 for such a pair; its mean over
    the pairs is the dispersion, at least 1. Real changes in the history count as variation:
    the interval asks whether this change is unusual against the years before it. Returns the
    dispersion (NaN with fewer than ``MIN_DISPERSION_PAIRS`` pairs) and the number of pairs.
    """
    lag = 12 * math.ceil(months / 12)
    end = add_months(before, -1)
    ratios = []
    first = series["month"].min() if len(series) else before
    while True:
        later = window_total(series, end, months)
        earlier = window_total(series, add_months(end, -lag), months)
        if earlier.start < first:
            break
        if later.whole and earlier.whole and later.count + earlier.count > 0:
            ratios.append((later.count - earlier.count) ** 2 / (later.count + earlier.count))
        end = add_months(end, -lag)
    if len(ratios) < MIN_DISPERSION_PAIRS:
        return float("nan"), len(ratios)
    return max(1.0, float(np.mean(ratios))), len(ratios)


def overdispersed_interval(
    current: int, baseline: int, dispersion: float, pairs: int, level: float = 0.95
) -> tuple[float, float, float]:
    """The change's interval and p-value with the Poisson variance scaled by ``dispersion``
    (NaN when it is unknown or a window's total is 0)."""
    if not math.isfinite(dispersion) or current <= 0 or baseline <= 0:
        return float("nan"), float("nan"), float("nan")
    log_ratio = math.log(current / baseline)
    se = math.sqrt(dispersion * (1 / current + 1 / baseline))
    q = float(stats.t.ppf(0.5 + level / 2, pairs))
    p = float(2 * stats.t.sf(abs(log_ratio) / se, pairs))
    return math.exp(log_ratio - q * se) - 1, math.exp(log_ratio + q * se) - 1, p


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
    dispersion, pairs = history_dispersion(series, before=current.start, months=months)
    od_low, od_high, od_p = overdispersed_interval(current.count, baseline.count, dispersion, pairs)
    if not math.isfinite(dispersion):
        caveats.append(
            f"Too little history ({pairs} year-on-year pairs of whole {months}-month windows "
            f"before {format_month(current.start)}) to say how much more than Poisson the "
            "totals vary, so only the exact Poisson interval is given; it is too narrow if "
            "they do."
        )
    return TrendChange(
        measure,
        area,
        months,
        current,
        baseline,
        change,
        low,
        high,
        p,
        caveats,
        dispersion=dispersion,
        dispersion_pairs=pairs,
        od_ci_low=od_low,
        od_ci_high=od_high,
        od_p_value=od_p,
    )


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
    return _stored_change(session, principal, measure, end, baseline_end, window, borough)[1]


def _stored_change(
    session: Session,
    principal: Principal,
    measure: str,
    end: dt.date,
    baseline_end: dt.date,
    window: int,
    borough: str | None,
) -> tuple[pd.DataFrame, TrendChange]:
    """The stored monthly series up to ``end`` and its change, with the series breaks."""
    _first_month(end, baseline_end, window)
    # The whole history up to ``end``: the dispersion comes from it.
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
    return series, with_series_breaks(session, change)


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
    # One series serves the change, the sensitivity table and the rolling totals.
    series, change = _stored_change(session, principal, measure, end, baseline_end, window, borough)
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


def _borough_row(
    series: pd.DataFrame | None, *, end: dt.date, baseline_end: dt.date, window: int
) -> dict[str, object]:
    """One borough's exact test and overdispersed interval, or why it was not tested."""
    row: dict[str, object] = {"tested": False, "not_tested_because": ""}
    if series is None:
        return {**row, "not_tested_because": "no counts stored"}
    current = window_total(series, end, window)
    baseline = window_total(series, baseline_end, window)
    row.update(
        current=current.count,
        baseline=baseline.count,
        current_months=current.months_with_data,
        baseline_months=baseline.months_with_data,
    )
    if not (current.whole and baseline.whole):
        return {**row, "not_tested_because": "a window only partly stored"}
    n = current.count + baseline.count
    if n == 0:
        return {**row, "not_tested_because": "no offences in either window"}
    # The exact conditional test needs no baseline above zero: 5 against 0 is evidence too.
    p_value = float(stats.binomtest(current.count, n, 0.5).pvalue)
    if baseline.count > 0:
        change, low, high, _ = change_interval(current.count, baseline.count)
    else:
        low_p = proportion_confint(current.count, n, alpha=0.05, method="beta")[0]
        change, low, high = float("inf"), low_p / (1 - low_p) - 1, float("inf")
    dispersion, pairs = history_dispersion(series, before=current.start, months=window)
    od_low, od_high, od_p = overdispersed_interval(current.count, baseline.count, dispersion, pairs)
    return {
        **row,
        "tested": True,
        "change": change,
        "ci_low": low,
        "ci_high": high,
        "p_value": p_value,
        "dispersion": dispersion,
        "od_ci_low": od_low,
        "od_ci_high": od_high,
        "od_p_value": od_p,
    }


BOROUGH_COLUMNS = [
    "borough",
    "current",
    "baseline",
    "change",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "significant",
    "dispersion",
    "od_ci_low",
    "od_ci_high",
    "od_p_value",
    "od_p_adjusted",
    "od_significant",
    "current_months",
    "baseline_months",
    "tested",
    "not_tested_because",
]


def borough_changes(
    session: Session,
    *,
    principal: Principal,
    measure: str,
    end: dt.date,
    baseline_end: dt.date,
    window: int = 12,
) -> pd.DataFrame:
    """Which boroughs changed significantly, corrected for multiple comparisons.

    Every borough gets a row. One exact conditional test per borough (see
    :func:`change_interval`; a baseline of zero is tested too, its change unbounded), then
    Holm's correction (:func:`~registry.analysis.inference.holm`) across every borough tested,
    and the same for the p-values allowing for each borough's own overdispersion. A borough is
    tested only when every month of both windows has a stored count and the two hold at least
    one offence; ``not_tested_because`` names the reason for the others (no counts stored, a
    window only partly stored, no offences in either window).
    """
    _first_month(end, baseline_end, window)
    by_borough = borough_series(session, principal=principal, measure=measure, end=end)
    rows = [
        {
            "borough": info.name,
            **_borough_row(
                by_borough.get(info.gss_code), end=end, baseline_end=baseline_end, window=window
            ),
        }
        for info in boroughs.BOROUGHS
    ]
    if not by_borough:
        raise RegistryError(f"No borough has {measure} counts stored.")
    frame = pd.DataFrame(rows).reindex(columns=BOROUGH_COLUMNS)
    frame["tested"] = frame["tested"].astype(bool)
    frame["significant"] = False
    frame["od_significant"] = False
    for p, adjusted, significant in (
        ("p_value", "p_adjusted", "significant"),
        ("od_p_value", "od_p_adjusted", "od_significant"),
    ):
        family = frame["tested"] & frame[p].notna()
        if family.any():
            reject, corrected = holm(frame.loc[family, p].astype(float))
            frame.loc[family, adjusted] = corrected
            frame.loc[family, significant] = reject
    frame["significant"] = frame["significant"].astype(bool)
    frame["od_significant"] = frame["od_significant"].astype(bool)
    return frame
