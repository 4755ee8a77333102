"""Synthetic control: did one borough's outcome rate fall after a start month, more than it would
have?

The counterfactual is a *synthetic borough*: a weighted mix of boroughs without the programme
(the donors), weights non-negative and summing to one, chosen so the mix tracks the treated
borough's monthly rate per 100,000 before the start (Abadie, Diamond and Hainmueller 2010). After
the start, the gap between the borough and its synthetic counterpart is the estimate.

Inference is by placebos, not by a formula:

- *in space*: every donor is treated in turn (synthesised from the other donors) and the size of
  its mean post-start gap, in units of its own pre-start RMSPE, computed; the treated borough's
  rank among those is the p-value (the smallest possible is ``1 / (donors + 1)``). Abadie's
  post/pre RMSPE ratio is reported too, but with monthly counts its post-start RMSPE is mostly
  noise, and a level shift hardly moves it (BENCHMARKS.md, "Model validity: synthetic
  control", compares the two);
- *in time*: the same test with a false start date twelve months before the real one, using
  pre-start months only; a "departure" there means the method finds effects where none can be.

The interval around the estimate is the spread of the donors' own post-start relative gaps (their
2.5% and 97.5% points subtracted from the estimate), the placebo distribution read as the
distribution of the gap under no effect; with 31 donors it is coarse, and it says so.

A treated borough the donors cannot reproduce before the start (its pre-start mean outside the
donors' range, or a pre-start RMSPE more than twice the typical donor's) gets no conclusion: its
verdict is "not interpretable", whatever the post-period shows.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import nnls
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import boroughs, numbers
from registry.analysis.estimators import COVID_END, COVID_MONTHS, COVID_START
from registry.analysis.panel import borough_codes, ids_by_name
from registry.analysis.result import (
    ASSOCIATION,
    Check,
    ModelResult,
    decide_verdict,
)
from registry.analysis.series import borough_series
from registry.auth import Principal, require
from registry.demo import SYNTHETIC_NOTE, is_synthetic
from registry.denominators import denominator, no_population_message, rate_unit
from registry.errors import RegistryError
from registry.outcomes.measures import get_measure, series_breaks
from registry.periods import add_months, as_date, format_month, month_start
from registry.schema import Borough, Delivery, Programme

MIN_PRE_MONTHS = 24
MIN_DONORS = 5
POOR_FIT_FACTOR = 2.0
TIME_PLACEBO_MONTHS = 12
POOLED_DRAWS = 2_000
POOLED_SEED = 20190901

SYNTH_CAVEAT = (
    "The synthetic borough is built from boroughs without the programme; if they had other "
    "programmes, or the borough was chosen because its violence had just peaked, the gap is "
    "not the programme's effect alone."
)
INTERVAL_CAVEAT = (
    "The interval is the spread of the donor boroughs' own gaps after the start (placebos), so "
    "with about 30 donors it is coarse; the placebo rank is the test."
)


def synth_weights(treated: np.ndarray, donors: np.ndarray) -> np.ndarray:
    """Donor weights ``w >= 0``, ``sum(w) = 1`` minimising ``||treated - donors @ w||``.

    ``treated`` has one value per pre-start month, ``donors`` one column per donor. Solved as a
    non-negative least-squares problem with the adding-up constraint appended as a heavily
    weighted row, which is exact to rounding for the scales of rates per 100,000.
    """
    scale = max(float(np.abs(donors).max(initial=0.0)), 1.0) * 1e3
    a = np.vstack([donors, np.full((1, donors.shape[1]), scale)])
    b = np.concatenate([treated, [scale]])
    weights, _ = nnls(a, b, maxiter=50 * donors.shape[1])
    total = weights.sum()
    if total <= 0:
        return np.full(donors.shape[1], 1.0 / donors.shape[1])
    return weights / total


@dataclass(frozen=True)
class SynthFit:
    """One borough against its synthetic counterpart (rates per 100,000, one per month)."""

    area: str
    start: dt.date
    weights: pd.Series
    treated: pd.Series
    synthetic: pd.Series

    @property
    def pre(self) -> np.ndarray:
        """Whether each month is before the start (a boolean array)."""
        return self.treated.index < self.start

    def _rmspe(self, mask: np.ndarray) -> float:
        gap = (self.treated - self.synthetic)[mask]
        return float(np.sqrt(np.mean(np.square(gap)))) if len(gap) else math.nan

    @property
    def pre_rmspe(self) -> float:
        return self._rmspe(self.pre)

    @property
    def post_rmspe(self) -> float:
        return self._rmspe(~self.pre)

    @property
    def ratio(self) -> float:
        pre = self.pre_rmspe
        return self.post_rmspe / pre if pre > 0 else math.inf

    @property
    def statistic(self) -> float:
        """The placebo test's statistic: the mean post-start gap over the pre-start RMSPE."""
        gap = float((self.treated - self.synthetic)[~self.pre].mean())
        pre = self.pre_rmspe
        return abs(gap) / pre if pre > 0 else math.inf

    @property
    def relative_gap(self) -> float:
        """Post-start treated total over synthetic total, minus one (-0.2: 20% lower)."""
        synthetic = float(self.synthetic[~self.pre].sum())
        return float(self.treated[~self.pre].sum()) / synthetic - 1 if synthetic > 0 else math.nan


