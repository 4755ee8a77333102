"""The headline model, its bootstrap, its checks and verdicts, on panels with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.stats.multitest import multipletests

from registry.analysis import inference
from registry.analysis.estimators import event_study_percent, fit_count
from registry.analysis.fixed_effects import _codes, demean
from registry.analysis.headline import fe_with_checks, headline_poisson, specification_table
from registry.analysis.inference import (
    PoissonGrid,
    _borough_scores,
    _partial,
    cluster_weights,
    holm,
    minimum_detectable,
    poisson_fe,
    reassigned_scores,
    reassignment_p,
    reassignments,
    score_poisson,
    wild_ols,
)
from registry.analysis.result import (
    ASSOCIATION_FOUND,
    NO_ASSOCIATION,
    NOT_INTERPRETABLE,
    Check,
    decide_verdict,
)
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
    few = next(c for c in result.caveats if c.startswith("Few boroughs: only 2 of 33"))
    assert "a randomisation test over which boroughs delivered" in few
    assert (
        "randomisation test that gives the boroughs' delivery paths"
        in (result.diagnostics["inference"])
    )
    # The negative binomial keeps its clustered t interval: its warning says that is too narrow.
    negbin = headline_poisson(frame, x=X, lag=1, family="negbin")
    few = next(c for c in negbin.caveats if c.startswith("Few boroughs: only 2 of 33"))
    assert "clustered interval and p-value are too narrow" in few and "bootstrap by" not in few


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


@pytest.mark.slow
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


def test_not_interpretable_is_a_sentence_with_a_full_stop() -> None:
    def verdict(*details: str) -> str:
        checks = [Check(f"check {i}", False, d) for i, d in enumerate(details)]
        return decide_verdict(p_value=0.01, checks=checks, found="F.", none_found="N.")[1]

    assert verdict("the lead placebo failed") == "Not interpretable: the lead placebo failed."
    assert verdict("one", "two.") == "Not interpretable: one; two."
    assert decide_verdict(p_value=float("nan"), checks=[], found="F.", none_found="N.")[1] == (
        "Not interpretable: the model gave no usable estimate."
    )


def _within(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    used = frame.dropna(subset=["rate", X])
    area, n_area = _codes(used["area"])
    period, n_period = _codes(used["period"])
    w = demean(used[["rate", X]].to_numpy(float), area, n_area, period, n_period)
    return w[:, 0], w[:, 1]


def _grid_codes(shape: tuple[int, int]) -> tuple[np.ndarray, int, np.ndarray, int]:
    """Borough and period codes of a complete borough × period grid, row by row."""
    area, period = np.indices(shape)
    return area.ravel(), shape[0], period.ravel(), shape[1]


def test_reassigned_scores_of_the_boroughs_own_paths_are_the_models_scores() -> None:
    """The fast reassignment sums give, for the boroughs' own delivery, exactly the per-borough
    scores and the information of the restricted Poisson fit and of the two-way demeaned
    additive model; moving a path to another borough moves its score there."""
    frame = risk_panel(11, n_periods=36, start=6, delivering=5, targeted=False)
    grid = PoissonGrid.of(frame, [X])
    own = np.arange(grid.y.shape[0])[None, :]
    for b0 in (0.0, 0.04):
        scores, mu = _borough_scores(grid, 0, b0)
        residual = np.where(grid.mask, grid.y - mu, 0.0)
        mine, information = reassigned_scores(grid.x[0] * grid.mask, mu, residual, own)
        np.testing.assert_allclose(mine[0], scores, atol=1e-9 * np.abs(scores).max())
        tilde = _partial(grid, grid.x[0], mu)
        assert information[0] == pytest.approx(float(np.sum(mu * tilde**2)), rel=1e-8)
    y, x = _within(frame)
    shape = grid.y.shape
    mine, information = reassigned_scores(grid.x[0], np.ones(shape), y.reshape(shape), own)
    np.testing.assert_allclose(mine[0], (x * y).reshape(shape).sum(1), atol=1e-9)
    assert information[0] == pytest.approx(float(x @ x), rel=1e-8)
    # Swap a delivering borough's path with a non-delivering one's (a row of zeros).
    source = int(np.flatnonzero(grid.x[0].any(1))[0])
    target = int(np.flatnonzero(~grid.x[0].any(1))[0])
    swap = own.copy()
    swap[0, [source, target]] = [target, source]
    moved = grid.x[0][swap[0]]
    swapped = reassigned_scores(grid.x[0], np.ones(shape), y.reshape(shape), swap)[0][0]
    within_moved = demean(moved.reshape(-1, 1), *_grid_codes(shape))[:, 0]
    np.testing.assert_allclose(swapped, (within_moved * y).reshape(shape).sum(1), atol=1e-9)


def test_one_delivering_borough_of_six_cannot_be_surer_than_one_in_six() -> None:
    """A randomisation test over which borough delivered can do no better than 1 in 6 with one
    delivering borough of six, however large the effect: the combined p-value is at least that
    test's, and says in words which tests were used."""
    frame = risk_panel(
        12, n_areas=6, n_periods=48, start=12, delivering=1, targeted=False, beta=-0.3
    )
    grid = PoissonGrid.of(frame, [X])
    beta, cov = poisson_fe(grid)
    boot = score_poisson(grid, estimate=float(beta[0]), std_error=float(np.sqrt(cov[0, 0])))
    _, mu = _borough_scores(grid, 0, 0.0)
    residual = np.where(grid.mask, grid.y - mu, 0.0)
    alone = reassignment_p(grid.x[0] * grid.mask, mu, residual, reassignments(6))
    assert alone > 0.12 and boot.p_value >= alone
    assert boot.reassignments == 999 and boot.delivering == 1
    assert "randomisation test that gives the boroughs' delivery paths" in boot.describe()
    assert boot.ci_low <= 0 <= boot.ci_high
    y, x = _within(frame)
    used = frame.dropna(subset=["rate", X])
    ols = wild_ols(
        y, x, used["area"].to_numpy(), periods=used["period"].to_numpy(), delivery=used[X]
    )
    assert ols.p_value > 0.12 and ols.reassignments == 999


