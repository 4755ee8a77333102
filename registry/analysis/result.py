"""Plain result objects every analysis returns, and the caveats written into them.

Pages, reports and the CLI only render these: no statistics happen after a result is built.
Numbers are kept at full precision; rounding is for display.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from registry.periods import format_month
from registry.windows import is_whole, not_given

ASSOCIATION = (
    "Association, not causation: the models show whether more delivery went with lower "
    "outcome rates, not that delivery caused any change."
)
TARGETING = (
    "Programmes are targeted where violence is high, so regression to the mean is expected: "
    "high counts tend to fall back whatever is done, which can look like an effect of delivery."
)
DENOMINATOR = (
    "Resident population is a poor denominator where many victims are visitors, as in "
    "Westminster: rates there overstate the risk to the borough's own residents."
)
SMALL_COUNTS = (
    "Small counts: {zero_share:.0%} of borough-periods have a count of zero and the mean is "
    "{mean:.1f} per borough-period, so single events move rates a lot and intervals are wide."
)
SHORT_SERIES = (
    "Short series: {n_periods} periods are too few to separate trend, season and any effect "
    "with confidence."
)
MISSING_POPULATION = "{note} (no estimate is loaded for those years)."


# The three verdicts a result can carry (``verdict`` in ``--json``), worst first.
NOT_INTERPRETABLE = "not interpretable"
NO_ASSOCIATION = "no detectable association"
ASSOCIATION_FOUND = "association"
VERDICTS = (NOT_INTERPRETABLE, NO_ASSOCIATION, ASSOCIATION_FOUND)


@dataclass(frozen=True)
class Check:
    """One design check behind a verdict (a lead placebo, a pre-trend test, pre-period fit...).

    ``detail`` is a plain sentence a commissioner can read ("Delivery next quarter goes with
    crime this quarter (p = 0.01): delivery follows crime, so the estimate is not an effect").
    """

    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


def decide_verdict(
    *, p_value: float, checks: list[Check], found: str, none_found: str, alpha: float = 0.05
) -> tuple[str, str]:
    """The verdict and its one sentence: a failed check first, then the interval's answer.

    ``found`` and ``none_found`` are the sentences for an association and for none; a failed
    check overrides both and names the check, since its estimate cannot be read as either.
    """
    failed = [c for c in checks if not c.passed]
    if failed or not math.isfinite(p_value):
        reasons = "; ".join(c.detail for c in failed) or "the model gave no usable estimate"
        return NOT_INTERPRETABLE, f"Not interpretable: {reasons.rstrip('.')}."
    if p_value < alpha:
        return ASSOCIATION_FOUND, found
    return NO_ASSOCIATION, none_found


@dataclass(frozen=True)
class ModelResult:
    """One fitted model: the headline term with its interval, the sample, diagnostics, caveats.

    ``extra`` holds model-specific figures (incidence rate ratios, the slope change of an
    interrupted time series, an event study's coefficients, a permutation p-value).
    """

    model: str
    outcome: str
    term: str
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    n_obs: int
    n_areas: int
    n_periods: int
    caveats: list[str]
    diagnostics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # Per period: ``period``, ``observed`` and ``fitted`` (the model's own scale, summed or
    # averaged over boroughs as ``fitted_unit`` says); for charts, not part of the JSON.
    fitted: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    fitted_unit: str = ""
    # The answer in words, first: one of VERDICTS, its sentence, and the checks behind it.
    verdict: str = ""
    verdict_text: str = ""
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``vru analyse --json``: the verdict, the issue's keys, the extras."""
        out: dict[str, Any] = {
            "verdict": self.verdict or None,
            "verdict_text": self.verdict_text or None,
            "checks": [c.to_dict() for c in self.checks],
            "model": self.model,
            "outcome": self.outcome,
            "term": self.term,
            "estimate": self.estimate,
            "std_error": self.std_error,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "n_obs": self.n_obs,
            "n_areas": self.n_areas,
            "n_periods": self.n_periods,
            "caveats": list(self.caveats),
        }
        out.update(jsonable(self.extra))
        out["diagnostics"] = jsonable(self.diagnostics)
        return out


@dataclass(frozen=True)
class WindowTotal:
    """The total of a measure over a window of whole months."""

    start: dt.date
    end: dt.date
    count: int
    unallocated: int
    months_with_data: int

    @property
    def whole(self) -> bool:
        """Every month of the window has a stored count (:func:`registry.windows.is_whole`)."""
        return bool(is_whole(self.start, self.end, self.months_with_data))

    def not_given(self, what: str = "change") -> str:
        """Why no ``what`` comes from this window, in words (:func:`registry.windows.not_given`)."""
        return not_given(self.start, self.end, self.months_with_data, what)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": format_month(self.start),
            "end": format_month(self.end),
            "count": self.count,
            "unallocated": self.unallocated,
            "months_stored": self.months_with_data,
        }


@dataclass(frozen=True)
class TrendChange:
    """Change of a window's total against a baseline window, with an exact Poisson interval
    and one allowing for overdispersion.

    ``change`` and its interval are fractions (-0.25 is a 25% fall); ``p_value`` is the exact
    conditional (binomial) test of equal rates in the two windows. All four are NaN (null in
    JSON) unless both windows are whole.
    """

    measure: str
    area: str
    window_months: int
    current: WindowTotal
    baseline: WindowTotal
    change: float
    ci_low: float
    ci_high: float
    p_value: float
    caveats: list[str]
    # Every break in the measure's series from the baseline's start to the current window's end,
    # as ``{"month": "2024-02", "note": ...}``: the two windows are not strictly comparable.
    series_breaks: list[dict[str, str]] = field(default_factory=list)
    # Allowing for overdispersion: ``dispersion`` (variance over Poisson's, from the series'
    # own year-on-year history, NaN when too short), the year pairs it came from, and the
    # interval and p-value it gives.
    dispersion: float = float("nan")
    dispersion_pairs: int = 0
    od_ci_low: float = float("nan")
    od_ci_high: float = float("nan")
    od_p_value: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``vru trend --json`` (change in percent, one decimal)."""
        return {
            "measure": self.measure,
            "area": self.area,
            "window_months": self.window_months,
            "current": self.current.to_dict(),
            "baseline": self.baseline.to_dict(),
            "change_pct": _pct(self.change),
            "ci_low": _pct(self.ci_low),
            "ci_high": _pct(self.ci_high),
            "p_value": self.p_value if math.isfinite(self.p_value) else None,
            "series_breaks": [dict(b) for b in self.series_breaks],
            "overdispersion": {
                "dispersion": jsonable(self.dispersion),
                "year_pairs": self.dispersion_pairs,
                "ci_low": _pct(self.od_ci_low),
                "ci_high": _pct(self.od_ci_high),
                "p_value": jsonable(self.od_p_value),
            },
        }

    @property
    def given(self) -> bool:
        """Whether a change was worked out (both windows whole)."""
        return math.isfinite(self.change)

    def overdispersion_words(self) -> str | None:
        """The interval allowing for overdispersion in words, for the CLI and the Models page
        alike; ``None`` when there is none (a window not whole, or too short a history)."""
        low, high = _pct(self.od_ci_low), _pct(self.od_ci_high)
        if low is None or high is None:
            return None
        return (
            f"Allowing for overdispersion: {low:+.1f}% to {high:+.1f}% "
            f"(p = {self.od_p_value:.3g}). The totals vary {self.dispersion:.2f} times as much "
            f"as chance alone would, judged from {self.dispersion_pairs} year-on-year pairs "
            "before the current window; read this interval when it is wider."
        )


def _pct(fraction: float) -> float | None:
    if not math.isfinite(fraction):
        return None
    return round(100 * fraction, 1)


def jsonable(value: Any) -> Any:
    """Dates as ``YYYY-MM``, numpy scalars as Python numbers, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.date):
        return format_month(value)
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def caveats_for(
    *,
    counts: list[int] | None = None,
    n_periods: int | None = None,
    population_note: str | None = None,
    short_below: int = 36,
) -> list[str]:
    """The caveats in words that go with every fit, plus those this sample calls for."""
    caveats = [ASSOCIATION, TARGETING]
    if counts:
        zero_share = sum(1 for c in counts if c == 0) / len(counts)
        mean = sum(counts) / len(counts)
        if zero_share >= 0.25 or mean < 10:
            caveats.append(SMALL_COUNTS.format(zero_share=zero_share, mean=mean))
    if n_periods is not None and n_periods < short_below:
        caveats.append(SHORT_SERIES.format(n_periods=n_periods))
    if population_note:
        caveats.append(MISSING_POPULATION.format(note=population_note))
    caveats.append(DENOMINATOR)
    return caveats


def caveats_or_default(
    caveats: list[str] | None, *, counts: list[int] | None, n_periods: int
) -> list[str]:
    """A fit's caveats: the caller's (a run puts its own, such as the synthetic-data note,
    together), else :func:`caveats_for` the counts and periods fitted."""
    return caveats if caveats is not None else caveats_for(counts=counts, n_periods=n_periods)