def fit_synth(rates: pd.DataFrame, treated: str, start: dt.date, donors: Sequence[str]) -> SynthFit:
    """Fit ``treated`` (a column of ``rates``, by month) from ``donors`` before ``start``."""
    pre = rates.index < start
    if pre.sum() < 2 or (~pre).sum() < 1:
        raise RegistryError("A synthetic control needs months both before and after the start.")
    pool = rates[list(donors)]
    weights = synth_weights(rates.loc[pre, treated].to_numpy(), pool.loc[pre].to_numpy())
    synthetic = pd.Series(pool.to_numpy() @ weights, index=rates.index)
    return SynthFit(
        area=treated,
        start=start,
        weights=pd.Series(weights, index=list(donors)),
        treated=rates[treated],
        synthetic=synthetic,
    )


@dataclass(frozen=True)
class PlaceboTest:
    """The treated fit and every donor's placebo fit at the same start."""

    fit: SynthFit
    placebos: list[SynthFit]

    @property
    def p_value(self) -> float:
        """Share of all boroughs (treated included) whose statistic is at least the treated's."""
        at_least = sum(1 for p in self.placebos if p.statistic >= self.fit.statistic)
        return (1 + at_least) / (1 + len(self.placebos))

    @property
    def rank(self) -> int:
        return 1 + sum(1 for p in self.placebos if p.statistic > self.fit.statistic)

    @property
    def typical_pre_rmspe(self) -> float:
        return float(np.median([p.pre_rmspe for p in self.placebos]))

    def poor_fit(self, rates: pd.DataFrame) -> str | None:
        """Why the synthetic borough cannot stand in for the treated one before the start."""
        pre = rates.index < self.fit.start
        means = rates.loc[pre].mean()
        donors = [p.area for p in self.placebos]
        treated = float(means[self.fit.area])
        low, high = float(means[donors].min()), float(means[donors].max())
        if not low <= treated <= high:
            side = "higher" if treated > high else "lower"
            return (
                f"its rate before the start ({treated:.2f} per 100,000 a month) is {side} than "
                f"every donor's ({low:.2f} to {high:.2f}), so no mix of them can match it"
            )
        typical = self.typical_pre_rmspe
        if self.fit.pre_rmspe > POOR_FIT_FACTOR * typical:
            return (
                f"its gap to the synthetic borough before the start (RMSPE "
                f"{self.fit.pre_rmspe:.2f}) is more than {POOR_FIT_FACTOR:g} times the typical "
                f"donor's ({typical:.2f})"
            )
        return None

    def interval(self) -> tuple[float, float]:
        """Estimate minus the 97.5% and 2.5% points of the donors' relative gaps."""
        gaps = [p.relative_gap for p in self.placebos if math.isfinite(p.relative_gap)]
        if len(gaps) < MIN_DONORS:
            return math.nan, math.nan
        high, low = np.quantile(gaps, [0.975, 0.025])
        return self.fit.relative_gap - float(high), self.fit.relative_gap - float(low)


def placebo_test(
    rates: pd.DataFrame, treated: str, start: dt.date, donors: Sequence[str]
) -> PlaceboTest:
    """Fit ``treated`` and every donor in turn (from the other donors) at ``start``."""
    fit = fit_synth(rates, treated, start, donors)
    placebos = [fit_synth(rates, d, start, [o for o in donors if o != d]) for d in donors]
    return PlaceboTest(fit, placebos)


