"""Count models, interrupted time series, event study and the lead placebo.

All are pure: a panel frame in (see :mod:`registry.analysis.panel`), a
:class:`~registry.analysis.result.ModelResult` out.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from threadpoolctl import threadpool_limits

from registry.analysis.fixed_effects import describe_term, fit_within, term_summary
from registry.analysis.result import ModelResult, caveats_for
from registry.errors import RegistryError
from registry.periods import add_months, format_month

Z95 = float(stats.norm.ppf(0.975))
OVERDISPERSION_THRESHOLD = 1.5


def _dummies(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return pd.get_dummies(
        frame[column].astype(str), prefix=column, drop_first=True, dtype=float
    ).set_index(frame.index)


def fit_count(
    frame: pd.DataFrame,
    *,
    family: str = "poisson",
    x: str = "delivery_rate_lag1",
    outcome: str = "",
    caveats: list[str] | None = None,
) -> ModelResult:
    """Poisson or negative-binomial GLM of counts with borough and period effects.

    ``log(count) = log(population) + b·x + borough + period`` (the measure's population band):
    the offset makes the model one of rates, and ``exp(b)`` is the incidence rate ratio per
    extra opportunity per 1,000 young people.
    Standard errors are clustered by borough. Boroughs or periods whose counts are all zero carry
    no information about ``b`` (their effect runs to minus infinity) and are left out.

    The negative binomial's dispersion ``alpha`` comes from the Cameron-Trivedi auxiliary
    regression on the Poisson fit; overdispersion is flagged when the Poisson Pearson
    chi-squared per degree of freedom exceeds 1.5.

    The fit runs with one BLAS thread: the dummy design is a few thousand rows by a few hundred
    columns, where threads only contend with the app's other work (several times slower on a
    busy two-core server).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_count(frame, family=family, x=x, outcome=outcome, caveats=caveats)


def _fit_count(
    frame: pd.DataFrame,
    *,
    family: str = "poisson",
    x: str = "delivery_rate_lag1",
    outcome: str = "",
    caveats: list[str] | None = None,
) -> ModelResult:
    if family not in {"poisson", "negbin"}:
        raise RegistryError(f"Unknown count model {family!r}; use poisson or negbin.")
    data = frame.dropna(subset=[x, "count", "population"])
    if not data["count"].any():
        raise RegistryError("Every count in this panel is zero: there is nothing to model.")
    if data["area"].nunique() < 2:
        raise RegistryError(
            f"A count model with borough effects needs at least 2 boroughs; this panel has "
            f"{data['area'].nunique()}."
        )
    dropped = []
    for column in ("area", "period"):
        totals = data.groupby(column)["count"].transform("sum")
        gone = data.loc[totals == 0, column].nunique()
        if gone:
            dropped.append(f"{gone} {'boroughs' if column == 'area' else 'periods'}")
        data = data[totals > 0]
    if data["area"].nunique() < 2 or data["period"].nunique() < 2:
        raise RegistryError("Too few boroughs or periods with any counts to fit a count model.")
    if data.groupby("area")[x].transform("std").fillna(0).max() == 0:
        raise RegistryError(
            f"No variation in {describe_term(x)} within boroughs over time, so its association "
            "with the outcome cannot be estimated."
        )
    design = pd.concat(
        [data[[x]].astype(float), _dummies(data, "area"), _dummies(data, "period")], axis=1
    )
    design = sm.add_constant(design, has_constant="add")
    y = data["count"].astype(float)
    offset = np.log(data["population"].astype(float))
    groups = pd.factorize(data["area"])[0]
    cluster = {"groups": groups}
    # Newton from the overall rate (not statsmodels' default IRLS start): far fewer solves of
    # the wide dummy design.
    start = np.zeros(design.shape[1])
    start[0] = math.log(y.sum() / np.exp(offset).sum())
    fit_options = {"cov_type": "cluster", "cov_kwds": cluster, "method": "newton", "maxiter": 100}
    poisson = sm.GLM(y, design, family=sm.families.Poisson(), offset=offset).fit(
        start_params=start, **fit_options
    )
    dispersion = float(poisson.pearson_chi2 / poisson.df_resid)
    diagnostics: dict[str, object] = {
        "pearson_chi2_per_df": dispersion,
        "overdispersed": dispersion > OVERDISPERSION_THRESHOLD,
        "vcov": "clustered by borough",
    }
    fitted = poisson
    if family == "negbin":
        mu = poisson.fittedvalues.to_numpy()
        aux = ((y.to_numpy() - mu) ** 2 - y.to_numpy()) / mu
        alpha = max(float(np.sum(aux * mu) / np.sum(mu * mu)), 1e-8)
        diagnostics["alpha"] = alpha
        fitted = sm.GLM(
            y, design, family=sm.families.NegativeBinomial(alpha=alpha), offset=offset
        ).fit(start_params=poisson.params.to_numpy(), **fit_options)
        diagnostics["nb_pearson_chi2_per_df"] = float(fitted.pearson_chi2 / fitted.df_resid)
    if dropped:
        diagnostics["left_out_all_zero"] = ", ".join(dropped)
    b = float(fitted.params[x])
    se = float(fitted.bse[x])
    low, high = b - Z95 * se, b + Z95 * se
    counts = data["count"].astype(int).tolist()
    n_periods = int(data["period"].nunique())
    notes = caveats if caveats is not None else caveats_for(counts=counts, n_periods=n_periods)
    if family == "poisson" and dispersion > OVERDISPERSION_THRESHOLD:
        notes = [
            *notes,
            f"Overdispersion: the counts vary {dispersion:.1f} times as much as a Poisson model "
            "expects; the clustered errors allow for it, and the negative binomial model "
            "(--model negbin) is the better check.",
        ]
    return ModelResult(
        model=family,
        outcome=outcome,
        term=x,
        estimate=b,
        std_error=se,
        ci_low=low,
        ci_high=high,
        p_value=float(fitted.pvalues[x]),
        n_obs=len(data),
        n_areas=int(data["area"].nunique()),
        n_periods=n_periods,
        caveats=notes,
        diagnostics=diagnostics,
        extra={"irr": math.exp(b), "irr_ci_low": math.exp(low), "irr_ci_high": math.exp(high)},
        fitted=pd.DataFrame(
            {"period": data["period"], "observed": y, "fitted": fitted.fittedvalues}
        )
        .groupby("period", as_index=False)
        .sum(),
        fitted_unit="count summed over boroughs",
    )


