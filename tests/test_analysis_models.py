"""Count models, interrupted time series and the event study recover planted answers."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from registry.analysis.models import fit_count, fit_event_study, fit_its
from registry.analysis.result import ASSOCIATION, DENOMINATOR, TARGETING
from registry.errors import RegistryError
from registry.periods import add_months
from tests.analysis_sim import START, count_panel

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


def _its_series(level: float, slope: float, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    at = 36
    for t in range(72):
        month = add_months(START, t)
        season = 3 * math.cos(2 * math.pi * (month.month - 7) / 12)
        post = t >= at
        rate = 50 + 0.1 * t + season + post * (level + slope * (t - at)) + rng.normal(0, 1)
        people = 1_000_000
        rows.append(("A000", month, people, round(rate * people / 100_000)))
    return pd.DataFrame(rows, columns=["area", "period", "young_people", "count"])


def test_interrupted_time_series_recovers_level_and_slope_change() -> None:
    frame = _its_series(level=-8.0, slope=-0.3)
    at = add_months(START, 36)
    result = fit_its(frame, at=at)
    assert result.term == "level_change"
    assert result.ci_low <= -8.0 <= result.ci_high
    assert result.extra["slope_change_ci_low"] <= -0.3 <= result.extra["slope_change_ci_high"]
    assert result.p_value < 0.05
    assert result.diagnostics["vcov"].startswith("Newey-West HAC")
    assert result.extra["interruption"] == at


def test_interrupted_time_series_needs_periods_on_both_sides() -> None:
    frame = _its_series(level=0, slope=0)
    with pytest.raises(RegistryError, match="at least 12 periods on each side"):
        fit_its(frame, at=add_months(START, 66))


def _event_panel(seed: int, effect: float, *, staggered: bool = True) -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(seed)
    rows, firsts = [], {}
    for i in range(24):
        area = f"A{i:03d}"
        start = None
        if i < 16:
            start = add_months(START, 12 + (i % 8) * 2 if staggered else 12)
            firsts[area] = start
        for t in range(48):
            month = add_months(START, t)
            treated = start is not None and month >= start
            rate = 10 + i * 0.5 + 0.05 * t + effect * treated + rng.normal(0, 1)
            rows.append((area, month, rate, 5))
    return pd.DataFrame(rows, columns=["area", "period", "rate", "count"]), firsts


def test_event_study_recovers_a_step_and_shows_no_pre_trend() -> None:
    frame, firsts = _event_panel(6, effect=-3.0)
    result = fit_event_study(frame, first_delivery=firsts, programme="P", pre=4, post=6)
    assert result.ci_low <= -3.0 <= result.ci_high
    coefs = {c["relative_period"]: c for c in result.extra["coefficients"]}
    assert -1 not in coefs  # the reference period
    assert set(coefs) == {-4, -3, -2, 0, 1, 2, 3, 4, 5, 6}
    for k in (-4, -3, -2):
        assert coefs[k]["ci_low"] <= 0 <= coefs[k]["ci_high"]
    assert result.extra["pre_trend_p_value"] > 0.05
    assert result.diagnostics["boroughs_never_reached"] == 8


def test_event_study_without_controls_or_staggering_is_refused() -> None:
    frame, firsts = _event_panel(7, effect=0.0, staggered=False)
    frame = frame[frame["area"].isin(firsts)]
    with pytest.raises(RegistryError, match="cannot be separated"):
        fit_event_study(frame, first_delivery=firsts, programme="P")


def test_event_study_needs_a_reached_borough() -> None:
    frame, _ = _event_panel(8, effect=0.0)
    with pytest.raises(RegistryError, match="No borough in the panel"):
        fit_event_study(frame, first_delivery={"Z": dt.date(2019, 1, 1)}, programme="P")