@dataclass(frozen=True)
class BoroughEstimate:
    """One treated borough's synthetic-control result, with its checks."""

    test: PlaceboTest
    time_test: PlaceboTest | None
    poor_fit: str | None
    population: pd.Series

    @property
    def fit(self) -> SynthFit:
        return self.test.fit

    @property
    def gap_count(self) -> float:
        """Cumulative post-start gap in crimes: monthly rate gaps times people / 100,000."""
        post = ~self.fit.pre
        gap = (self.fit.treated - self.fit.synthetic)[post]
        return float((gap * self.population.reindex(gap.index) / 100_000).sum())

    def checks(self, name: str) -> list[Check]:
        checks = [
            Check(
                "pre-period fit",
                self.poor_fit is None,
                (
                    f"the synthetic borough does not track {name} before the start "
                    f"({self.poor_fit}): no conclusion"
                    if self.poor_fit
                    else f"the synthetic borough tracks {name} before the start as closely as "
                    f"a typical borough's does (RMSPE {self.fit.pre_rmspe:.2f} against "
                    f"{self.test.typical_pre_rmspe:.2f})"
                ),
            )
        ]
        if self.time_test is not None:
            p = self.time_test.p_value
            fake = format_month(self.time_test.fit.start)
            checks.append(
                Check(
                    "placebo in time",
                    p >= 0.05,
                    (
                        f"a false start in {fake}, before the programme, already shows a "
                        f"departure as large as a real effect (placebo p = {p:.2f}), so "
                        "the method finds effects where none can be"
                        if p < 0.05
                        else f"a false start in {fake} shows no departure (placebo p = {p:.2f})"
                    ),
                )
            )
        return checks

    def to_dict(self) -> dict[str, object]:
        low, high = self.test.interval()
        fit = self.fit
        return {
            "borough": boroughs.BY_CODE[fit.area].name,
            "gss_code": fit.area,
            "start": format_month(fit.start),
            "relative_gap": fit.relative_gap,
            "ci_low": low,
            "ci_high": high,
            "p_value": self.test.p_value,
            "rank": self.test.rank,
            "placebos": len(self.test.placebos),
            "pre_rmspe": fit.pre_rmspe,
            "post_rmspe": fit.post_rmspe,
            "rmspe_ratio": fit.ratio,
            "gap_rate_mean": float((fit.treated - fit.synthetic)[~fit.pre].mean()),
            "gap_count_cumulative": self.gap_count,
            "poor_fit": self.poor_fit,
            "time_placebo_p_value": self.time_test.p_value if self.time_test else None,
            "donors": [
                {"borough": boroughs.BY_CODE[str(a)].name, "gss_code": a, "weight": float(w)}
                for a, w in fit.weights.sort_values(ascending=False).items()
                if w >= 0.001
            ],
        }


def estimate_borough(
    rates: pd.DataFrame, population: pd.DataFrame, treated: str, start: dt.date, donors: list[str]
) -> BoroughEstimate:
    """The placebo test, its time placebo where the pre-period allows, and the fit check."""
    pre_months = int((rates.index < start).sum())
    if pre_months == len(rates.index):
        raise RegistryError(
            f"The counts end in {format_month(rates.index.max())}, before the start month "
            f"{format_month(start)}: there is no period after the start to compare."
        )
    if pre_months < MIN_PRE_MONTHS:
        raise RegistryError(
            f"Only {pre_months} months of {boroughs.BY_CODE[treated].name}'s counts come before "
            f"{format_month(start)}; a synthetic control needs at least {MIN_PRE_MONTHS}."
        )
    if len(donors) < MIN_DONORS:
        raise RegistryError(
            f"Only {len(donors)} boroughs without the programme have counts for the whole "
            f"period; a synthetic control needs at least {MIN_DONORS} donors."
        )
    test = placebo_test(rates, treated, start, donors)
    time_test = None
    if pre_months >= MIN_PRE_MONTHS + TIME_PLACEBO_MONTHS:
        before = rates[rates.index < start]
        fake = add_months(start, -TIME_PLACEBO_MONTHS)
        time_test = placebo_test(before, treated, fake, donors)
    return BoroughEstimate(test, time_test, test.poor_fit(rates), population[treated])


def pooled_p_value(estimates: list[BoroughEstimate], seed: int = POOLED_SEED) -> float:
    """Randomisation p-value of the mean relative gap: one placebo donor drawn per treated
    borough (from that borough's own placebos), ``POOLED_DRAWS`` times."""
    observed = float(np.mean([e.fit.relative_gap for e in estimates]))
    rng = np.random.default_rng(seed)
    pools = [np.array([p.relative_gap for p in e.test.placebos]) for e in estimates]
    draws = np.mean([rng.choice(pool, size=POOLED_DRAWS) for pool in pools], axis=0)
    return float((1 + np.sum(np.abs(draws) >= abs(observed))) / (1 + POOLED_DRAWS))


# --- the database side -------------------------------------------------------------------