def _hac_lags(n: int) -> int:
    """Newey and West's rule of thumb for the truncation lag: floor(4 (n/100)^(2/9))."""
    return math.floor(4 * (n / 100) ** (2 / 9))


def fit_its(
    frame: pd.DataFrame,
    *,
    at: dt.date,
    months_per_period: int = 1,
    outcome: str = "",
    caveats: list[str] | None = None,
    rate_unit: str = "per 100,000 residents",
) -> ModelResult:
    """Interrupted time series of the panel's total rate, interrupted at ``at``.

    Segmented regression of the rate ``rate_unit`` (all boroughs in the panel) on
    time, a step at ``at`` (level change), time since ``at`` (slope change) and month-of-year (or
    quarter) dummies for seasonality, with Newey-West (HAC) standard errors.
    """
    series = frame.groupby("period")[["count", "population"]].sum().sort_index().reset_index()
    if series.empty:
        raise RegistryError("No periods to analyse.")
    series["rate"] = series["count"] / series["population"] * 100_000
    before = int((series["period"] < at).sum())
    after = len(series) - before
    if before < 12 or after < 12:
        raise RegistryError(
            f"An interrupted time series at {format_month(at)} needs at least 12 periods on each "
            f"side; the data have {before} before and {after} from it."
        )
    if not series["count"].any():
        raise RegistryError("Every count in this series is zero: there is nothing to model.")
    first = series["period"].iloc[0]
    step_months = months_per_period
    t = np.array(
        [
            ((p.year - first.year) * 12 + p.month - first.month) / step_months
            for p in series["period"]
        ]
    )
    t_at = ((at.year - first.year) * 12 + at.month - first.month) / step_months
    post = (series["period"] >= at).astype(float).to_numpy()
    season = pd.get_dummies(
        pd.Series([p.month for p in series["period"]]).astype(str),
        prefix="season",
        drop_first=True,
        dtype=float,
    )
    design = pd.concat(
        [
            pd.DataFrame({"time": t, "level_change": post, "slope_change": post * (t - t_at)}),
            season,
        ],
        axis=1,
    )
    design = sm.add_constant(design)
    lags = _hac_lags(len(series))
    fitted = sm.OLS(series["rate"].to_numpy(), design).fit(
        cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": True}
    )
    ci = fitted.conf_int()
    n_areas = int(frame["area"].nunique())
    notes = (
        caveats
        if caveats is not None
        else caveats_for(counts=series["count"].astype(int).tolist(), n_periods=len(series))
    )
    pre_mean = float(series.loc[series["period"] < at, "rate"].mean())
    return ModelResult(
        model="its",
        outcome=outcome,
        term="level_change",
        estimate=float(fitted.params["level_change"]),
        std_error=float(fitted.bse["level_change"]),
        ci_low=float(ci.loc["level_change", 0]),
        ci_high=float(ci.loc["level_change", 1]),
        p_value=float(fitted.pvalues["level_change"]),
        n_obs=len(series),
        n_areas=n_areas,
        n_periods=len(series),
        caveats=[
            *notes,
            "An interrupted time series compares London's series with its own past: anything "
            f"else that changed around {format_month(at)} is folded into the estimate.",
        ],
        diagnostics={
            "vcov": f"Newey-West HAC, {lags} lags",
            "r_squared": float(fitted.rsquared),
            "durbin_watson": float(sm.stats.stattools.durbin_watson(fitted.resid)),
        },
        extra={
            "interruption": at,
            "unit": f"rate {rate_unit} per period",
            "pre_period_mean_rate": pre_mean,
            "pre_slope": float(fitted.params["time"]),
            "slope_change": float(fitted.params["slope_change"]),
            "slope_change_std_error": float(fitted.bse["slope_change"]),
            "slope_change_ci_low": float(ci.loc["slope_change", 0]),
            "slope_change_ci_high": float(ci.loc["slope_change", 1]),
            "slope_change_p_value": float(fitted.pvalues["slope_change"]),
        },
        fitted=pd.DataFrame(
            {
                "period": series["period"].to_numpy(),
                "observed": series["rate"].to_numpy(),
                "fitted": np.asarray(fitted.fittedvalues),
            }
        ),
        fitted_unit=f"London rate {rate_unit}",
    )


