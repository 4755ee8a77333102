"""The headline model and the words around every delivery model: checks, verdict, labels.

The headline is the Poisson model of counts with borough and period effects and a log
population offset. Crime is a borough's risk times a London-wide level; programmes go to
high-risk boroughs and grow while London falls, so trends are parallel in logs, not in levels,
and only a multiplicative model compares like with like. Its p-value and interval come from the
wild score bootstrap by borough (:mod:`registry.analysis.inference`), which stays honest with
few delivering boroughs.

Each delivery model's result carries ``checks`` (the lead placebo; enough delivering boroughs)
and a ``verdict`` in words: a failed check makes it "not interpretable" whatever the estimate.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
from scipy import stats

from registry.analysis.estimators import fit_count, shifted
from registry.analysis.fixed_effects import _codes, demean, fit_fe
from registry.analysis.inference import (
    Bootstrap,
    PoissonGrid,
    delivering_boroughs,
    few_clusters_warning,
    fitted_means,
    holm,
    minimum_detectable,
    poisson_fe,
    score_poisson,
    wild_ols,
)
from registry.analysis.result import Check, ModelResult, decide_verdict
from registry.errors import RegistryError

UNIT = 10  # the stated unit of delivery: 10 opportunities per 1,000 young people
MIN_DELIVERING = 3
ALPHA = 0.05
LEVELS_ASSUMPTION = (
    "Parallel trends in levels: this model assumes that, without delivery, every borough's rate "
    "would have risen or fallen by the same amount per 100,000 each month. Where crime is a "
    "borough's risk times a London-wide level (the usual case), high-risk boroughs move more, "
    "and this model can find effects that are not there; the headline Poisson model does not "
    "assume this."
)
PLACEBO = "lead placebo"
DELIVERING = "delivering boroughs"


def period_word(frequency: str) -> str:
    return "quarter" if frequency == "quarter" else "month"


def lag_words(lag: int, frequency: str = "month") -> str:
    """``delivery_rate_lag1`` in words: "in the month before"."""
    word = period_word(frequency)
    if lag == 0:
        return f"in the same {word}"
    if lag == 1:
        return f"in the {word} before"
    return f"{lag} {word}s before"


def effect_label(model: str, outcome_label: str, lag: int, frequency: str = "month") -> str:
    """The headline figure's name in words, e.g. "Change in knife crime rate per extra 10
    opportunities per 1,000 young people in the month before"."""
    per = f"per extra {UNIT} opportunities per 1,000 young people {lag_words(lag, frequency)}"
    if model in {"poisson", "negbin"}:
        return f"Change in the rate of {outcome_label} (%) {per}"
    return f"Change in the rate of {outcome_label} per 100,000 young people {per}"


def _exp(value: float) -> float:
    """``exp`` that gives infinity (or NaN) instead of overflowing."""
    if not math.isfinite(value):
        return math.exp(value) if value == -math.inf else value
    return math.exp(value) if value < 700 else math.inf


def _percent(log_ratio: float) -> float:
    """A slope on the log scale as the % change per ``UNIT`` of delivery."""
    return 100 * (_exp(UNIT * log_ratio) - 1)


def _p_text(p: float) -> str:
    if not math.isfinite(p):
        return "p not available"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def placebo_check(p_value: float, *, outcome_label: str, frequency: str) -> Check:
    """The lead placebo in words: delivery next period should not "predict" this period."""
    word = period_word(frequency)
    if not math.isfinite(p_value):
        return Check(PLACEBO, True, f"The lead placebo could not be estimated ({word}s too few).")
    if p_value < ALPHA:
        return Check(
            PLACEBO,
            False,
            f"the lead placebo failed: delivery in the following {word} goes with this {word}'s "
            f"{outcome_label} ({_p_text(p_value)}), so delivery follows crime or shares a trend "
            "with it, and the estimate cannot be read as delivery's association with crime",
        )
    return Check(
        PLACEBO,
        True,
        f"Lead placebo passed: delivery in the following {word} does not go with this {word}'s "
        f"{outcome_label} ({_p_text(p_value)}), as it should not.",
    )


