"""Two-way fixed-effects panel regression on within-transformed data, borough-clustered errors.

The outcome and the regressors are demeaned by borough and by period (alternating projections;
one closed-form pass when the panel is balanced), then statsmodels' OLS fits the demeaned data
with no constant. That gives exactly the slope of the regression with a dummy for every borough
and period (Frisch-Waugh-Lovell) at a fraction of the cost, so it stays fast at thousands of areas.

Standard errors are CRV1, clustered by borough, with the small-sample factor pyfixest uses:
``G/(G-1) · (N-1)/(N-K)`` where ``G`` is the number of boroughs and ``K`` counts the
regressors plus one per period level (the borough effects are nested in the borough clusters,
so they are not counted). Tests check the estimate and standard error against pyfixest's
``feols(..., vcov={"CRV1": "borough"})`` to 1e-6; p-values and intervals use Student's t with
``G - 1`` degrees of freedom, as pyfixest does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.sandwich_covariance import cov_cluster

from registry.analysis.result import ModelResult, caveats_or_default
from registry.errors import RegistryError

TOLERANCE = 1e-13
MAX_ITERATIONS = 10_000


@dataclass(frozen=True)
class WithinFit:
    """The raw figures of a within fit, for callers that need more than the headline term."""

    terms: list[str]
    params: np.ndarray
    cov: np.ndarray
    n_obs: int
    n_areas: int
    n_periods: int
    df_t: int

    def std_errors(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))


def describe_term(name: str) -> str:
    """A panel column's name in words for messages: ``delivery_rate_lag3`` is "delivery 3
    periods earlier", ``delivery_rate_lead1`` "delivery 1 period later"."""
    for suffix, word in (("_lag", "earlier"), ("_lead", "later")):
        stem, found, digits = name.rpartition(suffix)
        if found and stem == "delivery_rate" and digits.isdigit():
            n = int(digits)
            if n == 0:
                return "delivery in the same period"
            return f"delivery {n} period{'s' if n != 1 else ''} {word}"
    if name == "delivery_rate":
        return "delivery in the same period"
    return name.replace("_", " ")


def _codes(values: pd.Series) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.intp), len(uniques)


def demean(
    data: np.ndarray, area: np.ndarray, n_area: int, period: np.ndarray, n_period: int
) -> np.ndarray:
    """Subtract borough and period means from each column of ``data`` (n × k).

    A balanced panel (every borough in every period once) needs one closed-form pass; otherwise
    the means are swept out in turn until the largest change is below ``TOLERANCE``.
    """
    data = np.asarray(data, dtype=float)
    if data.ndim == 1:
        data = data[:, None]
    n = data.shape[0]
    area_size = np.bincount(area, minlength=n_area).astype(float)
    period_size = np.bincount(period, minlength=n_period).astype(float)
    balanced = n == n_area * n_period and bool(
        np.all(np.bincount(area * n_period + period, minlength=n) == 1)
    )
    out = np.empty_like(data)
    for j in range(data.shape[1]):
        col = data[:, j]
        if balanced:
            a_mean = np.bincount(area, col, n_area) / area_size
            p_mean = np.bincount(period, col, n_period) / period_size
            out[:, j] = col - a_mean[area] - p_mean[period] + col.mean()
            continue
        x = col.copy()
        for _ in range(MAX_ITERATIONS):
            x -= (np.bincount(area, x, n_area) / area_size)[area]
            shift = (np.bincount(period, x, n_period) / period_size)[period]
            x -= shift
            if np.max(np.abs(shift)) < TOLERANCE * (1 + np.max(np.abs(col))):
                break
        else:
            raise RegistryError("The fixed-effects transformation did not converge.")
        out[:, j] = x
    return out


