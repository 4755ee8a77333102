"""Two-way fixed effects: equal to pyfixest and the dummy-variable fit; right on known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from scipy import stats
from statsmodels.stats.sandwich_covariance import cov_cluster

from registry.analysis.estimators import lead_placebo
from registry.analysis.fixed_effects import fit_fe, fit_fe_dummies, fit_within, permute_areas
from registry.errors import RegistryError
from tests.analysis_sim import linear_panel

# Slow lane: fixed-effects fits; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow


def _pyfixest(frame: pd.DataFrame):
    data = frame.rename(columns={"area": "borough", "period": "month"})
    data["month"] = data["month"].astype(str)
    return pf.feols("rate ~ delivery_rate | borough + month", data=data, vcov={"CRV1": "borough"})


@pytest.mark.parametrize("drop", [0.0, 0.15], ids=["balanced", "unbalanced"])
def test_estimate_and_standard_error_equal_pyfixest(drop: float) -> None:
    frame = linear_panel(7, n_areas=12, n_periods=30, effect=0.5)
    if drop:
        frame = frame.sample(frac=1 - drop, random_state=3).sort_index()
    ours = fit_fe(frame, x="delivery_rate")
    theirs = _pyfixest(frame)
    assert ours.estimate == pytest.approx(theirs.coef().iloc[0], abs=1e-6)
    assert ours.std_error == pytest.approx(theirs.se().iloc[0], abs=1e-6)
    assert ours.p_value == pytest.approx(theirs.pvalue().iloc[0], abs=1e-6)
    assert ours.ci_low == pytest.approx(theirs.confint().iloc[0, 0], abs=1e-6)
    assert ours.ci_high == pytest.approx(theirs.confint().iloc[0, 1], abs=1e-6)


def test_two_regressors_equal_pyfixest() -> None:
    frame = linear_panel(8, n_areas=10, n_periods=20, effect=-0.3)
    frame["other"] = np.random.default_rng(1).normal(size=len(frame))
    ours = fit_within(frame, y="rate", x=["delivery_rate", "other"])
    data = frame.rename(columns={"area": "borough", "period": "month"})
    data["month"] = data["month"].astype(str)
    theirs = pf.feols(
        "rate ~ delivery_rate + other | borough + month", data=data, vcov={"CRV1": "borough"}
    )
    np.testing.assert_allclose(ours.params, theirs.coef().to_numpy(), atol=1e-6)
    np.testing.assert_allclose(ours.std_errors(), theirs.se().to_numpy(), atol=1e-6)


def test_small_sample_factor_is_the_one_pyfixest_uses() -> None:
    """CRV1 · G/(G-1) · (N-1)/(N-K) with K = terms + period levels (borough FE nested)."""
    frame = linear_panel(9, n_areas=9, n_periods=14, effect=0.2)
    ours = fit_fe(frame, x="delivery_rate")
    import statsmodels.api as sm

    from registry.analysis.fixed_effects import _codes, demean

    a, na = _codes(frame["area"])
    p, np_ = _codes(frame["period"])
    within = demean(frame[["rate", "delivery_rate"]].to_numpy(), a, na, p, np_)
    raw = cov_cluster(sm.OLS(within[:, 0], within[:, 1:]).fit(), a, use_correction=False)
    n, g, k = len(frame), na, 1 + np_
    expected = np.sqrt(raw[0, 0] * g / (g - 1) * (n - 1) / (n - k))
    assert ours.std_error == pytest.approx(expected, rel=1e-12)
    assert ours.std_error == pytest.approx(_pyfixest(frame).se().iloc[0], abs=1e-9)


def test_estimate_equals_the_dummy_variable_fit() -> None:
    frame = linear_panel(10, n_areas=15, n_periods=24, effect=0.4).sample(frac=0.9, random_state=1)
    estimate, _se = fit_fe_dummies(frame, x="delivery_rate")
    assert fit_fe(frame, x="delivery_rate").estimate == pytest.approx(estimate, abs=1e-9)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_planted_effect_is_inside_the_interval(seed: int) -> None:
    frame = linear_panel(seed, n_areas=20, n_periods=24, effect=-0.8)
    result = fit_fe(frame, x="delivery_rate")
    assert result.ci_low <= -0.8 <= result.ci_high
    assert result.ci_high < 0  # and the effect is found
    assert (result.n_obs, result.n_areas, result.n_periods) == (480, 20, 24)


def test_false_positive_rate_is_near_five_percent() -> None:
    seeds = 200
    rejected = sum(
        fit_fe(linear_panel(1000 + s, n_areas=15, n_periods=12), x="delivery_rate").p_value < 0.05
        for s in range(seeds)
    )
    low, high = stats.binom.ppf([0.001, 0.999], seeds, 0.05)
    assert low <= rejected <= high, f"{rejected} of {seeds} rejected at 5%"


def test_permutation_inference_separates_effect_from_none() -> None:
    with_effect = linear_panel(21, n_areas=15, n_periods=20, effect=-0.8)
    without = linear_panel(22, n_areas=15, n_periods=20, effect=0.0)
    p_effect, draws = permute_areas(with_effect, x="delivery_rate", n_permutations=99, seed=5)
    p_none, _ = permute_areas(without, x="delivery_rate", n_permutations=99, seed=5)
    assert len(draws) == 99
    assert p_effect <= 0.02
    assert p_none > 0.05
    again, _ = permute_areas(with_effect, x="delivery_rate", n_permutations=99, seed=5)
    assert again == p_effect  # a fixed seed gives the same answer


def test_lead_placebo_finds_nothing_when_only_the_past_matters() -> None:
    rng = np.random.default_rng(4)
    frame = linear_panel(31, n_areas=20, n_periods=30)
    frame = frame.sort_values(["area", "period"]).reset_index(drop=True)
    frame["delivery_rate_lag1"] = frame.groupby("area")["delivery_rate"].shift(1)
    frame["rate"] = -0.8 * frame["delivery_rate_lag1"].fillna(0) + rng.normal(size=len(frame))
    frame["count"] = 1
    frame = frame.dropna()
    placebo = lead_placebo(frame, lag=1, lead=1)
    assert placebo.term == "delivery_rate_lead1"
    assert placebo.ci_low <= 0 <= placebo.ci_high
    assert placebo.extra["lag_estimate"] == pytest.approx(-0.8, abs=0.15)


def test_one_borough_is_refused() -> None:
    frame = linear_panel(1, n_areas=1, n_periods=12)
    with pytest.raises(RegistryError, match="at least 2 boroughs"):
        fit_fe(frame, x="delivery_rate")


def test_no_variation_in_delivery_is_refused() -> None:
    frame = linear_panel(1, n_areas=5, n_periods=12)
    frame["delivery_rate"] = 3.0
    with pytest.raises(RegistryError, match="No variation in delivery in the same period"):
        fit_fe(frame, x="delivery_rate")


def test_all_zero_outcome_is_refused() -> None:
    frame = linear_panel(1, n_areas=5, n_periods=12)
    frame["rate"] = 0.0
    with pytest.raises(RegistryError, match="zero"):
        fit_fe(frame, x="delivery_rate")


def test_indistinguishable_lead_and_lag_are_named_in_words() -> None:
    # Delivery rising in a straight line in every borough: one period later and one period
    # earlier differ by a borough constant, which the borough effects take out.
    frame = linear_panel(41, n_areas=6, n_periods=12)
    frame = frame.sort_values(["area", "period"]).reset_index(drop=True)
    step = frame.groupby("area").cumcount().astype(float)
    frame["delivery_rate"] = frame["area"].str[1:].astype(float) * step
    frame["count"] = 1
    with pytest.raises(RegistryError) as caught:
        lead_placebo(frame, lag=1, lead=1)
    message = str(caught.value)
    assert message.startswith(
        "Delivery 1 period later and delivery 1 period earlier cannot be told apart"
    )
    assert "delivery_rate" not in message