def delivering_check(
    frame: pd.DataFrame, x: str, *, resampled: bool = True
) -> tuple[Check, list[str]]:
    """Enough boroughs with delivery to compare, and the warning when there are few (in the
    words of :func:`few_clusters_warning`; ``resampled``: the model's inference resamples)."""
    delivering = delivering_boroughs(frame, x)
    boroughs = int(frame.dropna(subset=[x])["area"].nunique())
    warning = few_clusters_warning(delivering, boroughs, resampled=resampled)
    notes = [warning] if warning else []
    if delivering < MIN_DELIVERING:
        return Check(
            DELIVERING,
            False,
            f"only {delivering} of {boroughs} boroughs had any delivery, too few to tell "
            "delivery's association from what is particular to those boroughs",
        ), notes
    return Check(DELIVERING, True, f"{delivering} of {boroughs} boroughs had some delivery."), notes


def _with_lead(frame: pd.DataFrame, months_per_period: int) -> pd.DataFrame:
    data = frame.copy()
    data["delivery_rate_lead1"] = shifted(data, "delivery_rate", 1, months_per_period)
    return data


def poisson_placebo_p(frame: pd.DataFrame, *, x: str, months_per_period: int) -> float:
    """The score-bootstrap p-value of next period's delivery in the Poisson model that also
    has ``x``: small when delivery follows this period's counts."""
    data = _with_lead(frame, months_per_period)
    try:
        grid = PoissonGrid.of(data, ["delivery_rate_lead1", x])
        return score_poisson(grid, tested=0).p_value
    except (RegistryError, np.linalg.LinAlgError):
        return float("nan")


def fe_placebo_p(frame: pd.DataFrame, *, x: str, months_per_period: int) -> float:
    """The WCR-bootstrap p-value of next period's delivery in the fixed-effects model on rates
    that also has ``x`` (``x`` partialled out of both, Frisch-Waugh-Lovell)."""
    data = _with_lead(frame, months_per_period).dropna(subset=["rate", "delivery_rate_lead1", x])
    if data.empty:
        return float("nan")
    area, n_area = _codes(data["area"])
    period, n_period = _codes(data["period"])
    try:
        w = demean(
            data[["rate", "delivery_rate_lead1", x]].to_numpy(float),
            area,
            n_area,
            period,
            n_period,
        )
        lag = w[:, 2]
        if float(lag @ lag) <= 0:
            return float("nan")
        y = w[:, 0] - lag * float(lag @ w[:, 0]) / float(lag @ lag)
        lead = w[:, 1] - lag * float(lag @ w[:, 1]) / float(lag @ lag)
        return wild_ols(y, lead, data["area"].to_numpy()).p_value
    except RegistryError:
        return float("nan")


LEVELS = "parallel trends in levels"


def levels_check(frame: pd.DataFrame, *, x: str) -> Check:
    """Does the additive model's assumption fail in a way that biases delivery's estimate?

    The additive model says a borough's rate is its own level plus London's month. Tukey's
    one-degree-of-freedom test for non-additivity asks whether the product of each borough's
    mean rate and each month's mean rate explains more (it does where crime is a borough's risk
    times a London-wide level: high-rate boroughs rise and fall more). That only biases the
    estimate when delivery follows the same product (programmes in high-rate boroughs growing
    while London falls), so the check fails when both tests reject, each by WCR bootstrap.
    """
    used = frame.dropna(subset=["rate", x])
    area, n_area = _codes(used["area"])
    period, n_period = _codes(used["period"])
    rate = used["rate"].to_numpy(float)
    area_mean = np.bincount(area, rate, n_area) / np.bincount(area, minlength=n_area)
    period_mean = np.bincount(period, rate, n_period) / np.bincount(period, minlength=n_period)
    z = area_mean[area] * period_mean[period]
    clusters = used["area"].to_numpy()
    try:
        w = demean(
            np.column_stack([rate, z, used[x].to_numpy(float)]), area, n_area, period, n_period
        )
        d, zd = w[:, 2], w[:, 1]
        y = w[:, 0] - d * float(d @ w[:, 0]) / float(d @ d)
        zr = zd - d * float(d @ zd) / float(d @ d)
        p_tukey = wild_ols(y, zr, clusters).p_value
        p_delivery = wild_ols(d, zd, clusters).p_value
    except (RegistryError, ZeroDivisionError):
        p_tukey = p_delivery = math.nan
    p = max(p_tukey, p_delivery)
    if math.isfinite(p) and p < ALPHA:
        return Check(
            LEVELS,
            False,
            "the additive model's assumption fails where it matters: boroughs with higher rates "
            f"rose and fell more with London (Tukey's test for non-additivity, {_p_text(p_tukey)}) "
            f"and delivery went with that pattern ({_p_text(p_delivery)}), so its estimate mixes "
            "the two; read the headline Poisson model",
        )
    return Check(
        LEVELS,
        True,
        "No sign that boroughs with higher rates moved more with London in step with delivery "
        f"(Tukey's test for non-additivity {_p_text(p_tukey)}; delivery {_p_text(p_delivery)}).",
    )


