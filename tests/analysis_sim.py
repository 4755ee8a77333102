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
        rows, columns=["area", "period", "young_people", "delivery_rate_lag1", "count"]
    )
    frame["rate"] = frame["count"] / frame["young_people"] * 100_000
    return frame


def risk_panel(
    seed: int,
    *,
    n_areas: int = 33,
    n_periods: int = 96,
    beta: float = 0.0,
    per_borough_month: float = 4.5,
    delivering: int = 16,
    targeted: bool = True,
    london_fall: float = 0.4,
    chase: bool = False,
    start: int = 24,
    overdispersion: float = 0.05,
) -> pd.DataFrame:
    """A borough × month panel where crime is a borough's risk times a London-wide level.

    ``count ~ Poisson(people · base · risk_i · level_t · exp(beta · delivery_rate_lag1) · e)``
    with ``e`` a gamma draw of variance ``overdispersion``. ``per_borough_month`` sets the mean
    count (about 4.5 for knife crime with injury under 25, 0.3 for homicide); ``level_t`` falls
    by ``london_fall`` over the panel, with a seasonal swing.

    Delivery (opportunities per 1,000 young people per month) starts at month ``start`` in
    ``delivering`` boroughs, the highest-risk ones when ``targeted``, else chosen at random, and
    grows while London falls. With ``chase`` it instead follows each borough's crime in the
    last three months against its own average (delivery that chases crime), in every borough,
    and the borough's risk drifts (log-AR(1), rho 0.9) so that chasing has something to follow.
    """
    rng = np.random.default_rng(seed)
    people = rng.integers(25_000, 90_000, n_areas).astype(float)
    log_risk = rng.normal(0, 0.45, n_areas)
    t = np.arange(n_periods)
    level = (1 - london_fall * t / max(n_periods - 1, 1)) * (1 + 0.1 * np.sin(2 * np.pi * t / 12))
    base = per_borough_month / (people.mean() * np.exp(log_risk).mean())
    order = np.argsort(-log_risk) if targeted else rng.permutation(n_areas)
    chosen = set(order[:delivering].tolist())
    drift = np.zeros((n_areas, n_periods))
    if chase:
        for k in range(1, n_periods):
            drift[:, k] = 0.9 * drift[:, k - 1] + rng.normal(0, 0.08, n_areas)
    x = np.zeros((n_areas, n_periods))
    counts = np.zeros((n_areas, n_periods), dtype=int)
    for k in range(n_periods):
        if chase:
            if k >= 3:
                recent = counts[:, k - 3 : k].sum(1)
                expected = 3 * people * base * np.exp(log_risk) * level[k - 3 : k].mean()
                x[:, k] = np.clip(2.0 * recent / expected + rng.normal(0, 0.2, n_areas), 0, None)
        elif k >= start:
            ramp = 0.5 + 3.0 * (k - start) / max(n_periods - start, 1)
            for i in chosen:
                x[i, k] = max(0.0, ramp * rng.gamma(4.0, 0.25))
        lagged = x[:, k - 1] if k else np.zeros(n_areas)
        mean = people * base * np.exp(log_risk + drift[:, k] + beta * lagged) * level[k]
        if overdispersion:
            mean = mean * rng.gamma(1 / overdispersion, overdispersion, n_areas)
        counts[:, k] = rng.poisson(mean)
    periods = [add_months(START, k) for k in range(n_periods)]
    frame = pd.DataFrame(
        {
            "area": np.repeat([f"A{i:03d}" for i in range(n_areas)], n_periods),
            "period": periods * n_areas,
            "young_people": np.repeat(people, n_periods),
            "delivery_rate": x.ravel(),
            "count": counts.ravel(),
        }
    )
    frame["rate"] = frame["count"] / frame["young_people"] * 100_000
    frame["delivery_rate_lag1"] = frame.groupby("area")["delivery_rate"].shift(1)
    return frame
