"""Synthetic control (`vru analyse --model synth`): weights, placebo inference, fit check, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.optimize import minimize

from registry.analysis.result import ASSOCIATION_FOUND, NOT_INTERPRETABLE, VERDICTS
from registry.analysis.synth import estimate_borough, fit_synth, synth_weights
from registry.cli import cli
from tests.analysis_sim import synth_rates


def run(url: str, *args: str):
    return CliRunner().invoke(cli, ["--database-url", url, *args], catch_exceptions=False)


def test_a_borough_that_is_a_mix_of_two_donors_gets_their_weights() -> None:
    rng = np.random.default_rng(3)
    donors = rng.uniform(5, 30, size=(48, 6))
    treated = 0.6 * donors[:, 1] + 0.4 * donors[:, 4]
    weights = synth_weights(treated, donors)
    assert weights == pytest.approx([0, 0.6, 0, 0, 0.4, 0], abs=1e-6)


def test_weights_match_a_second_solver_on_noisy_data() -> None:
    """Against SciPy's SLSQP on the same constrained least squares: the same minimum."""
    rng = np.random.default_rng(7)
    donors = rng.uniform(5, 30, size=(60, 12))
    treated = donors[:, :3].mean(axis=1) + rng.normal(0, 2, 60)
    ours = synth_weights(treated, donors)

    def loss(w: np.ndarray) -> float:
        return float(np.sum((treated - donors @ w) ** 2))

    reference = minimize(
        loss,
        np.full(12, 1 / 12),
        method="SLSQP",
        bounds=[(0, 1)] * 12,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
        options={"ftol": 1e-12, "maxiter": 500},
    ).x
    assert ours.min() >= 0 and ours.sum() == pytest.approx(1)
    assert loss(ours) == pytest.approx(loss(reference), rel=1e-6)
    assert ours == pytest.approx(reference, abs=1e-3)


def _estimate(seed: int, **kwargs):
    rates, population, treated, start = synth_rates(seed, **kwargs)
    donors = [c for c in rates.columns if c != treated]
    return estimate_borough(rates, population, treated, start, donors)


def test_a_planted_20_percent_drop_is_found() -> None:
    one = _estimate(11, effect=-0.2, base=25.0)
    assert one.poor_fit is None
    assert one.fit.relative_gap == pytest.approx(-0.2, abs=0.06)
    assert one.test.p_value < 0.05
    low, high = one.test.interval()
    assert low <= -0.2 <= high
    # About 20% of the borough's post-start crimes, counted from its own population.
    post = one.fit.treated[~one.fit.pre] * 60_000 / 100_000
    assert one.gap_count == pytest.approx(-0.25 * post.sum(), rel=0.35)


def test_no_effect_is_not_an_association() -> None:
    one = _estimate(12, effect=0.0)
    assert one.test.p_value >= 0.05
    low, high = one.test.interval()
    assert low <= 0 <= high


def test_the_highest_borough_in_london_is_reported_as_poorly_fitted() -> None:
    one = _estimate(13, effect=-0.2, treated_risk=4.0)
    assert one.poor_fit is not None and "higher than every donor's" in one.poor_fit
    fit_check = one.checks("Lambeth")[0]
    assert not fit_check.passed
    assert "does not track Lambeth before the start" in fit_check.detail


def test_a_false_start_is_checked_in_the_pre_period() -> None:
    one = _estimate(14)
    assert one.time_test is not None
    assert one.time_test.fit.start < one.fit.start
    assert (one.time_test.fit.treated.index < one.fit.start).all()


def test_fit_needs_months_both_sides() -> None:
    rates, _, treated, _ = synth_rates(1, n_months=30, start_index=20)
    with pytest.raises(Exception, match="both before and after"):
        fit_synth(rates, treated, rates.index[-1].replace(year=2100), list(rates.columns[:3]))


def test_cli_json_for_one_borough(seeded_url: str) -> None:
    result = run(
        seeded_url,
        "analyse",
        "--model",
        "synth",
        "--outcome",
        "knife_crime_injury_u25",
        "--borough",
        "Hackney",
        "--at",
        "2019-09",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["verdict"] in VERDICTS and data["verdict_text"]
    assert list(data)[:3] == ["verdict", "verdict_text", "checks"]
    assert {c["name"] for c in data["checks"]} >= {"pre-period fit", "placebo in time"}
    (hackney,) = data["boroughs"]
    assert hackney["gss_code"] == "E09000012" and hackney["start"] == "2019-09"
    assert sum(d["weight"] for d in hackney["donors"]) == pytest.approx(1, abs=0.01)
    assert "Hackney" not in {d["borough"] for d in hackney["donors"]}
    assert hackney["placebos"] == data["n_areas"] - 1
    assert data["model"] == "synth" and data["estimate"] == hackney["relative_gap"]
    assert "Synthetic demo data" in data["caveats"][0]


def test_cli_text_leads_with_the_verdict_and_pools_a_programme(seeded_url: str) -> None:
    result = run(
        seeded_url,
        "analyse",
        "--model",
        "synth",
        "--outcome",
        "knife_crime_injury_u25",
        "--programme",
        "Boxing for Change",
    )
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith(("Across ", "No detectable difference: across ", "Not interpretable"))
    assert "donors:" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--borough", "Lambth"], "Did you mean 'Lambeth'?"),
        ([], "Name a borough (--borough B) or a programme (--programme P)."),
        (["--borough", "Hackney", "--from", "2019-01"], "a synthetic control needs at least 24"),
        (["--borough", "Hackney", "--to", "2017-06"], "there is no period after the start"),
    ],
)
def test_refusals_exit_1_in_words(seeded_url: str, args: list[str], message: str) -> None:
    command = ["analyse", "--model", "synth", "--outcome", "knife_crime_injury_u25", *args]
    result = CliRunner().invoke(cli, ["--database-url", seeded_url, *command])
    assert result.exit_code == 1
    assert message.lower() in result.output.lower()
    assert "Traceback" not in result.output


def test_verdicts_on_simulated_boroughs() -> None:
    found = [_estimate(s, effect=-0.25, base=30.0) for s in range(20, 24)]
    assert sum(e.test.p_value < 0.05 and e.poor_fit is None for e in found) >= 3
    poor = _estimate(30, effect=0.0, treated_risk=5.0)
    from registry.analysis.synth import synth_result

    rates, _, _, _ = synth_rates(30, treated_risk=5.0)
    result = synth_result("Knife crime", "k", [poor], rates, list(rates.columns[1:]), [])
    assert result.verdict == NOT_INTERPRETABLE
    assert result.verdict_text.startswith("Not interpretable: the synthetic borough does not")
    good = synth_result("Knife crime", "k", [found[0]], rates, list(rates.columns[1:]), [])
    assert good.verdict in {ASSOCIATION_FOUND, NOT_INTERPRETABLE}
    assert isinstance(good.fitted, pd.DataFrame) and list(good.fitted) == [
        "period",
        "observed",
        "fitted",
    ]
