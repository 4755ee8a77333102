"""The headline model, its bootstrap, its checks and verdicts, on panels with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.stats.multitest import multipletests

from registry.analysis.fixed_effects import _codes, demean
from registry.analysis.headline import fe_with_checks, headline_poisson, specification_table
from registry.analysis.inference import (
    PoissonGrid,
    cluster_weights,
    holm,
    minimum_detectable,
    poisson_fe,
    score_poisson,
    wild_ols,
)
from registry.analysis.models import fit_count
from registry.analysis.result import ASSOCIATION_FOUND, NO_ASSOCIATION, NOT_INTERPRETABLE
from tests.analysis_sim import count_panel, linear_panel, risk_panel

X = "delivery_rate_lag1"


def test_null_panel_says_no_detectable_association() -> None:
    frame = risk_panel(3, n_periods=60, start=12)
    result = headline_poisson(frame, x=X, lag=1, outcome_label="knife crime")
    assert result.verdict == NO_ASSOCIATION
    assert result.verdict_text.startswith("No detectable association")
    assert result.ci_low <= 0 <= result.ci_high
    assert [c.name for c in result.checks] == ["lead placebo", "delivering boroughs"]
    assert all(c.passed for c in result.checks)
    assert result.to_dict()["verdict"] == NO_ASSOCIATION
    # The minimum detectable effect is given beside the estimate, in words and numbers.
    assert result.extra["effect"]["mde"] > 0 and "would likely go unseen" in result.verdict_text


def test_planted_effect_is_found_and_covered() -> None:
    frame = risk_panel(4, n_periods=60, start=12, beta=-0.05)
    result = headline_poisson(frame, x=X, lag=1, outcome_label="knife crime")
    assert result.verdict == ASSOCIATION_FOUND
    assert "lower" in result.verdict_text
    assert result.ci_low <= -0.05 <= result.ci_high
    effect = result.extra["effect"]
    assert effect["value"] == pytest.approx(100 * (np.exp(10 * result.estimate) - 1))
    assert effect["label"].startswith(
        "Change in the rate of knife crime (%) per extra 10 opportunities per 1,000 young people"
    )


def test_delivery_that_chases_crime_is_not_interpretable() -> None:
    frame = risk_panel(5, n_periods=60, chase=True)
    for result in (
        headline_poisson(frame, x=X, lag=1, outcome_label="knife crime"),
        fe_with_checks(frame, x=X, lag=1, outcome_label="knife crime"),
    ):
        assert result.verdict == NOT_INTERPRETABLE
        assert result.verdict_text.startswith("Not interpretable: the lead placebo failed")
        assert not next(c for c in result.checks if c.name == "lead placebo").passed


def test_too_few_delivering_boroughs_is_not_interpretable() -> None:
    frame = risk_panel(6, n_periods=48, start=12, delivering=2, targeted=False)
    result = headline_poisson(frame, x=X, lag=1)
    assert result.verdict == NOT_INTERPRETABLE and "only 2 of 33 boroughs" in result.verdict_text
    assert any(c.startswith("Few boroughs: only 2 of 33") for c in result.caveats)


def test_fe_states_its_assumption_and_uses_the_bootstrap() -> None:
    frame = linear_panel(7, n_areas=12, n_periods=24)
    frame["count"] = 1
    frame["young_people"] = 1000.0
    frame[X] = frame.groupby("area")["delivery_rate"].shift(1)
    result = fe_with_checks(frame, x=X, lag=1)
    assert result.caveats[0].startswith("Parallel trends in levels")
    assert result.diagnostics["inference"].startswith("Wild cluster (restricted, WCR)")
    assert result.extra["crv_p_value"] != result.p_value
    # Additive data: the check of the additive model's assumption passes.
    assert next(c for c in result.checks if c.name == "parallel trends in levels").passed


def test_fe_is_not_interpretable_when_risk_is_multiplicative_and_delivery_targeted() -> None:
    """Delivery grows in high-risk boroughs while London falls, no effect: the additive model
    finds one, and its own check says it cannot be read."""
    frame = risk_panel(9, n_periods=60, start=12)
    result = fe_with_checks(frame, x=X, lag=1, outcome_label="knife crime")
    levels = next(c for c in result.checks if c.name == "parallel trends in levels")
    assert not levels.passed and "Tukey's test for non-additivity" in levels.detail
    assert result.verdict == NOT_INTERPRETABLE
    assert "read the headline Poisson model" in result.verdict_text
    assert headline_poisson(frame, x=X, lag=1).verdict == NO_ASSOCIATION


@pytest.mark.parametrize("seed", [1, 2])
def test_wild_cluster_bootstrap_matches_wildboottest(seed: int) -> None:
    """With 8 boroughs both enumerate all 256 Rademacher sign patterns: the same p-values."""
    from wildboottest.wildboottest import wildboottest

    frame = linear_panel(seed, n_areas=8, n_periods=24, effect=0.2)
    frame["period"] = frame["period"].astype(str)
    model = smf.ols("rate ~ delivery_rate + C(area) + C(period)", data=frame)
    reference = wildboottest(
        model,
        B=999,
        cluster=pd.factorize(frame["area"])[0],
        param="delivery_rate",
        weights_type="rademacher",
        seed=1,
        show=False,
    )
    area, n_area = _codes(frame["area"])
    period, n_period = _codes(frame["period"])
    within = demean(
        frame[["rate", "delivery_rate"]].to_numpy(float), area, n_area, period, n_period
    )
    mine = wild_ols(within[:, 0], within[:, 1], frame["area"].to_numpy(), kind="rademacher")
    assert mine.draws == 256
    # The two differ at most in the two sign patterns that give back the sample's own |t| (all +1
    # and all -1): they count here, as an exact randomisation test counts them, and in
    # wildboottest (strict ``<``) only when rounding puts them a hair above the sample's |t|,
    # which varies between machines.
    assert mine.p_value == pytest.approx(float(reference["p-value"].iloc[0]), abs=2 / 256 + 1e-12)
    assert mine.p_value >= 2 / 256
    assert mine.ci_low < 0.2 < mine.ci_high


def test_webb_weights_below_twelve_boroughs() -> None:
    w, kind = cluster_weights(8, 999)
    assert kind == "Webb six-point" and w.shape == (999, 8)
    assert set(np.round(np.abs(w).ravel() ** 2, 6)) == {0.5, 1.0, 1.5}
    assert cluster_weights(33, 999)[1] == "Rademacher"


def test_fast_poisson_matches_statsmodels_and_the_score_is_zero_at_the_estimate() -> None:
    frame = count_panel(3, n_areas=12, n_periods=24, beta=-0.05)
    grid = PoissonGrid.of(frame, [X])
    beta, cov = poisson_fe(grid)
    reference = fit_count(frame, x=X)
    assert beta[0] == pytest.approx(reference.estimate, abs=1e-8)
    # Cluster sandwich, G/(G-1) only (statsmodels also multiplies by (N-1)/(N-K)).
    assert np.sqrt(cov[0, 0]) == pytest.approx(reference.std_error, rel=0.1)
    boot = score_poisson(grid, estimate=float(beta[0]), std_error=float(np.sqrt(cov[0, 0])))
    assert boot.ci_low < beta[0] < boot.ci_high and boot.p_value < 0.05


def test_count_models_use_student_t_on_boroughs_minus_one() -> None:
    frame = count_panel(4, n_areas=10, n_periods=24)
    result = fit_count(frame, x=X)
    from scipy import stats

    q = stats.t.ppf(0.975, 9)
    assert result.ci_high - result.estimate == pytest.approx(q * result.std_error)


def test_minimum_detectable_effect_at_80_percent_power() -> None:
    assert minimum_detectable(1.0, 10_000) == pytest.approx(1.96 + 0.8416, abs=1e-3)


def test_specification_table_adjusts_across_every_row() -> None:
    frame = risk_panel(8, n_periods=48, start=12)
    for lag in (0, 2, 3):
        frame[f"delivery_rate_lag{lag}"] = frame.groupby("area")["delivery_rate"].shift(lag)
    table = specification_table({"knife": ("Knife crime", frame)})
    assert len(table) == 4 and list(table["lag"]) == [0, 1, 2, 3]
    assert (table["holm_p_value"] >= table["p_value"]).all()
    assert table["holm_p_value"].max() <= 1
    assert set(table["verdict"]) <= {ASSOCIATION_FOUND, NO_ASSOCIATION, NOT_INTERPRETABLE}


@pytest.mark.parametrize("seed", range(6))
def test_holm_matches_statsmodels(seed: int) -> None:
    """The correction used for borough and specification families gives statsmodels' figures,
    ties and p-values at the threshold included."""
    rng = np.random.default_rng(seed)
    p = np.round(rng.uniform(0, 0.2, size=int(rng.integers(1, 40))), 3)
    p[: len(p) // 3] = p[0]  # ties
    p[-1] = 0.05 / len(p)  # exactly Holm's first threshold
    reject, adjusted = holm(p)
    expected_reject, expected_adjusted, _, _ = multipletests(p, alpha=0.05, method="holm")
    np.testing.assert_allclose(adjusted, expected_adjusted)
    np.testing.assert_array_equal(reject, expected_reject)
