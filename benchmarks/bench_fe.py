"""Two-way fixed-effects fit: ours (statsmodels on within-transformed data) against pyfixest.

A synthetic panel of 5,000 areas × 180 months (London's LSOAs for 15 years), the same data for
both, pyfixest timed after its first (compiling) call; then the dummy-variable statsmodels fit at
680 areas (London's wards) × 180 months. Prints the times, the ratio and the estimates.

Run: `.venv/bin/python benchmarks/bench_fe.py` (needs the dev extra for pyfixest).
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np
import pandas as pd
import pyfixest as pf

from registry.analysis.fixed_effects import fit_fe, fit_fe_dummies

MONTHS = 180
REPEATS = 3


def panel(n_areas: int, seed: int = 2019) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    area = np.repeat(np.arange(n_areas), MONTHS)
    month = np.tile(np.arange(MONTHS), n_areas)
    x = rng.gamma(2.0, 1.0, n_areas)[area] + rng.gamma(2.0, 0.5, len(area))
    y = (
        -0.5 * x
        + rng.normal(0, 2, n_areas)[area]
        + rng.normal(0, 1, MONTHS)[month]
        + rng.normal(0, 1, len(area))
    )
    return pd.DataFrame({"borough": area, "month": month, "delivery_rate": x, "rate": y})


def timed(fn: object, repeats: int = REPEATS) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    data = panel(5_000)
    print(f"panel: 5,000 areas x {MONTHS} months = {len(data):,} rows")

    def ours() -> object:
        return fit_fe(data, y="rate", x="delivery_rate", area="borough", period="month")

    def theirs() -> object:
        return pf.feols(
            "rate ~ delivery_rate | borough + month", data=data, vcov={"CRV1": "borough"}
        )

    start = time.perf_counter()
    theirs()
    print(f"pyfixest first (compiling) call: {time.perf_counter() - start:.2f} s")
    ours()  # the same courtesy: imports and caches warm
    t_ours, r_ours = timed(ours)
    t_theirs, r_theirs = timed(theirs)
    b_theirs = float(r_theirs.coef().iloc[0])  # type: ignore[attr-defined]
    se_theirs = float(r_theirs.se().iloc[0])  # type: ignore[attr-defined]
    print(f"ours (statsmodels, within):  {t_ours:.3f} s  (median of {REPEATS})")
    print(f"pyfixest feols:              {t_theirs:.3f} s  (median of {REPEATS})")
    print(f"ratio pyfixest / ours:       {t_theirs / t_ours:.2f}x")
    print(f"estimate ours {r_ours.estimate:.10f}  pyfixest {b_theirs:.10f}")  # type: ignore[attr-defined]
    print(f"std error ours {r_ours.std_error:.10f}  pyfixest {se_theirs:.10f}")  # type: ignore[attr-defined]
    print(
        f"max difference: estimate {abs(r_ours.estimate - b_theirs):.2e}, "  # type: ignore[attr-defined]
        f"std error {abs(r_ours.std_error - se_theirs):.2e}"  # type: ignore[attr-defined]
    )

    holes = data.sample(frac=0.9, random_state=1)  # unbalanced: alternating projections
    t_ours_u, r_ours_u = timed(
        lambda: fit_fe(holes, y="rate", x="delivery_rate", area="borough", period="month")
    )
    t_theirs_u, r_theirs_u = timed(
        lambda: pf.feols(
            "rate ~ delivery_rate | borough + month", data=holes, vcov={"CRV1": "borough"}
        )
    )
    diff = abs(r_ours_u.estimate - float(r_theirs_u.coef().iloc[0]))  # type: ignore[attr-defined]
    print(
        f"unbalanced (10% of cells missing): ours {t_ours_u:.3f} s, pyfixest {t_theirs_u:.3f} s, "
        f"ratio {t_theirs_u / t_ours_u:.2f}x, estimate difference {diff:.2e}"
    )

    wards = panel(680, seed=2020)
    start = time.perf_counter()
    b_dummy, _ = fit_fe_dummies(wards, y="rate", x="delivery_rate", area="borough", period="month")
    t_dummy = time.perf_counter() - start
    t_within, r_within = timed(
        lambda: fit_fe(wards, y="rate", x="delivery_rate", area="borough", period="month")
    )
    print(f"dummy-variable statsmodels, 680 areas x {MONTHS} months: {t_dummy:.2f} s")
    print(f"ours on the same 680-area panel: {t_within:.3f} s ({t_dummy / t_within:.0f}x faster)")
    print(f"estimate dummies {b_dummy:.10f}  ours {r_within.estimate:.10f}")  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