def fit_event_study(
    frame: pd.DataFrame,
    *,
    first_delivery: Mapping[str, dt.date],
    programme: str = "",
    pre: int = 6,
    post: int = 12,
    months_per_period: int = 1,
    y: str = "rate",
    outcome: str = "",
    caveats: list[str] | None = None,
) -> ModelResult:
    """Event study around each borough's first delivery of a programme.

    Relative-time dummies from ``-pre`` to ``post`` periods (the ends binned, so ``-pre`` means
    "``pre`` or more periods before"), period -1 the reference, with borough and period fixed
    effects and borough-clustered errors. Boroughs never reached are controls. The headline is
    the mean of the coefficients from 0 to ``post``; ``pre_trend_p_value`` is the joint test
    that every coefficient before the first delivery is zero (a small value shows a pre-trend).
    """
    data = frame.dropna(subset=[y]).copy()
    treated = {a: m for a, m in first_delivery.items() if a in set(data["area"])}
    if not treated:
        raise RegistryError(
            f"No borough in the panel has a first delivery of {programme or 'the programme'}."
        )
    step = months_per_period

    def relative(area: str, period: dt.date) -> int | None:
        start = treated.get(area)
        if start is None:
            return None
        months = (period.year - start.year) * 12 + period.month - start.month
        return max(-pre, min(post, months // step))

    rel = [relative(a, p) for a, p in zip(data["area"], data["period"], strict=True)]
    names = []
    for k in range(-pre, post + 1):
        if k == -1:
            continue
        name = f"event_{k}"
        column = np.array([1.0 if r == k else 0.0 for r in rel])
        if column.any():
            data[name] = column
            names.append(name)
    if not names:
        raise RegistryError("No period in the panel falls around a first delivery.")
    try:
        fit = fit_within(data, y=y, x=names)
    except RegistryError as exc:
        raise RegistryError(
            "The event-study terms cannot be separated from the period effects (for example, "
            f"every borough started {programme or 'the programme'} in the same month and none "
            f"is left as a control): {exc}"
        ) from exc
    se = fit.std_errors()
    coefficients = []
    for name, b, s in zip(names, fit.params, se, strict=True):
        low, high, p = term_summary(float(b), float(s), fit.df_t)
        coefficients.append(
            {
                "relative_period": int(name.split("_")[1]),
                "estimate": float(b),
                "std_error": float(s),
                "ci_low": low,
                "ci_high": high,
                "p_value": p,
            }
        )
    post_idx = [i for i, n in enumerate(names) if int(n.split("_")[1]) >= 0]
    pre_idx = [i for i, n in enumerate(names) if int(n.split("_")[1]) < -1]
    if not post_idx:
        raise RegistryError("No period in the panel falls after a first delivery.")
    w = np.zeros(len(names))
    w[post_idx] = 1 / len(post_idx)
    estimate = float(w @ fit.params)
    std_error = float(math.sqrt(w @ fit.cov @ w))
    low, high, p = term_summary(estimate, std_error, fit.df_t)
    pre_p = float("nan")
    if pre_idx:
        b = fit.params[pre_idx]
        v = fit.cov[np.ix_(pre_idx, pre_idx)]
        wald = float(b @ np.linalg.pinv(v) @ b) / len(pre_idx)
        pre_p = float(stats.f.sf(wald, len(pre_idx), fit.df_t))
    counts = data["count"].astype(int).tolist() if "count" in data else None
    notes = caveats if caveats is not None else caveats_for(counts=counts, n_periods=fit.n_periods)
    first_months = sorted(treated.values())
    return ModelResult(
        model="event",
        outcome=outcome,
        term="mean_post_delivery",
        estimate=estimate,
        std_error=std_error,
        ci_low=low,
        ci_high=high,
        p_value=p,
        n_obs=fit.n_obs,
        n_areas=fit.n_areas,
        n_periods=fit.n_periods,
        caveats=[
            *notes,
            "Boroughs were not reached at random: where the coefficients before the first "
            "delivery differ from zero, the comparison after it is not like with like.",
        ],
        diagnostics={
            "vcov": "CRV1 clustered by borough",
            "reference_period": -1,
            "pre_trend_p_value": pre_p,
            "boroughs_reached": len(treated),
            "boroughs_never_reached": int(data["area"].nunique()) - len(treated),
        },
        extra={
            "programme": programme,
            "first_delivery_from": first_months[0],
            "first_delivery_to": first_months[-1],
            "pre_trend_p_value": pre_p,
            "coefficients": coefficients,
        },
    )


def shifted(
    frame: pd.DataFrame, column: str, periods: int, months_per_period: int = 1
) -> pd.Series:
    """``column`` of the same borough ``periods`` later (negative: earlier), by calendar period.

    Looks the value up by date, so a missing period never shifts another into its place.
    """
    lookup = frame.set_index(["area", "period"])[column]
    keys = pd.MultiIndex.from_arrays(
        [frame["area"], [add_months(p, periods * months_per_period) for p in frame["period"]]]
    )
    return pd.Series(lookup.reindex(keys).to_numpy(), index=frame.index)


def lead_placebo(
    frame: pd.DataFrame,
    *,
    lag: int = 1,
    lead: int = 1,
    months_per_period: int = 1,
    outcome: str = "",
    caveats: list[str] | None = None,
) -> ModelResult:
    """Placebo on leads: does delivery ``lead`` periods in the future "predict" the outcome?

    Fits the fixed-effects model with the lagged delivery rate and the lead together; the lead's
    coefficient should be near zero. A clear lead effect says the main estimate picks up
    something other than delivery (targeting, trends) and should not be trusted.
    """
    data = frame.copy()
    lag_name = f"delivery_rate_lag{lag}"
    lead_name = f"delivery_rate_lead{lead}"
    data[lead_name] = shifted(data, "delivery_rate", lead, months_per_period)
    if lag_name not in data:
        data[lag_name] = shifted(data, "delivery_rate", -lag, months_per_period)
    data = data.dropna(subset=[lead_name, lag_name])
    if data.empty:
        raise RegistryError(f"No period has delivery known {lead} period(s) ahead for a placebo.")
    fit = fit_within(data, y="rate", x=[lead_name, lag_name])
    se = fit.std_errors()
    low, high, p = term_summary(float(fit.params[0]), float(se[0]), fit.df_t)
    counts = data["count"].astype(int).tolist() if "count" in data else None
    return ModelResult(
        model="lead_placebo",
        outcome=outcome,
        term=lead_name,
        estimate=float(fit.params[0]),
        std_error=float(se[0]),
        ci_low=low,
        ci_high=high,
        p_value=p,
        n_obs=fit.n_obs,
        n_areas=fit.n_areas,
        n_periods=fit.n_periods,
        caveats=caveats
        if caveats is not None
        else caveats_for(counts=counts, n_periods=fit.n_periods),
        diagnostics={"vcov": "CRV1 clustered by borough", "passes": bool(low <= 0 <= high)},
        extra={"lag_estimate": float(fit.params[1]), "lag_std_error": float(se[1])},
    )