@dataclass(frozen=True)
class SynthData:
    """Balanced monthly rates and populations (one column per borough) for one measure."""

    rates: pd.DataFrame
    population: pd.DataFrame
    counts: pd.DataFrame
    band: str


def load_synth_data(
    session: Session,
    *,
    principal: Principal,
    measure: str,
    start: dt.date | None,
    end: dt.date | None,
) -> SynthData:
    """Every borough's monthly count and rate; only months every borough with counts has."""
    first = start or dt.date(1900, 1, 1)
    last = end or dt.date(2200, 12, 1)
    series = borough_series(session, principal=principal, measure=measure, start=first, end=last)
    if not series:
        raise RegistryError(f"No {measure} counts are stored for the period asked.")
    counts = pd.DataFrame(
        {area: frame.set_index("month")["count"] for area, frame in series.items()}
    ).dropna()
    counts = counts.sort_index()
    people = denominator(
        session,
        measure=measure,
        start=counts.index.min(),
        end=counts.index.max(),
        areas=list(counts.columns),
    )
    if people.people.empty:
        raise RegistryError(no_population_message(people.band))
    by_year = people.people.pivot(index="year", columns="area", values="people")
    counts = counts[[c for c in counts.columns if c in by_year.columns]]
    population = by_year.reindex([m.year for m in counts.index]).set_axis(counts.index)
    population = population[counts.columns]
    rates = counts / population * 100_000.0
    return SynthData(rates=rates, population=population, counts=counts, band=people.band)


def delivering_boroughs(
    session: Session, *, programme: str, start: dt.date, end: dt.date | None, threshold: int
) -> dict[str, dt.date]:
    """Boroughs whose opportunities of ``programme`` from ``start`` exceed ``threshold``, with
    the first month they had any."""
    ids = ids_by_name(session, Programme, [programme])
    flt = [
        Delivery.programme_id.in_(ids),
        Delivery.deleted_at.is_(None),
        Delivery.opportunities > 0,
    ]
    totals = session.execute(
        select(Borough.gss_code, func.sum(Delivery.opportunities), func.min(Delivery.month))
        .join(Borough, Borough.id == Delivery.borough_id)
        .where(*flt, Delivery.month >= start, *([Delivery.month <= end] if end else []))
        .group_by(Borough.gss_code)
    ).all()
    firsts = dict(
        session.execute(
            select(Borough.gss_code, func.min(Delivery.month))
            .join(Borough, Borough.id == Delivery.borough_id)
            .where(*flt)
            .group_by(Borough.gss_code)
        )
        .tuples()
        .all()
    )
    return {code: as_date(firsts[code]) for code, total, _ in totals if int(total) > threshold}


def run_synth(
    session: Session,
    *,
    principal: Principal,
    outcome: str,
    borough: str | None,
    at: dt.date | None,
    programme: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    donor_threshold: int = 0,
) -> ModelResult:
    """Synthetic control for ``borough`` from ``at``, or for every borough that started
    ``programme`` (each at its own first month, pooled) when no borough is named."""
    require(principal, "models.run")
    measure = get_measure(session, outcome)
    if borough is None and programme is None:
        raise RegistryError("Name a borough (--borough B) or a programme (--programme P).")
    if borough is not None and at is None:
        raise RegistryError("A synthetic control for one borough needs a start month (--at).")
    data = load_synth_data(session, principal=principal, measure=outcome, start=start, end=end)
    rates = data.rates
    first, last = rates.index.min(), rates.index.max()
    caveats = [ASSOCIATION, SYNTH_CAVEAT, INTERVAL_CAVEAT]
    if borough is not None:
        code = borough_codes([borough])[0]
        if code not in rates.columns:
            raise RegistryError(
                f"{boroughs.BY_CODE[code].name} has no {outcome} counts for every month of the "
                "period, so it cannot be compared."
            )
        assert at is not None
        treated = {code: month_start(at)}
    if programme is not None:
        delivering = delivering_boroughs(
            session, programme=programme, start=first, end=last, threshold=donor_threshold
        )
        donors = [a for a in rates.columns if a not in delivering]
        if borough is None:
            treated = {a: m for a, m in delivering.items() if a in rates.columns}
            if not treated:
                raise RegistryError(f"No borough with {outcome} counts delivered {programme}.")
        donors = [a for a in donors if a not in treated]
    else:
        donors = [a for a in rates.columns if a not in treated]
        caveats.append(
            "No programme named: the donors are every other borough, whatever they deliver."
        )
    estimates = [
        estimate_borough(rates, data.population, area, when, donors)
        for area, when in sorted(treated.items())
    ]
    earliest = min(treated.values())
    breaks = series_breaks(session, outcome, first, last)
    if breaks:
        caveats.append(
            " ".join(b.sentence() for b in breaks) + " A break affects every borough alike, so "
            "the comparison with the synthetic borough is less exposed to it than a "
            "before-and-after change."
        )
    if last >= COVID_START and earliest <= COVID_END:
        caveats.append(
            f"The period after the start includes the COVID-19 restrictions ({COVID_MONTHS}), "
            "which changed crime everywhere; the synthetic borough shares that, but not its "
            "local shape."
        )
    if is_synthetic(session):
        caveats = [SYNTHETIC_NOTE, *caveats]
    return synth_result(
        measure.label, outcome, estimates, rates, donors, caveats, unit=rate_unit(data.band)
    )


