"""Count models, interrupted time series and the event study recover planted answers."""

from __future__ import annotations

import datetime as dt
import math
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from registry.analysis.estimators import _two_way_poisson, fit_count, fit_event_study, fit_its
from registry.analysis.result import ASSOCIATION, DENOMINATOR, TARGETING
from registry.errors import RegistryError
from registry.periods import add_months
from tests.analysis_sim import START, count_panel, its_series, staggered_panel

# Slow lane: model fits on simulated panels; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", [1, 2])
def test_poisson_recovers_the_planted_rate_ratio(seed: int) -> None:
    frame = count_panel(seed, beta=-0.05)
    result = fit_count(frame, family="poisson")
    assert result.ci_low <= -0.05 <= result.ci_high
    assert result.extra["irr_ci_low"] <= math.exp(-0.05) <= result.extra["irr_ci_high"]
    assert result.extra["irr"] == pytest.approx(math.exp(result.estimate))
    assert result.diagnostics["overdispersed"] is False
    assert result.caveats[:2] == [ASSOCIATION, TARGETING]
    assert DENOMINATOR in result.caveats


def test_negative_binomial_on_overdispersed_counts() -> None:
    frame = count_panel(3, beta=-0.05, overdispersion=0.5, base_rate=80)
    poisson = fit_count(frame, family="poisson")
    assert poisson.diagnostics["overdispersed"] is True
    assert any(c.startswith("Overdispersion") for c in poisson.caveats)
    negbin = fit_count(frame, family="negbin")
    assert negbin.diagnostics["alpha"] == pytest.approx(0.5, abs=0.2)
    assert negbin.ci_low <= -0.05 <= negbin.ci_high
    assert negbin.diagnostics["nb_pearson_chi2_per_df"] < 1.5


def test_count_model_degenerate_inputs() -> None:
    frame = count_panel(4)
    zero = frame.assign(count=0)
    with pytest.raises(RegistryError, match="Every count in this panel is zero"):
        fit_count(zero)
    one = frame[frame["area"] == "A000"]
    with pytest.raises(RegistryError, match="at least 2 boroughs"):
        fit_count(one)
    flat = frame.assign(delivery_rate_lag1=2.0)
    with pytest.raises(RegistryError, match="No variation"):
        fit_count(flat, family="negbin")


def test_its_on_the_series_alone_finds_a_planted_drop_with_covid_and_break_terms() -> None:
    """London's counts from 2013, a 20% drop at 2019-09, a COVID dip and a recording break."""
    brk = dt.date(2017, 4, 1)
    series = its_series(11, level=-0.2, breaks=((brk, 0.15),))
    at = dt.date(2019, 9, 1)
    result = fit_its(series, at=at, outcome="knife_crime", breaks=[(brk, "new crime system")])
    assert result.model == "its" and result.term == "level_change"
    assert result.ci_low <= -0.2 <= result.ci_high < 0
    assert result.verdict == "association"
    assert result.verdict_text.startswith("A change at the interruption: from 2019-09, London's")
    assert "lower than its own trend and season predicted" in result.verdict_text
    assert {"covid", "break_2017-04", "month_12"} <= set(result.extra["terms"])
    assert result.extra["covid_months"] == "2020-03 to 2021-06"
    assert result.extra["breaks"] == [{"month": brk, "note": "new crime system"}]
    assert result.extra["interruption"] == at and result.n_obs == 120
    assert result.diagnostics["vcov"].startswith("HAC")
    assert result.std_error >= result.diagnostics["newey_west_std_error"]
    # Its caveats are its own: nothing about delivery.
    assert ASSOCIATION not in result.caveats and TARGETING not in result.caveats


def test_its_under_strong_autocorrelation_warns_in_words_and_stays_null() -> None:
    series = its_series(12, rho=0.9, sd=0.12)
    result = fit_its(series, at=dt.date(2019, 9, 1))
    assert result.verdict == "no detectable association"
    assert result.verdict_text.startswith("No detectable change")
    warning = next(c for c in result.caveats if c.startswith("Neighbouring months are alike"))
    assert "Ljung-Box test" in warning and "read the interval, not the point" in warning
    assert result.diagnostics["residual_ar1_rho"] > 0.5


def test_its_break_at_the_interruption_is_not_interpretable() -> None:
    at = dt.date(2019, 9, 1)
    result = fit_its(its_series(13), at=at, breaks=[(at, "new crime system")])
    assert result.verdict == "not interpretable"
    assert "series breaks at 2019-09, the month of the interruption" in result.verdict_text


