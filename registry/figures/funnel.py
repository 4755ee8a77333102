"""The funnel plot: borough outcome rates against the London rate, with control limits.

Funnel limits are exact Poisson limits around the London rate (Spiegelhalter 2005, with the
interpolation that makes them smooth): for a borough with ``E`` young people (in 100,000s) the
expected count is ``rate × E`` and the limits are the interpolated Poisson quantiles of that mean,
divided by ``E``, where ``E`` is the people of the measure's band. The borough figures and the
London rate count borough-allocated offences only (the police's "Unknown" and airport counts
belong to no borough).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from registry.denominators import no_population_message
from registry.errors import RegistryError
from registry.figures.explore import PER_OUTCOME, ExploreData, ExploreFilter, borough_table

LIMITS = {"95%": 0.95, "99.8%": 0.998}


def _poisson_ppf(p: float, mean: np.ndarray) -> np.ndarray:
    """``scipy.stats.poisson.ppf`` for 0 < p < 1, from the special functions it is built on:
    importing ``scipy.stats`` costs Explore's first render about half a second."""
    guess = np.ceil(special.pdtrik(p, mean))
    below = np.maximum(guess - 1, 0)
    return np.where(special.pdtr(below, mean) >= p, below, guess)


def _poisson_cdf(k: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``scipy.stats.poisson.cdf``: ``P(X <= k)``, 0 below zero."""
    return np.where(k < 0, 0.0, special.pdtr(np.maximum(np.floor(k), 0), mean))


def poisson_limit(expected: np.ndarray, p: float) -> np.ndarray:
    """The interpolated exact Poisson ``p`` quantile of a count with mean ``expected``."""
    expected = np.asarray(expected, dtype=float)
    r = _poisson_ppf(p, expected)
    upper = _poisson_cdf(r, expected)
    lower = _poisson_cdf(r - 1, expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(upper > lower, (upper - p) / (upper - lower), 0.0)
    return np.maximum(r - alpha, 0.0)


# Spiegelhalter (2005): z-scores winsorised at these percentiles estimate the overdispersion, and
# fewer areas than this leave it unestimated.
WINSOR = 0.1
MIN_AREAS_FOR_DISPERSION = 10


def funnel_overdispersion(
    counts: np.ndarray, young_people: np.ndarray, london_rate: float
) -> tuple[float, float, bool]:
    """Spiegelhalter's (2005) overdispersion of areas' rates around ``london_rate``.

    Each area's z-score is its rate's distance from London's in Poisson standard errors,
    ``sqrt(london_rate / exposure)``; z-scores are winsorised at the 10th and 90th percentiles
    so that a few outliers do not make themselves look ordinary, and ``phi`` is their mean
    square. When ``n phi`` exceeds the 95th percentile of chi-squared on ``n - 1`` degrees of
    freedom the areas vary more than chance allows, and the additive random-effects spread
    ``tau^2 = (n phi - (n - 1)) / (sum w - sum w^2 / sum w)`` (``w`` = 1/variance) widens the
    limits. Returns ``(phi, tau, overdispersed)``; ``tau`` is per 100,000 and 0 when not.
    """
    exposure = np.asarray(young_people, dtype=float) / PER_OUTCOME
    rates = np.asarray(counts, dtype=float) / exposure
    n = len(rates)
    if n < MIN_AREAS_FOR_DISPERSION or london_rate <= 0:
        return float("nan"), 0.0, False
    variance = london_rate / exposure
    z = (rates - london_rate) / np.sqrt(variance)
    low, high = np.quantile(z, [WINSOR, 1 - WINSOR])
    phi = float(np.mean(np.clip(z, low, high) ** 2))
    if n * phi <= special.chdtri(n - 1, 0.05):
        return phi, 0.0, False
    w = 1 / variance
    tau2 = max(0.0, (n * phi - (n - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    return phi, float(np.sqrt(tau2)), tau2 > 0


@dataclass(frozen=True)
class Funnel:
    """A funnel plot: the areas' rates, the London rate, and control-limit curves.

    ``dispersion`` is Spiegelhalter's overdispersion ``phi`` (NaN with too few areas) and
    ``tau`` the between-area spread per 100,000 the limits allow for (0: exact Poisson limits).
    """

    london_rate: float
    points: pd.DataFrame  # area, borough, population, count, outcome_rate, expected, band
    limits: pd.DataFrame  # population, limit, side, rate
    notes: list[str] = field(default_factory=list)
    dispersion: float = float("nan")
    tau: float = 0.0


def _limit_rates(london_rate: float, exposure: np.ndarray, p: float, tau: float) -> np.ndarray:
    """The ``p`` control limit on the rate scale: exact Poisson, or normal with the random
    effects' spread ``tau`` added when the areas are overdispersed."""
    if tau > 0:
        spread = np.sqrt(london_rate / exposure + tau**2)
        return np.maximum(london_rate + special.ndtri(p) * spread, 0.0)
    return poisson_limit(london_rate * exposure, p) / exposure


def funnel(data: ExploreData, flt: ExploreFilter, every: pd.DataFrame | None = None) -> Funnel:
    """Borough outcome rates per 100,000 of the measure's band against the London rate, with
    95% and 99.8% limits.

    The London rate is over every area with counts and population (whatever the area filter);
    the points are the areas chosen. ``band`` says where each point falls. ``every`` is
    :func:`borough_table` for every area over the same period, when the caller has it already.
    When the areas vary more than chance allows (:func:`funnel_overdispersion`, over every
    area), the limits allow for it and a note says by how much.
    """
    if every is None:
        every = borough_table(data, dataclasses.replace(flt, areas=()))
    usable = every.dropna(subset=["outcome_rate", "population"])  # whole periods only
    usable = usable[usable["population"] > 0]
    if usable.empty:
        if data.band_population.empty:
            raise RegistryError(no_population_message(data.band))
        raise RegistryError(
            "No area has both outcome counts and a population in this period, so there is no "
            "rate to plot."
        )
    london_rate = float(usable["count"].sum() / usable["population"].sum() * PER_OUTCOME)
    phi, tau, overdispersed = funnel_overdispersion(
        usable["count"].to_numpy(), usable["population"].to_numpy(), london_rate
    )
    chosen = set(flt.areas) if flt.areas else set(data.areas["area"])
    points = usable[usable["area"].isin(chosen)].copy()
    exposure = points["population"].to_numpy() / PER_OUTCOME
    points["expected"] = london_rate * exposure
    rates = points["count"].to_numpy() / exposure
    band = np.full(len(points), "within 95% limits", dtype=object)
    for label, level in LIMITS.items():
        low = _limit_rates(london_rate, exposure, (1 - level) / 2, tau)
        high = _limit_rates(london_rate, exposure, 1 - (1 - level) / 2, tau)
        band = np.where(rates > high, f"above {label} limit", band)
        band = np.where(rates < low, f"below {label} limit", band)
    points["band"] = band
    lo = max(float(usable["population"].min()) * 0.8, 1.0)
    hi = float(usable["population"].max()) * 1.1
    grid = np.geomspace(lo, hi, 60)
    curves = []
    for label, level in LIMITS.items():
        for side, p in (("lower", (1 - level) / 2), ("upper", 1 - (1 - level) / 2)):
            rate = _limit_rates(london_rate, grid / PER_OUTCOME, p, tau)
            curves.append(
                pd.DataFrame({"population": grid, "limit": label, "side": side, "rate": rate})
            )
    notes = []
    if overdispersed:
        notes.append(
            f"The boroughs' rates vary {phi:.1f} times as much as chance alone would "
            "(Spiegelhalter's overdispersion, from z-scores with the most extreme 10% at each "
            "end pulled in), so the limits allow for a spread between boroughs of "
            f"{tau:.1f} per 100,000 (additive random effects, Spiegelhalter 2005): a borough "
            "outside them differs by more than boroughs usually do."
        )
    elif np.isfinite(phi):
        notes.append(
            f"The boroughs' rates vary no more than chance allows (overdispersion {phi:.1f}), "
            "so the limits are exact Poisson ones."
        )
    missing = sorted(chosen - set(usable["area"]))
    if missing:
        names = data.areas.set_index("area")["area_name"]
        notes.append(
            "Not plotted for want of population or of a count for every month of the period: "
            + ", ".join(str(names.get(a, a)) for a in missing)
            + "."
        )
    return Funnel(
        london_rate,
        points[["area", "borough", "population", "count", "outcome_rate", "expected", "band"]]
        .sort_values("borough")
        .reset_index(drop=True),
        pd.concat(curves, ignore_index=True),
        notes,
        dispersion=phi,
        tau=tau,
    )