def synth_result(
    label: str,
    outcome: str,
    estimates: list[BoroughEstimate],
    rates: pd.DataFrame,
    donors: list[str],
    caveats: list[str],
    *,
    unit: str = "per 100,000",
) -> ModelResult:
    """The :class:`ModelResult` of one treated borough or several pooled, verdict first."""
    lower = label[:1].lower() + label[1:]
    if len(estimates) == 1:
        one = estimates[0]
        name = boroughs.BY_CODE[one.fit.area].name
        checks = one.checks(name)
        estimate, p_value = one.fit.relative_gap, one.test.p_value
        ci_low, ci_high = one.test.interval()
        when = format_month(one.fit.start)
        direction = "lower" if estimate < 0 else "higher"
        size = numbers.percent(abs(estimate) * 100)
        found = (
            f"After {when}, {lower} in {name} was {size} {direction} "
            f"than in its synthetic counterpart, a departure larger than all but "
            f"{one.test.rank - 1} of {len(one.test.placebos)} boroughs without the programme show "
            f"(placebo p = {p_value:.2f})."
        )
        none_found = (
            f"No detectable difference: after {when}, {lower} in {name} was "
            f"{size} {direction} than in its synthetic counterpart, "
            f"within what boroughs without the programme show (placebo p = {p_value:.2f})."
        )
        fit = one.fit
        fitted = pd.DataFrame(
            {"period": fit.treated.index, "observed": fit.treated.values, "fitted": fit.synthetic}
        ).reset_index(drop=True)
    else:
        names = [boroughs.BY_CODE[e.fit.area].name for e in estimates]
        checks = [c for e, n in zip(estimates, names, strict=True) for c in e.checks(n)]
        good = [e for e in estimates if e.poor_fit is None]
        usable = good or estimates
        estimate = float(np.mean([e.fit.relative_gap for e in usable]))
        p_value = pooled_p_value(usable)
        ci_low = ci_high = math.nan
        direction = "lower" if estimate < 0 else "higher"
        size = numbers.percent(abs(estimate) * 100)
        if good and len(good) < len(estimates):
            # Boroughs that cannot be synthesised are left out of the pool, not the verdict.
            checks = [c for c in checks if c.name != "pre-period fit" or c.passed]
            caveats = [
                *caveats,
                "Left out of the pooled average for poor pre-period fit: "
                + ", ".join(n for e, n in zip(estimates, names, strict=True) if e.poor_fit)
                + ".",
            ]
        found = (
            f"Across {len(usable)} boroughs after each one's start, {lower} was on average "
            f"{size} {direction} than in their synthetic counterparts "
            f"(placebo p = {p_value:.2f})."
        )
        none_found = (
            f"No detectable difference: across {len(usable)} boroughs after each one's start, "
            f"{lower} was on average {size} {direction} than in their "
            f"synthetic counterparts, within what placebo boroughs show (p = {p_value:.2f})."
        )
        fitted = None
    verdict, verdict_text = decide_verdict(
        p_value=p_value, checks=checks, found=found, none_found=none_found
    )
    n_periods = len(rates.index)
    return ModelResult(
        model="synth",
        outcome=outcome,
        term="relative_gap",
        estimate=estimate,
        std_error=math.nan,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        n_obs=n_periods * (len(estimates) + len(donors)),
        n_areas=len(estimates) + len(donors),
        n_periods=n_periods,
        caveats=caveats,
        diagnostics={
            "donor_boroughs": len(donors),
            "treated_boroughs": len(estimates),
            "gap_count_cumulative": float(sum(e.gap_count for e in estimates)),
        },
        extra={"boroughs": [e.to_dict() for e in estimates]},
        fitted=fitted,
        fitted_unit=f"crimes {unit} a month",
        verdict=verdict,
        verdict_text=verdict_text,
        checks=checks,
    )
