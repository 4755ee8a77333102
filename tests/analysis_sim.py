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
