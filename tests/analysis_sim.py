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


def staggered_panel(
    seed: int,
    *,
    n_areas: int = 33,
    n_periods: int = 96,
    n_reached: int = 20,
    base_rate: float = 8.0,
    effect: float = -0.2,
    after_peak: bool = False,
    pre_trend: float = 0.0,
    overdispersion: float = 0.03,
    design_seed: int | None = None,
) -> tuple[pd.DataFrame, dict[str, dt.date], float]:
    """Multiplicative counts with staggered first deliveries; returns the panel, the first
    months and the true overall effect (log of expected counts with over without the programme,
    pooled over reached borough-periods 0-12 periods after first delivery).

    Risk differs by borough, London falls 3% a year with a season, and each start cohort's
    effect differs and grows over its first year: ``effect`` times a cohort factor (1.5 for the
    earliest starters down to 0.5) times ``min(k + 1, 12) / 12``. With ``after_peak`` each
    reached borough starts the month after its highest three months (between months 24 and 72)
    and the programme does nothing. ``pre_trend`` adds that much per period (log scale) to
    reached boroughs before they start, so the pre-trend test should fail. ``design_seed`` fixes
    which boroughs are reached and when (otherwise drawn with ``seed``), so the true effect
    barely moves between panels.
    """
    rng = np.random.default_rng(seed)
    design = rng if design_seed is None else np.random.default_rng(design_seed)
    areas = [f"A{i:03d}" for i in range(n_areas)]
    people = rng.integers(20_000, 70_000, n_areas).astype(float)
    risk = rng.normal(0, 0.4, n_areas)
    t = np.arange(n_periods)
    london = -0.03 * t / 12 + 0.1 * np.cos(2 * np.pi * (t % 12) / 12) + rng.normal(0, 0.03, len(t))
    noise = rng.gamma(1 / overdispersion, overdispersion, (n_areas, n_periods))
    mu0 = people[:, None] * base_rate / 100_000 * np.exp(risk[:, None] + london[None, :]) * noise
    counts0 = rng.poisson(mu0)
    starts = np.full(n_areas, -1)
    reached = design.choice(n_areas, n_reached, replace=False)
    for i in reached:
        if after_peak:
            window = np.convolve(counts0[i], np.ones(3), mode="valid")  # months m..m+2
            m = 24 + int(np.argmax(window[24:70]))
            starts[i] = m + 3
        else:
            starts[i] = int(design.integers(24, 73))
    order = np.argsort(np.argsort(starts[reached]))
    factor = {
        int(i): 1.5 - o / max(len(reached) - 1, 1) for i, o in zip(reached, order, strict=True)
    }
    rows, truth_with, truth_without = [], 0.0, 0.0
    for i in range(n_areas):
        for s in t:
            k = s - starts[i] if starts[i] >= 0 else None
            mu = mu0[i, s]
            count = counts0[i, s]
            if k is not None and k < 0 and pre_trend:
                mu = mu * np.exp(pre_trend * (k + 1))
                count = rng.poisson(mu)
            if k is not None and k >= 0:
                tau = 0.0 if after_peak else effect * factor[i] * min(k + 1, 12) / 12
                treated_mu = mu * np.exp(tau)
                count = rng.poisson(treated_mu)
                if k <= 12:
                    truth_with += treated_mu
                    truth_without += mu
            rows.append((areas[i], add_months(START, int(s)), people[i], int(count)))
    frame = pd.DataFrame(rows, columns=["area", "period", "population", "count"])
    frame["rate"] = frame["count"] / frame["population"] * 100_000
    firsts = {areas[i]: add_months(START, int(starts[i])) for i in range(n_areas) if starts[i] >= 0}
    truth = float(np.log(truth_with / truth_without)) if truth_without else 0.0
    return frame, firsts, truth


def its_series(
    seed: int,
    *,
    n_months: int = 120,
    first: dt.date = dt.date(2013, 1, 1),
    at: dt.date = dt.date(2019, 9, 1),
    base: float = 300.0,
    level: float = 0.0,
    rho: float = 0.0,
    sd: float = 0.08,
    covid: float = -0.25,
    breaks: tuple[tuple[dt.date, float], ...] = (),
) -> pd.DataFrame:
    """A monthly count series (``month``, ``count``): a falling trend, a season, a COVID dip
    (2020-03 to 2021-06), a level change of ``level`` (log scale) from ``at``, a step at each
    of ``breaks``, and a slowly wandering level, AR(1) with ``rho`` and standard deviation
    ``sd`` (log scale), under Poisson noise."""
    rng = np.random.default_rng(seed)
    wander = np.zeros(n_months)
    wander[0] = rng.normal(0, sd)
    shocks = rng.normal(0, sd * np.sqrt(1 - rho**2), n_months)
    for t in range(1, n_months):
        wander[t] = rho * wander[t - 1] + shocks[t]
    months = [add_months(first, t) for t in range(n_months)]
    log_mu = np.array(
        [
            np.log(base)
            - 0.02 * t / 12
            + 0.1 * np.cos(2 * np.pi * (m.month - 7) / 12)
            + wander[t]
            + level * (m >= at)
            + covid * (dt.date(2020, 3, 1) <= m <= dt.date(2021, 6, 1))
            + sum(step * (m >= month) for month, step in breaks)
            for t, m in enumerate(months)
        ]
    )
    counts = rng.poisson(np.exp(log_mu))
    return pd.DataFrame({"month": months, "count": counts, "unallocated": 0})