def test_null_panels_the_bootstraps_alone_would_call_significant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Known null panels with delivery in randomly chosen boroughs where the bootstrap alone
    rejects at 5% (8 boroughs, homicide-sized counts: score bootstrap p = 0.014; 4 boroughs,
    knife-sized: WCR p = 0.039) but the randomisation test does not: the combined p-value does
    not either."""
    flat = {"targeted": False, "london_fall": 0.0}
    grid = PoissonGrid.of(risk_panel(1003046, per_borough_month=0.3, delivering=8, **flat), [X])
    frame = risk_panel(1000283, delivering=4, **flat)
    used = frame.dropna(subset=["rate", X])
    y, x = _within(frame)

    def ols() -> float:
        return wild_ols(
            y, x, used["area"].to_numpy(), periods=used["period"].to_numpy(), delivery=used[X]
        ).p_value

    combined = score_poisson(grid).p_value, ols()
    monkeypatch.setattr(inference, "FEW_DELIVERING", 0)
    alone = score_poisson(grid).p_value, ols()
    assert alone[0] < 0.05 <= combined[0]
    assert alone[1] < 0.05 <= combined[1]


def test_many_delivering_boroughs_keep_the_bootstrap_alone() -> None:
    frame = risk_panel(13, n_periods=36, start=6, delivering=12, targeted=False)
    result = headline_poisson(frame, x=X, lag=1)
    assert "randomisation" not in result.diagnostics["inference"]
    assert not any("randomisation" in c for c in result.caveats)


def test_event_study_changes_are_percentages() -> None:
    table = event_study_percent(
        [
            {
                "relative_period": -1,
                "estimate": 0.0,
                "ci_low": -0.1,
                "ci_high": 0.1,
                "p_value": 0.9,
                "boroughs": 5,
            },
            {
                "relative_period": 2,
                "estimate": np.log(0.8),
                "ci_low": np.log(0.5),
                "ci_high": np.log(1.25),
                "p_value": 0.04,
                "boroughs": 4,
            },
        ]
    )
    assert list(table.columns) == [
        "Periods since first delivery",
        "Change in counts (%)",
        "Change, lower 95% limit (%)",
        "Change, upper 95% limit (%)",
        "p-value",
        "Boroughs",
    ]
    np.testing.assert_allclose(table["Change in counts (%)"], [0.0, -20.0])
    np.testing.assert_allclose(table["Change, lower 95% limit (%)"], [100 * np.expm1(-0.1), -50.0])
    np.testing.assert_allclose(table["Change, upper 95% limit (%)"], [100 * np.expm1(0.1), 25.0])
