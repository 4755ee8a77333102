"""`vru trend` and `vru analyse` on the demo data: JSON shapes, every model, one-line refusals."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from registry.cli import cli

KEYS = [
    "verdict",
    "verdict_text",
    "checks",
    "model",
    "outcome",
    "term",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "p_value",
    "n_obs",
    "n_areas",
    "n_periods",
    "caveats",
]


def run(url: str, *args: str):
    return CliRunner().invoke(cli, ["--database-url", url, *args], catch_exceptions=False)


def test_trend_json_shape(seeded_url: str) -> None:
    result = run(
        seeded_url,
        "trend",
        "--measure",
        "knife_crime_injury_u25",
        "--end",
        "2025-12",
        "--baseline-end",
        "2019-12",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data) == [
        "measure",
        "area",
        "window_months",
        "current",
        "baseline",
        "change_pct",
        "ci_low",
        "ci_high",
        "p_value",
        "series_breaks",
        "overdispersion",
    ]
    assert data["area"] == "London" and data["window_months"] == 12
    assert data["current"]["start"] == "2025-01" and data["baseline"]["end"] == "2019-12"
    assert set(data["current"]) == {"start", "end", "count", "unallocated", "months_stored"}
    assert data["current"]["unallocated"] > 0
    assert data["ci_low"] <= data["change_pct"] <= data["ci_high"]
    assert round(data["change_pct"], 1) == data["change_pct"]
    od = data["overdispersion"]
    assert od["dispersion"] >= 1 and od["year_pairs"] >= 3
    assert od["ci_low"] <= data["change_pct"] <= od["ci_high"]
    text = run(
        seeded_url,
        "trend",
        "--measure",
        "homicide",
        "--end",
        "2025-12",
        "--baseline-end",
        "2019-12",
        "--borough",
        "Westminster",
    )
    assert text.exit_code == 0 and text.stdout.startswith("homicide, Westminster:")
    assert "Baseline sensitivity" in text.stdout
    assert "12 months to 2025-12 vs 2018-01 to 2018-12" in text.stdout
    london = run(
        seeded_url,
        "trend",
        "--measure",
        "gun_crime",
        "--end",
        "2025-12",
        "--baseline-end",
        "2019-12",
    )
    assert "significant after Holm's correction for 32 tests" in london.stdout


@pytest.mark.parametrize("model", ["fe", "poisson", "negbin", "its", "event"])
def test_every_model_runs_on_the_demo_data(seeded_url: str, model: str) -> None:
    args = ["analyse", "--outcome", "knife_crime_injury_u25", "--model", model, "--json"]
    args += ["--from", "2017-01", "--to", "2022-12"]
    if model == "event":
        args += ["--programme", "Street Mentors"]
    result = run(seeded_url, *args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data)[: len(KEYS)] == KEYS
    assert data["model"] == model and data["n_areas"] == 32
    assert data["ci_low"] <= data["estimate"] <= data["ci_high"]
    assert isinstance(data["estimate"], float) and isinstance(data["n_obs"], int)
    if model == "its":
        # ITS reads the outcome series alone, so its caveats are its own (issue #14.5): none
        # about delivery or the population denominator.
        assert any(c.startswith("An interrupted time series compares") for c in data["caveats"])
    else:
        assert any(c.startswith("Association, not causation") for c in data["caveats"])
        assert any("Westminster" in c for c in data["caveats"])
    if model == "fe":
        assert data["term"] == "delivery_rate_lag1"
        assert 0 < data["permutation_p_value"] <= 1
        assert data["lead_placebo"]["term"] == "delivery_rate_lead1"
    if model in {"poisson", "negbin"}:
        assert data["irr_ci_low"] <= data["irr"] <= data["irr_ci_high"]
    if model == "its":
        assert data["interruption"] == "2019-09" and "slope_change" in data
        assert data["covid_months"] == "2020-03 to 2021-06"
    if model == "event":
        periods = [c["relative_period"] for c in data["coefficients"]]
        # Imputation needs no reference period: the months before first delivery are placebo
        # estimates in their own right, -1 included.
        assert -1 in periods and 0 in periods


def test_trend_text_gives_the_interval_allowing_for_overdispersion(seeded_url: str) -> None:
    """The same sentence as the Models page (TrendChange.overdispersion_words), with the
    figures of the JSON."""
    args = ["trend", "--measure", "knife_crime_injury_u25", "--end", "2025-12"]
    args += ["--baseline-end", "2019-12"]
    od = json.loads(run(seeded_url, *args, "--json").stdout)["overdispersion"]
    result = run(seeded_url, *args)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if "overdispersion" in x).strip()
    assert line.startswith(
        f"Allowing for overdispersion: {od['ci_low']:+.1f}% to {od['ci_high']:+.1f}% (p = "
    )
    assert f"judged from {od['year_pairs']} year-on-year pairs" in line


def test_planted_demo_effect_points_the_right_way(seeded_url: str) -> None:
    """The demo plants lower counts after more delivery (demo.PLANTED_EFFECT < 0)."""
    result = run(seeded_url, "analyse", "--outcome", "gun_crime", "--model", "poisson", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["irr"] < 1


def test_demo_data_is_said_to_be_synthetic(seeded_url: str) -> None:
    from registry.demo import SYNTHETIC_NOTE

    model = run(seeded_url, "analyse", "--outcome", "homicide", "--model", "its", "--json")
    assert model.exit_code == 0, model.output
    assert json.loads(model.stdout)["caveats"][0] == SYNTHETIC_NOTE
    args = ["trend", "--measure", "homicide", "--end", "2025-12", "--baseline-end", "2019-12"]
    trend = run(seeded_url, *args, "--borough", "Camden")
    assert trend.exit_code == 0, trend.output
    assert f"Note: {SYNTHETIC_NOTE}" in trend.stderr


def test_real_data_carries_no_synthetic_note(db_url: str) -> None:
    from registry.demo import SYNTHETIC_NOTE
    from tests.analysis_db import load_small

    load_small(db_url)
    model = run(db_url, "analyse", "--outcome", "homicide", "--model", "poisson", "--json")
    assert model.exit_code == 0, model.output
    assert SYNTHETIC_NOTE not in json.loads(model.stdout)["caveats"]
    args = ["trend", "--measure", "homicide", "--end", "2022-12", "--baseline-end", "2021-12"]
    trend = run(db_url, *args)
    assert trend.exit_code == 0, trend.output
    assert SYNTHETIC_NOTE not in trend.stderr
    # 2022 lacks March in this registry: both boroughs are named as untested.
    assert "for 0 tests: none" in trend.stdout
    assert "Not tested, a window only partly stored: Camden, Hackney." in trend.stdout


def test_a_lag_reaching_before_from_is_stated(db_url: str) -> None:
    from tests.analysis_db import load_small

    load_small(db_url)
    args = ["analyse", "--outcome", "homicide", "--lag", "12", "--from", "2022-07", "--json"]
    for model in ("fe", "poisson"):
        result = run(db_url, *args, "--model", model)
        assert result.exit_code == 0, result.output
        caveats = json.loads(result.stdout)["caveats"]
        assert "delivery from up to 12 months before 2022-07 is used for the lag" in " ".join(
            caveats
        )
    by_quarter = ["analyse", "--outcome", "homicide", "--model", "poisson", "--by", "quarter"]
    quarters = run(db_url, *by_quarter, "--from", "2021-04")
    assert quarters.exit_code == 0, quarters.output
    assert "delivery from up to 3 months before 2021-04" in quarters.stdout
    message = run(db_url, *by_quarter, "--from", "2022-07")
    assert message.exit_code == 1
    assert "No variation in delivery 1 period earlier" in message.stderr
    whole = run(db_url, "analyse", "--outcome", "homicide", "--model", "poisson", "--json")
    assert "is used for the lag" not in whole.stdout


def test_text_output_and_quarters(seeded_url: str) -> None:
    result = run(
        seeded_url,
        "analyse",
        "--outcome",
        "homicide",
        "--model",
        "fe",
        "--by",
        "quarter",
        "--lag",
        "1",
    )
    assert result.exit_code == 0, result.output
    # The verdict first, then the checks, then the figure in words with its full interval.
    lines = result.stdout.splitlines()
    # On the demo data (multiplicative risk, delivery growing where crime is high) the additive
    # model's own check fails, and it says so before any figure.
    assert lines[0].startswith("Not interpretable: the additive model's assumption fails")
    assert lines[1].startswith("  - Lead placebo passed") or "FAILED (lead placebo)" in lines[1]
    assert lines[2].startswith("  - FAILED (parallel trends in levels)")
    assert (
        "per extra 10 opportunities per 1,000 young people in the quarter before" in result.stdout
    )
    assert "95% interval" in result.stdout and "Smallest change detectable" in result.stdout
    assert "Caveats:" in result.stdout and "permutation p =" in result.stdout
    assert "Parallel trends in levels" in result.stdout


def test_headline_is_the_default_and_json_leads_with_the_verdict(seeded_url: str) -> None:
    result = run(seeded_url, "analyse", "--outcome", "knife_crime_injury_u25", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["model"] == "poisson" and list(data)[:3] == ["verdict", "verdict_text", "checks"]
    assert data["verdict"] in ("association", "no detectable association", "not interpretable")
    assert {c["name"] for c in data["checks"]} == {"lead placebo", "delivering boroughs"}
    assert data["effect"]["label"].startswith("Change in the rate of knife crime")
    assert data["diagnostics"]["inference"].startswith("Wild score (Kline-Santos) bootstrap")


def test_specs_table_with_holm_adjusted_p_values(seeded_url: str) -> None:
    result = run(seeded_url, "analyse", "--outcome", "homicide", "--specs")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "Holm-adjusted p-values across all 12 specifications" in lines[0]
    assert lines[1].split()[:3] == ["Outcome", "Lag", "Change"]
    rows = lines[2:]
    assert len(rows) == 12 and all(r.startswith("Homicide") for r in rows[:4])
    assert [r.split()[1] for r in rows[:4]] == ["0", "1", "2", "3"]
    as_json = json.loads(
        run(seeded_url, "analyse", "--outcome", "homicide", "--specs", "--json").stdout
    )
    assert all(r["holm_p_value"] >= r["p_value"] for r in as_json)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "fe", "--lag", "60", "--to", "2017-06"], "Too few periods for a lag of 60"),
        (["--model", "event"], "An event study needs a programme"),
        (["--model", "fe", "--programme", "Nope"], "There is no programme called 'Nope'"),
        (["--model", "its", "--from", "2019-01", "--to", "2020-06"], "at least 12 periods"),
    ],
)
def test_refusals_are_one_line_with_exit_1(seeded_url: str, args: list[str], message: str) -> None:
    result = run(seeded_url, "analyse", "--outcome", "homicide", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2(seeded_url: str) -> None:
    assert run(seeded_url, "analyse", "--outcome", "homicide", "--model", "ols").exit_code == 2
    assert (
        run(
            seeded_url, "analyse", "--outcome", "homicide", "--model", "fe", "--from", "2019"
        ).exit_code
        == 2
    )


@pytest.mark.slow
def test_count_model_text_shows_dispersion(db_url: str) -> None:
    from tests.analysis_db import load_small

    load_small(db_url)
    outputs = {}
    for model in ("poisson", "negbin"):
        result = run(db_url, "analyse", "--outcome", "homicide", "--model", model)
        assert result.exit_code == 0, result.output
        diagnostics = json.loads(
            run(db_url, "analyse", "--outcome", "homicide", "--model", model, "--json").stdout
        )["diagnostics"]
        chi2 = f"Poisson Pearson chi2/df = {diagnostics['pearson_chi2_per_df']:.3f}: "
        assert chi2 in result.stdout
        flag = "overdispersion flagged" if diagnostics["overdispersed"] else "no overdispersion"
        assert f"{chi2}{flag}" in result.stdout
        outputs[model] = result.stdout
    assert "alpha" not in outputs["poisson"]
    assert "negative binomial dispersion alpha = " in outputs["negbin"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--outcome", "gun_crime", "--model", "poisson"], "Every count in this panel is zero"),
        (["--outcome", "gun_crime", "--model", "fe"], "Every rate in this panel is zero"),
        (
            ["--outcome", "homicide", "--model", "fe", "--programme", "P1", "--to", "2021-12"],
            "No variation in delivery 1 period earlier",
        ),
        (["--outcome", "homicide", "--model", "negbin", "--lag", "36"], "Too few periods"),
    ],
)
def test_degenerate_inputs_exit_1_with_the_reason(db_url: str, args, message: str) -> None:
    from tests.analysis_db import load_small

    load_small(db_url)
    result = run(db_url, "analyse", *args, "--json")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert result.stdout == ""


def test_a_placebo_that_cannot_be_fitted_keeps_the_main_result(db_url: str) -> None:
    """June-November 2021: Hackney's delivery starts in June, so the lag varies, but delivery
    one month later is the same every month, so the lead placebo has nothing to estimate."""
    from tests.analysis_db import load_small

    load_small(db_url)
    args = ["analyse", "--outcome", "homicide", "--model", "fe"]
    args += ["--from", "2021-06", "--to", "2021-12"]
    result = run(db_url, *args, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert math.isfinite(data["estimate"]) and data["term"] == "delivery_rate_lag1"
    reason = data["diagnostics"]["lead_placebo"]
    assert reason.startswith("lead placebo not estimable: No variation in delivery 1 period later")
    assert "delivery_rate" not in reason
    assert "lead_placebo" not in {k for k in data if k != "diagnostics"}
    assert 0 < data["permutation_p_value"] <= 1
    text = run(db_url, *args)
    assert text.exit_code == 0 and "lead placebo not estimable: No variation" in text.stdout


def test_a_permutation_that_fails_keeps_the_main_result(db_url: str, monkeypatch) -> None:
    from registry.analysis import run as run_module
    from registry.errors import RegistryError
    from tests.analysis_db import load_small

    def refuse(*args: object, **kwargs: object) -> None:
        raise RegistryError("Too few boroughs to shuffle.")

    monkeypatch.setattr(run_module, "permute_areas", refuse)
    load_small(db_url)
    result = run(db_url, "analyse", "--outcome", "homicide", "--model", "fe", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["diagnostics"]["permutation"] == (
        "permutation inference not estimable: Too few boroughs to shuffle."
    )
    assert "permutation_p_value" not in data and math.isfinite(data["estimate"])


def test_no_population_exits_1(db_url: str) -> None:
    from sqlalchemy import delete

    from registry import db
    from registry.schema import Population
    from tests.analysis_db import load_small

    load_small(db_url)
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        s.execute(delete(Population))
    engine.dispose()
    result = run(db_url, "analyse", "--outcome", "homicide", "--model", "fe")
    assert result.exit_code == 1
    assert "No population aged 10-24 is stored" in result.stderr


def test_event_study_text_gives_percent_changes(seeded_url: str) -> None:
    """The text output reads each period as a % change with its interval, as the page does,
    not as a log rate ratio."""
    args = ["analyse", "--outcome", "knife_crime_injury_u25", "--model", "event"]
    result = run(seeded_url, *args, "--programme", "Street Mentors", "--json")
    coefficients = json.loads(result.stdout)["coefficients"]
    text = run(seeded_url, *args, "--programme", "Street Mentors").stdout
    assert "% change in counts against the prediction" in text
    first = coefficients[0]
    line = next(
        line
        for line in text.splitlines()
        if line.strip().startswith(f"{first['relative_period']}:")
    )
    assert f"{100 * math.expm1(first['estimate']):+.1f}%" in line