def headline_poisson(
    frame: pd.DataFrame,
    *,
    x: str,
    lag: int,
    months_per_period: int = 1,
    frequency: str = "month",
    outcome: str = "",
    outcome_label: str = "",
    caveats: list[str] | None = None,
    family: str = "poisson",
    placebo: bool = True,
) -> ModelResult:
    """The Poisson (or negative-binomial) model with its bootstrap inference, checks and verdict.

    The Poisson model's p-value and interval are the wild score bootstrap's; the negative
    binomial keeps its clustered errors with Student's t on ``G - 1`` degrees of freedom.
    """
    label = outcome_label or outcome
    result = fit_count(frame, family=family, x=x, outcome=outcome, caveats=caveats)
    g = result.n_areas
    crv = {
        "crv_ci_low": result.ci_low,
        "crv_ci_high": result.ci_high,
        "crv_p_value": result.p_value,
    }
    p, low, high = result.p_value, result.ci_low, result.ci_high
    inference = f"clustered by borough, Student's t with {g - 1} degrees of freedom"
    if family == "poisson":
        grid = PoissonGrid.of(frame, [x])
        boot: Bootstrap = score_poisson(grid, estimate=result.estimate, std_error=result.std_error)
        p, low, high = boot.p_value, boot.ci_low, boot.ci_high
        inference = boot.describe()
    q = float(stats.t.ppf(1 - ALPHA / 2, g - 1))
    spread = (high - low) / (2 * q) if math.isfinite(high - low) else result.std_error
    mde = minimum_detectable(max(spread, result.std_error), g - 1)
    checks, notes = _checks(
        frame,
        x=x,
        months_per_period=months_per_period,
        frequency=frequency,
        outcome_label=label,
        placebo=placebo,
        poisson=True,
        resampled=family == "poisson",
    )
    effect = {
        "label": effect_label(family, label, lag, frequency),
        "scale": "percent",
        "value": _percent(result.estimate),
        "ci_low": _percent(low),
        "ci_high": _percent(high),
        "p_value": p,
        "mde": _percent(mde),
        "mde_fall": -_percent(-mde),
        "rate_ratio": _exp(UNIT * result.estimate),
        "ratio_words": (
            f"a rate ratio of {_exp(UNIT * result.estimate):.2f}: the rate multiplied by "
            f"{_exp(UNIT * result.estimate):.2f} per extra {UNIT} opportunities per 1,000 young "
            "people"
        ),
        "inference": inference,
    }
    direction = "lower" if result.estimate < 0 else "higher"
    found = (
        f"Association: the rate of {label} was {direction} after {period_word(frequency)}s with "
        "more delivery in the same borough, by more than chance explains (an association, "
        "not proof that delivery caused it)."
    )
    none_found = (
        f"No detectable association: the data are consistent with delivery making no "
        f"difference to the rate of {label}; a change smaller than about {effect['mde_fall']:.0f}% "
        f"per extra {UNIT} opportunities per 1,000 young people would likely go unseen."
    )
    verdict, text = decide_verdict(p_value=p, checks=checks, found=found, none_found=none_found)
    beta = result.estimate
    fitted = _without_delivery(frame, x, beta)
    extra = {
        **result.extra,
        "irr": _exp(beta),
        "irr_ci_low": _exp(low),
        "irr_ci_high": _exp(high),
        **crv,
        "effect": effect,
        "mde": mde,
        "delivering_boroughs": delivering_boroughs(frame, x),
    }
    return dataclasses.replace(
        result,
        p_value=p,
        ci_low=low,
        ci_high=high,
        caveats=[*result.caveats, *notes],
        extra=extra,
        diagnostics={**result.diagnostics, "inference": inference},
        fitted=fitted,
        fitted_unit=f"{label}, London (sum of boroughs)",
        verdict=verdict,
        verdict_text=text,
        checks=checks,
    )


