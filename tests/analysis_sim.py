"""Simulated panels with known answers for the analysis tests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from registry.periods import add_months

START = dt.date(2018, 1, 1)


def linear_panel(
    seed: int,
    *,
    n_areas: int = 15,
    n_periods: int = 24,
    effect: float = 0.0,
    noise: float = 1.0,
) -> pd.DataFrame:
    """``rate = effect · delivery_rate + borough + month + noise``; delivery varies within areas."""
    rng = np.random.default_rng(seed)
    areas = [f"A{i:03d}" for i in range(n_areas)]
    periods = [add_months(START, t) for t in range(n_periods)]
    area_effect = rng.normal(0, 2, n_areas)
    period_effect = rng.normal(0, 1, n_periods)
    level = rng.gamma(2.0, 1.0, n_areas)  # delivery is higher in some areas (targeting)
    rows = []
    for i, area in enumerate(areas):
        for t, period in enumerate(periods):
            x = level[i] + rng.gamma(2.0, 0.5)
            y = effect * x + area_effect[i] + period_effect[t] + rng.normal(0, noise)
            rows.append((area, period, x, y))
    return pd.DataFrame(rows, columns=["area", "period", "delivery_rate", "rate"])


def count_panel(
    seed: int,
    *,
    n_areas: int = 20,
    n_periods: int = 36,
    beta: float = -0.05,
    base_rate: float = 40.0,
    overdispersion: float = 0.0,
) -> pd.DataFrame:
    """Counts ~ Poisson(young people · base · exp(beta · delivery_rate + effects) / 100,000).

    With ``overdispersion`` > 0 the mean is multiplied by a gamma draw of that variance
    (a negative-binomial count).
    """
    rng = np.random.default_rng(seed)
    rows = []
    area_effect = rng.normal(0, 0.3, n_areas)
    period_effect = rng.normal(0, 0.1, n_periods)
    for i in range(n_areas):
        people = float(rng.integers(20_000, 70_000))
        for t in range(n_periods):
            x = rng.gamma(2.0, 2.0) + 0.2 * i
            mean = (
                people * base_rate / 100_000 * np.exp(beta * x + area_effect[i] + period_effect[t])
            )
            if overdispersion:
                mean *= rng.gamma(1 / overdispersion, overdispersion)
            count = int(rng.poisson(mean))
            rows.append((f"A{i:03d}", add_months(START, t), people, x, count))
    frame = pd.DataFrame(
        rows, columns=["area", "period", "population", "delivery_rate_lag1", "count"]
    )
    frame["rate"] = frame["count"] / frame["population"] * 100_000
    return frame


def synth_rates(
    seed: int,
    *,
    n_areas: int = 33,
    n_months: int = 120,
    start_index: int = 72,
    treated: int = 5,
    effect: float = 0.0,
    base: float = 15.0,
    people: float = 60_000.0,
    treated_risk: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, str, dt.date]:
    """Monthly rates per 100,000 of ``n_areas`` boroughs for a synthetic control.

    Counts ~ Poisson(base · borough risk · London level), London falling by a third over the
    period with a seasonal swing, each borough's risk log-normal; the treated borough's mean is
    multiplied by ``1 + effect`` from ``start_index`` on (``effect=-0.2``: a 20% drop). With
    ``treated_risk`` its risk is set (e.g. above every other borough's). Returns the rates, the
    populations (same shape), the treated column and its start month.
    """
    rng = np.random.default_rng(seed)
    months = [add_months(START, i) for i in range(n_months)]
    codes = [f"E09{i:06d}" for i in range(1, n_areas + 1)]
    risk = rng.lognormal(0.0, 0.4, n_areas)
    if treated_risk is not None:
        risk[treated] = treated_risk
    t = np.arange(n_months)
    level = np.linspace(1.2, 0.8, n_months) * (1 + 0.1 * np.sin(t * 2 * np.pi / 12))
    mean = np.outer(level, risk) * base
    mean[start_index:, treated] *= 1 + effect
    counts = rng.poisson(mean)
    rates = pd.DataFrame(counts / people * 100_000, index=months, columns=codes)
    population = pd.DataFrame(people, index=months, columns=codes)
    return rates, population, codes[treated], months[start_index]
