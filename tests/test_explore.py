"""registry/figures (explore, funnel, overview): funnel limits, periods, the borough table and
whole windows, without Streamlit."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from sqlalchemy import func, select

from registry import db, demo
from registry.auth import SYSTEM
from registry.boroughs import BOROUGHS
from registry.errors import PermissionDenied, RegistryError
from registry.figures.explore import (
    BOROUGH_TILES,
    ExploreFilter,
    area_names,
    borough_table,
    delivery_by_month,
    explore_options,
    measure_population,
    outcomes_by_month,
    period_of,
    tile_map,
    trend_series,
    young_people,
)
from registry.figures.funnel import funnel, funnel_overdispersion, poisson_limit
from registry.figures.overview import overview
from registry.schema import Delivery
from tests.analysis_db import CAMDEN, FIRST, load_small
from tests.conftest import COMMISSIONER, FUNDER
from tests.explore_helpers import explore_data


def test_tile_grid_places_every_borough_once() -> None:
    assert set(BOROUGH_TILES) == {b.gss_code for b in BOROUGHS}
    cells = [(row, col) for row, col, _ in BOROUGH_TILES.values()]
    assert len(set(cells)) == 33


def test_poisson_limits_are_exact_and_near_the_normal_ones_for_large_counts() -> None:
    mu = np.array([4.0, 50.0, 2_000.0])
    for p in (0.001, 0.025, 0.975, 0.999):
        limit = poisson_limit(mu, p)
        # Interpolated between the quantile and the count below it.
        assert np.all(limit <= stats.poisson.ppf(p, mu))
        assert np.all(limit >= stats.poisson.ppf(p, mu) - 1)
    upper = poisson_limit(np.array([2_000.0]), 0.975)[0]
    assert upper == pytest.approx(2_000 + 1.96 * np.sqrt(2_000), abs=2)


def test_poisson_limit_equals_the_interpolation_of_scipy_stats_quantiles() -> None:
    """The limits are built from scipy.special (to keep scipy.stats out of the page's imports);
    they must equal the same interpolation done with scipy.stats, zero means included."""
    mu = np.concatenate(
        [[0.0, 1e-9, 0.3, 1.0, 7.5], np.random.default_rng(3).gamma(1.0, 40.0, 500)]
    )
    for p in (0.001, 0.025, 0.975, 0.999):
        r = stats.poisson.ppf(p, mu)
        upper, lower = stats.poisson.cdf(r, mu), stats.poisson.cdf(r - 1, mu)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(upper > lower, (upper - p) / (upper - lower), 0.0)
        np.testing.assert_array_equal(poisson_limit(mu, p), np.maximum(r - alpha, 0.0))


def test_periods_are_months_quarters_and_financial_years() -> None:
    march = dt.date(2024, 3, 1)
    assert period_of(march, "month") == (march, "2024-03")
    assert period_of(march, "quarter")[0] == dt.date(2024, 1, 1)
    assert period_of(march, "financial_year") == (dt.date(2023, 4, 1), "2023-24")


def test_filter_refuses_a_period_that_ends_before_it_starts() -> None:
    with pytest.raises(RegistryError, match="before it starts"):
        ExploreFilter(dt.date(2024, 5, 1), dt.date(2024, 1, 1))
    with pytest.raises(RegistryError, match="Frequency"):
        ExploreFilter(dt.date(2024, 1, 1), dt.date(2024, 5, 1), frequency="weekly")


@pytest.mark.slow
def test_explore_figures_on_demo_data(session) -> None:
    demo.load(session, principal=SYSTEM)
    data = explore_data(session, principal=COMMISSIONER, measure="knife_crime_injury_u25")
    start, end = dt.date(2023, 4, 1), dt.date(2024, 3, 1)
    table = borough_table(data, ExploreFilter(start, end))
    assert len(table) == 33
    total = session.scalar(
        select(func.sum(Delivery.opportunities)).where(
            Delivery.deleted_at.is_(None), Delivery.month.between(start, end)
        )
    )
    assert table["opportunities"].sum() == total
    year = trend_series(data, ExploreFilter(start, end, frequency="financial_year"))
    assert list(year["label"]) == ["2023-24"]
    assert year["opportunities"].iloc[0] == total
    plot = funnel(data, ExploreFilter(start, end))
    assert plot.london_rate > 0
    assert {"95%", "99.8%"} == set(plot.limits["limit"])
    # The wider limits lie outside the narrower ones.
    wide = plot.limits[plot.limits["limit"] == "99.8%"].set_index(["population", "side"])
    narrow = plot.limits[plot.limits["limit"] == "95%"].set_index(["population", "side"])
    assert (
        wide.xs("upper", level="side")["rate"] >= narrow.xs("upper", level="side")["rate"]
    ).all()
    assert len(tile_map(table)) == 33


def test_funders_cannot_explore(session) -> None:
    parts = [
        lambda: explore_options(session, principal=FUNDER),
        lambda: area_names(session, principal=FUNDER),
        lambda: delivery_by_month(session, principal=FUNDER),
        lambda: outcomes_by_month(session, principal=FUNDER, measure="homicide"),
        lambda: young_people(session, principal=FUNDER, first_year=2020, last_year=2021),
        lambda: measure_population(
            session, principal=FUNDER, measure="homicide", first_year=2020, last_year=2021
        ),
    ]
    for part in parts:
        with pytest.raises(PermissionDenied):
            part()


@pytest.mark.slow
def test_explore_figures_do_not_import_statsmodels_or_scipy_stats() -> None:
    """Overview and Explore need only sums and Poisson limits; statsmodels and scipy.stats cost
    their first render about 0.7 s to import, so neither registry.figures nor the page helpers
    may pull them in."""
    code = (
        "import sys, registry.figures.explore, registry.figures.funnel, "
        "registry.figures.overview, dashboards.charts, dashboards.common; "
        "print(sorted(m for m in ('statsmodels', 'scipy.stats') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_changes_need_every_month_of_both_windows_stored(db_url) -> None:
    """load_small stores no count for March 2022: a window holding it gives no change, on
    Overview or in the borough table, while whole windows do (Overview's whole case is
    test_app_dashboard's delta on the demo data)."""
    load_small(db_url)
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        part = overview(s, principal=COMMISSIONER, start=FIRST, end=dt.date(2022, 12, 1))
        data = explore_data(s, principal=COMMISSIONER, measure="homicide")
    engine.dispose()
    tile = next(t for t in part.outcomes if t.code == "homicide")
    assert (tile.months_with_data, tile.change_year_pct) == (11, None)
    assert tile.year_earlier is not None  # 2021 is whole; only the current window is not

    def camden_change(start: dt.date, end: dt.date) -> float:
        table = borough_table(data, ExploreFilter(start, end, areas=(CAMDEN,)))
        return float(table.loc[table["area"] == CAMDEN, "change_pct"].iloc[0])

    # 2022-01..06 holds March 2022: no change. 2022-07..12 against 2021-07..12: both whole,
    # Camden's count is the month number, so the change is 0.
    assert np.isnan(camden_change(dt.date(2022, 1, 1), dt.date(2022, 6, 1)))
    assert camden_change(dt.date(2022, 7, 1), dt.date(2022, 12, 1)) == 0.0


def test_funnel_overdispersion_by_spiegelhalter() -> None:
    """Poisson counts: no allowance. Boroughs with their own risk: phi above 1, a spread tau,
    and limits wide enough that far fewer boroughs fall outside the 99.8% limits."""
    rng = np.random.default_rng(5)
    people = rng.integers(20_000, 70_000, 32).astype(float)
    expected = people / 100_000 * 400
    poisson = rng.poisson(expected)
    rate = poisson.sum() / people.sum() * 100_000
    phi, tau, over = funnel_overdispersion(poisson, people, rate)
    assert not over and tau == 0 and 0.3 < phi < 2
    risky = rng.poisson(expected * rng.lognormal(0, 0.3, 32))
    rate = risky.sum() / people.sum() * 100_000
    phi, tau, over = funnel_overdispersion(risky, people, rate)
    assert over and phi > 3 and tau > 0
    # By hand: winsorised z-scores, then the additive random-effects spread.
    exposure = people / 100_000
    z = (risky / exposure - rate) / np.sqrt(rate / exposure)
    lo, hi = np.quantile(z, [0.1, 0.9])
    assert phi == pytest.approx(np.mean(np.clip(z, lo, hi) ** 2))
    w = exposure / rate
    assert tau**2 == pytest.approx((32 * phi - 31) / (w.sum() - (w**2).sum() / w.sum()))
    upper = rate + 3.0902 * np.sqrt(rate / exposure + tau**2)
    exact = np.array([poisson_limit(np.array([rate * e]), 0.999)[0] / e for e in exposure])
    assert (risky / exposure > upper).sum() < (risky / exposure > exact).sum()
    # Too few areas: not estimated.
    assert np.isnan(funnel_overdispersion(risky[:5], people[:5], rate)[0])