def fit_within(
    frame: pd.DataFrame,
    *,
    y: str,
    x: Sequence[str],
    area: str = "area",
    period: str = "period",
) -> WithinFit:
    """Fit ``y ~ x | area + period`` by OLS on within-transformed data, CRV1 by ``area``."""
    frame = frame.dropna(subset=[y, *x])
    area_codes, n_area = _codes(frame[area])
    period_codes, n_period = _codes(frame[period])
    if n_area < 2:
        raise RegistryError(
            f"A fixed-effects model needs at least 2 boroughs; this panel has {n_area}."
        )
    if n_period < 2:
        raise RegistryError(
            f"A fixed-effects model needs at least 2 periods; this panel has {n_period}."
        )
    values = frame[[y, *x]].to_numpy(dtype=float)
    if not np.any(values[:, 0]):
        raise RegistryError(f"Every {y} in this panel is zero: there is nothing to model.")
    within = demean(values, area_codes, n_area, period_codes, n_period)
    yd, xd = within[:, 0], within[:, 1:]
    for j, name in enumerate(x):
        spread = float(np.sum(xd[:, j] ** 2))
        if spread <= 1e-10 * (1 + float(np.sum(values[:, 1 + j] ** 2))):
            raise RegistryError(
                f"No variation in {describe_term(name)} within boroughs over time once borough "
                "and period effects are removed, so its association with the outcome cannot be "
                "estimated."
            )
    if np.linalg.matrix_rank(xd) < xd.shape[1]:
        raise RegistryError(
            f"{_and_list([describe_term(name) for name in x]).capitalize()} cannot be told "
            "apart from each other once each borough's average and each period's average are "
            "taken out, so their separate associations with the outcome cannot be estimated."
        )
    n, k = xd.shape
    fitted = sm.OLS(yd, xd).fit()
    raw = cov_cluster(fitted, area_codes, use_correction=False)
    big_k = k + n_period
    if n <= big_k:
        raise RegistryError(
            f"Too few observations ({n}) for {k} term(s) and {n_period} period effects."
        )
    cov = np.atleast_2d(raw) * (n_area / (n_area - 1)) * ((n - 1) / (n - big_k))
    return WithinFit(list(x), np.asarray(fitted.params), cov, n, n_area, n_period, n_area - 1)