def _without_delivery(frame: pd.DataFrame, x: str, beta: float) -> pd.DataFrame:
    """Per period, London's observed total and the model's total with delivery's term taken
    out of every borough's mean. (The model's own totals equal the observed ones by
    construction, so a fitted-against-observed chart would say nothing.)"""
    grid = PoissonGrid.of(frame, [x])
    mu = fitted_means(grid, grid.offset + beta * grid.x[0])
    periods = sorted(frame.dropna(subset=[x, "count", "population"])["period"].unique())
    kept = [p for p in periods if p in set(grid.periods)]
    index = {p: i for i, p in enumerate(grid.periods)}
    columns = [index[p] for p in kept]
    return pd.DataFrame(
        {
            "period": kept,
            "observed": (grid.y * grid.mask).sum(0)[columns],
            "without_delivery": (mu * np.exp(-beta * grid.x[0]) * grid.mask).sum(0)[columns],
        }
    )


def _checks(
    frame: pd.DataFrame,
    *,
    x: str,
    months_per_period: int,
    frequency: str,
    outcome_label: str,
    placebo: bool,
    poisson: bool,
    resampled: bool = True,
) -> tuple[list[Check], list[str]]:
    checks: list[Check] = []
    if placebo:
        p = (poisson_placebo_p if poisson else fe_placebo_p)(
            frame, x=x, months_per_period=months_per_period
        )
        checks.append(placebo_check(p, outcome_label=outcome_label, frequency=frequency))
    check, notes = delivering_check(frame, x, resampled=resampled)
    checks.append(check)
    return checks, notes