def test_its_on_a_sparse_series_uses_a_smooth_season() -> None:
    """A borough's homicides: a calendar month with none in any year would send its dummy to
    minus infinity, so the season becomes two sine-cosine pairs, said in words."""
    series = its_series(15, n_months=60, first=dt.date(2017, 1, 1), base=0.3)
    series.loc[[m.month == 2 for m in series["month"]], "count"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = fit_its(series, at=dt.date(2019, 9, 1), area="Sutton")
    assert {"season_sin1", "season_cos2"} <= set(result.extra["terms"])
    assert not any(t.startswith("month_") for t in result.extra["terms"])
    assert any("season is a smooth curve" in c for c in result.caveats)
    assert any(c.startswith("Small counts") for c in result.caveats)


def test_interrupted_time_series_needs_periods_on_both_sides() -> None:
    series = its_series(14, n_months=72, first=dt.date(2014, 1, 1))
    with pytest.raises(RegistryError, match="at least 12 periods"):
        fit_its(series, at=dt.date(2019, 9, 1))


def test_event_study_recovers_growing_staggered_effects_against_not_yet_reached() -> None:
    """Cohorts' effects differ and grow: the imputation estimator still covers the truth."""
    frame, firsts, truth = staggered_panel(3, effect=-0.3)
    result = fit_event_study(frame, first_delivery=firsts, programme="P", pre=4, post=12)
    assert result.model == "event" and result.term == "log_rate_ratio_after_first_delivery"
    assert result.ci_low <= truth <= result.ci_high < 0
    assert result.verdict == "association"
    assert result.verdict_text.startswith("Association: after P first reached a borough")
    assert "not yet or never reached" in result.verdict_text
    coefs = {c["relative_period"]: c for c in result.extra["coefficients"]}
    assert set(coefs) == set(range(-4, 13))
    assert result.extra["pre_trend_p_value"] > 0.05
    assert [c.name for c in result.checks] == ["pre-trend test"] and result.checks[0].passed
    assert result.diagnostics["boroughs_never_reached"] == 13
    assert result.extra["rate_ratio"] == pytest.approx(math.exp(result.estimate))


def test_event_study_imputation_matches_reference_poisson_fits() -> None:
    """References: statsmodels' Poisson GLM with borough and month dummies, fitted to the
    borough-months not yet or never reached, predicts the reached ones, and the overall effect
    is log(observed / predicted) over months 0-12, as Borusyak, Jaravel and Spiess impute; the
    two-way fit itself matches pyfixest's ``fepois`` fitted values."""
    pf = pytest.importorskip("pyfixest")
    frame, firsts, _ = staggered_panel(4, n_areas=20, n_periods=60, n_reached=12)
    result = fit_event_study(frame, first_delivery=firsts, programme="P", pre=3, post=12)
    data = frame.copy()
    data["k"] = [
        (p.year - firsts[a].year) * 12 + p.month - firsts[a].month if a in firsts else -99
        for a, p in zip(data["area"], data["period"], strict=True)
    ]
    data["log_people"] = np.log(data["population"])
    data["month"] = data["period"].astype(str)
    untreated = data[data["k"] < 0].reset_index(drop=True)
    glm = smf.glm(
        "count ~ C(area) + C(month)",
        data=untreated,
        family=sm.families.Poisson(),
        offset=untreated["log_people"],
    ).fit()
    treated = data[(data["k"] >= 0) & (data["k"] <= 12)]
    mu = glm.predict(treated, offset=treated["log_people"])
    assert result.estimate == pytest.approx(math.log(treated["count"].sum() / mu.sum()), abs=1e-6)
    areas, area = np.unique(untreated["area"], return_inverse=True)
    months, month = np.unique(untreated["month"], return_inverse=True)
    a, p = _two_way_poisson(
        untreated["count"].to_numpy(float),
        untreated["population"].to_numpy(float),
        area,
        month,
        (len(areas), len(months)),
    )
    ours = untreated["population"].to_numpy() * a[area] * p[month]
    theirs = pf.fepois("count ~ 1 | area + month", data=untreated, offset="log_people")
    assert ours == pytest.approx(np.asarray(theirs.predict(type="response")), rel=1e-6)


def test_event_study_with_a_pre_trend_is_not_interpretable() -> None:
    frame, firsts, _ = staggered_panel(5, effect=0.0, pre_trend=0.04)
    result = fit_event_study(frame, first_delivery=firsts, programme="P")
    assert result.extra["pre_trend_p_value"] < 0.05
    assert result.verdict == "not interpretable"
    assert result.verdict_text.startswith("Not interpretable: in the 6 periods before first")
    assert "joint pre-trend test" in result.verdict_text
    assert not result.checks[0].passed


def test_event_study_without_controls_or_staggering_is_refused() -> None:
    frame, firsts, _ = staggered_panel(7, n_areas=10, n_periods=48, n_reached=10)
    same = dict.fromkeys(firsts, add_months(START, 24))
    with pytest.raises(RegistryError, match="cannot be separated"):
        fit_event_study(frame, first_delivery=same, programme="P")


def test_event_study_needs_a_reached_borough() -> None:
    frame, _, _ = staggered_panel(8, n_areas=10, n_periods=48, n_reached=4)
    with pytest.raises(RegistryError, match="No borough in the panel"):
        fit_event_study(frame, first_delivery={"Z": dt.date(2019, 1, 1)}, programme="P")