def _and_list(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def term_summary(
    estimate: float, std_error: float, df_t: int, level: float = 0.95
) -> tuple[float, float, float]:
    """Interval and two-sided p-value from Student's t with ``df_t`` degrees of freedom."""
    if std_error <= 0 or not np.isfinite(std_error):
        return float("nan"), float("nan"), float("nan")
    q = float(stats.t.ppf(0.5 + level / 2, df_t))
    p = float(2 * stats.t.sf(abs(estimate / std_error), df_t))
    return estimate - q * std_error, estimate + q * std_error, p


def within_result(
    fit: WithinFit,
    *,
    model: str,
    outcome: str,
    caveats: list[str],
    diagnostics: dict[str, Any],
    extra: dict[str, Any],
    fitted: pd.DataFrame | None = None,
    fitted_unit: str = "",
) -> ModelResult:
    """The result of a within fit for its first term: estimate, clustered standard error, and
    interval and p-value from Student's t on the fit's degrees of freedom."""
    estimate = float(fit.params[0])
    std_error = float(fit.std_errors()[0])
    low, high, p = term_summary(estimate, std_error, fit.df_t)
    return ModelResult(
        model=model,
        outcome=outcome,
        term=fit.terms[0],
        estimate=estimate,
        std_error=std_error,
        ci_low=low,
        ci_high=high,
        p_value=p,
        n_obs=fit.n_obs,
        n_areas=fit.n_areas,
        n_periods=fit.n_periods,
        caveats=caveats,
        diagnostics=diagnostics,
        extra=extra,
        fitted=fitted,
        fitted_unit=fitted_unit,
    )


def fit_fe(
    frame: pd.DataFrame,
    *,
    y: str = "rate",
    x: str = "delivery_rate_lag1",
    controls: Sequence[str] = (),
    area: str = "area",
    period: str = "period",
    outcome: str = "",
    caveats: list[str] | None = None,
) -> ModelResult:
    """Two-way fixed effects: ``y`` on ``x`` (and ``controls``) with borough and period effects."""
    fit = fit_within(frame, y=y, x=[x, *controls], area=area, period=period)
    used = frame.dropna(subset=[y, x, *controls])
    counts = used["count"].astype(int).tolist() if "count" in used else None
    values = used[[y, x, *controls]].to_numpy(dtype=float)
    area_codes, n_area = _codes(used[area])
    period_codes, n_period = _codes(used[period])
    within = demean(values, area_codes, n_area, period_codes, n_period)
    residual = within[:, 0] - within[:, 1:] @ fit.params
    fitted = (
        pd.DataFrame(
            {
                "period": used[period].to_numpy(),
                "observed": values[:, 0],
                "fitted": values[:, 0] - residual,
            }
        )
        .groupby("period", as_index=False)
        .mean()
    )
    return within_result(
        fit,
        model="fe",
        outcome=outcome,
        caveats=caveats_or_default(caveats, counts=counts, n_periods=fit.n_periods),
        diagnostics={
            "vcov": "CRV1 clustered by borough",
            "small_sample_factor": "G/(G-1)·(N-1)/(N-K), K = terms + period effects",
            "df_t": fit.df_t,
        },
        extra={
            "controls": {
                name: {"estimate": float(b), "std_error": float(s)}
                for name, b, s in zip(controls, fit.params[1:], fit.std_errors()[1:], strict=True)
            }
        }
        if controls
        else {},
        fitted=fitted,
        fitted_unit=f"mean {y} across boroughs",
    )


def fit_fe_dummies(
    frame: pd.DataFrame,
    *,
    y: str = "rate",
    x: str = "delivery_rate_lag1",
    area: str = "area",
    period: str = "period",
) -> tuple[float, float]:
    """The same regression with a dummy for every borough and period (the slow reference).

    Returns the estimate and statsmodels' own cluster-robust standard error (whose small-sample
    factor counts every dummy, so only the estimate is comparable with :func:`fit_fe`).
    """
    data = frame[[y, x, area, period]].dropna()
    area_codes, n_area = _codes(data[area])
    period_codes, n_period = _codes(data[period])
    n = len(data)
    # Constant, x, then a dummy per borough and per period but the first of each.
    design = np.zeros((n, 2 + (n_area - 1) + (n_period - 1)))
    design[:, 0] = 1.0
    design[:, 1] = data[x].to_numpy(dtype=float)
    rows = np.arange(n)
    has_area = area_codes > 0
    design[rows[has_area], 1 + area_codes[has_area]] = 1.0
    has_period = period_codes > 0
    design[rows[has_period], n_area + period_codes[has_period]] = 1.0
    fitted = sm.OLS(data[y].to_numpy(dtype=float), design).fit(
        cov_type="cluster", cov_kwds={"groups": area_codes}
    )
    return float(fitted.params[1]), float(fitted.bse[1])


def permute_areas(
    frame: pd.DataFrame,
    *,
    y: str = "rate",
    x: str = "delivery_rate_lag1",
    area: str = "area",
    period: str = "period",
    n_permutations: int = 199,
    seed: int = 20190901,
) -> tuple[float, list[float]]:
    """Permutation inference: shuffle whole delivery series between boroughs and refit.

    Each borough keeps its outcomes; its delivery series is swapped for another borough's, which
    keeps delivery's timing and seasonality but breaks any link to that borough's outcomes.
    Returns the two-sided p-value ``(1 + #{|b*| >= |b|}) / (1 + permutations)`` and the
    permuted estimates.
    """
    data = frame.dropna(subset=[y, x])
    area_codes, n_area = _codes(data[area])
    period_codes, n_period = _codes(data[period])
    observed = float(fit_within(data, y=y, x=[x], area=area, period=period).params[0])
    wide = np.full((n_area, n_period), np.nan)
    wide[area_codes, period_codes] = data[x].to_numpy(dtype=float)
    yv = data[y].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    estimates: list[float] = []
    for _ in range(n_permutations):
        order = rng.permutation(n_area)
        xs = wide[order][area_codes, period_codes]
        keep = ~np.isnan(xs)
        sub_a, na = _codes(pd.Series(area_codes[keep]))
        sub_p, np_ = _codes(pd.Series(period_codes[keep]))
        within = demean(np.column_stack([yv[keep], xs[keep]]), sub_a, na, sub_p, np_)
        xx = float(within[:, 1] @ within[:, 1])
        if xx > 0:
            estimates.append(float(within[:, 1] @ within[:, 0]) / xx)
    extreme = sum(1 for b in estimates if abs(b) >= abs(observed) - 1e-12)
    return (1 + extreme) / (1 + len(estimates)), estimates