def fe_with_checks(
    frame: pd.DataFrame,
    *,
    x: str,
    lag: int,
    months_per_period: int = 1,
    frequency: str = "month",
    outcome: str = "",
    outcome_label: str = "",
    caveats: list[str] | None = None,
) -> ModelResult:
    """The additive two-way fixed-effects model on rates, with WCR-bootstrap inference, its
    lead placebo and delivering-borough checks, its assumption stated, and a verdict."""
    label = outcome_label or outcome
    result = fit_fe(frame, x=x, outcome=outcome, caveats=caveats)
    used = frame.dropna(subset=["rate", x])
    area, n_area = _codes(used["area"])
    period, n_period = _codes(used["period"])
    w = demean(used[["rate", x]].to_numpy(float), area, n_area, period, n_period)
    boot = wild_ols(
        w[:, 0],
        w[:, 1],
        used["area"].to_numpy(),
        periods=used["period"].to_numpy(),
        delivery=used[x].to_numpy(float),
    )
    mde = minimum_detectable(result.std_error, n_area - 1)
    checks, notes = _checks(
        frame,
        x=x,
        months_per_period=months_per_period,
        frequency=frequency,
        outcome_label=label,
        placebo=True,
        poisson=False,
    )
    checks.insert(1, levels_check(frame, x=x))
    effect = {
        "label": effect_label("fe", label, lag, frequency),
        "scale": "rate",
        "value": UNIT * result.estimate,
        "ci_low": UNIT * boot.ci_low,
        "ci_high": UNIT * boot.ci_high,
        "p_value": boot.p_value,
        "mde": UNIT * mde,
        "mde_fall": UNIT * mde,
        "inference": boot.describe(),
    }
    direction = "lower" if result.estimate < 0 else "higher"
    found = (
        f"Association (additive model): the rate of {label} per 100,000 was {direction} after "
        f"{period_word(frequency)}s with more delivery in the same borough, by more than "
        "chance explains; this model assumes parallel trends in levels."
    )
    none_found = (
        f"No detectable association (additive model): the data are consistent with delivery "
        f"making no difference to the rate of {label} per 100,000."
    )
    verdict, text = decide_verdict(
        p_value=boot.p_value, checks=checks, found=found, none_found=none_found
    )
    # The fixed-effects fit matches each period's mean by construction; show instead the mean
    # observed rate and the model's rate with delivery's term taken out.
    chart = (
        pd.DataFrame(
            {
                "period": used["period"].to_numpy(),
                "observed": used["rate"].to_numpy(float),
                "without_delivery": used["rate"].to_numpy(float)
                - result.estimate * used[x].to_numpy(float),
            }
        )
        .groupby("period", as_index=False)
        .mean()
    )
    return dataclasses.replace(
        result,
        p_value=boot.p_value,
        ci_low=boot.ci_low,
        ci_high=boot.ci_high,
        caveats=[LEVELS_ASSUMPTION, *result.caveats, *notes],
        extra={
            **result.extra,
            "crv_ci_low": result.ci_low,
            "crv_ci_high": result.ci_high,
            "crv_p_value": result.p_value,
            "effect": effect,
            "mde": mde,
            "delivering_boroughs": delivering_boroughs(frame, x),
        },
        diagnostics={**result.diagnostics, "inference": boot.describe()},
        fitted=chart,
        fitted_unit=f"{label} per 100,000 young people, mean of boroughs",
        verdict=verdict,
        verdict_text=text,
        checks=checks,
    )


def specification_table(
    panels: dict[str, tuple[str, pd.DataFrame]],
    *,
    lags: tuple[int, ...] = (0, 1, 2, 3),
    months_per_period: int = 1,
    frequency: str = "month",
) -> pd.DataFrame:
    """Every outcome × lag with the headline model, and Holm-adjusted p-values over them all.

    ``panels`` maps an outcome code to its label and panel frame (with a column for every lag).
    Holm's step-down controls the chance of any false finding across the whole table, so the
    lag that happens to look best cannot be picked and reported alone.
    """
    rows = []
    for code, (label, frame) in panels.items():
        for lag in lags:
            x = f"delivery_rate_lag{lag}"
            row: dict[str, object] = {"outcome": label, "code": code, "lag": lag}
            try:
                grid = PoissonGrid.of(frame, [x])
                beta, cov = poisson_fe(grid)
                se = math.sqrt(cov[0, 0])
                boot = score_poisson(grid, estimate=float(beta[0]), std_error=se)
                p_placebo = poisson_placebo_p(frame, x=x, months_per_period=months_per_period)
            except (RegistryError, np.linalg.LinAlgError) as exc:
                row.update(note=str(exc), p_value=float("nan"))
                rows.append(row)
                continue
            row.update(
                change_pct=_percent(float(beta[0])),
                ci_low_pct=_percent(boot.ci_low),
                ci_high_pct=_percent(boot.ci_high),
                p_value=boot.p_value,
                placebo_p_value=p_placebo,
                note="",
            )
            rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    tested = table["p_value"].notna()
    table["holm_p_value"] = float("nan")
    if tested.any():
        table.loc[tested, "holm_p_value"] = holm(table.loc[tested, "p_value"].to_numpy(float))[1]
    table["verdict"] = [
        _spec_verdict(r["holm_p_value"], r.get("placebo_p_value", float("nan")))
        for r in table.to_dict(orient="records")
    ]
    return table


def _spec_verdict(holm_p: float, placebo_p: float) -> str:
    if not math.isfinite(holm_p):
        return "not interpretable"
    if math.isfinite(placebo_p) and placebo_p < ALPHA:
        return "not interpretable"
    return "association" if holm_p < ALPHA else "no detectable association"
