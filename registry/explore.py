"""Explore and Overview: aggregated delivery and outcome figures, borough rates, funnel limits.

The database does the grouping: :func:`explore_data` asks it for opportunities summed per area and
month (for the programmes or funding streams chosen), outcome counts per area and month for one
measure, and the population per area and year (aged 10-24 for delivery, the measure's band for the
outcome). Those frames are small (areas × months),
so every other filter (boroughs, period, counts or rates, month / quarter / financial year) is a
pure function over them: a filter change never reloads a table.

Definitions (stated the same way on the pages):

- delivery rate: opportunities per 1,000 people aged 10-24; outcome rate: count per 100,000 of
  the measure's population band (residents, or aged 1-24 for knife crime with injury under 25). A
  period's people are the mean over its months of each month's calendar-year population (nearest
  stored year when a year is missing, :mod:`registry.denominators`); a rate is over the whole
  period, not annualised;
- borough figures and the London rate of the funnel plot count borough-allocated offences only
  (the police's "Unknown" and airport counts belong to no borough);
- change: the period's total against the same months one year earlier.

Funnel limits are exact Poisson limits around the London rate (Spiegelhalter 2005, with the
interpolation that makes them smooth): for a borough with ``E`` young people (in 100,000s) the
expected count is ``rate × E`` and the limits are the interpolated Poisson quantiles of that mean,
divided by ``E``, where ``E`` is the people of the measure's band.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from sqlalchemy import Select, String, func, select, type_coerce
from sqlalchemy.orm import Session

from registry.analysis.panel import ids_by_name, stored_measures
from registry.analysis.series import monthly_series, window_total
from registry.auth import Principal, require
from registry.denominators import (
    Denominator,
    denominator,
    no_population_message,
    years_used_note,
)
from registry.errors import RegistryError
from registry.outcomes.measures import SeriesBreak, get_measure, series_breaks
from registry.outcomes.sources import of_record, record_sources
from registry.periods import (
    add_months,
    as_date,
    check_period,
    financial_year_label,
    financial_year_start,
    format_month,
    month_range,
    quarter_label,
    quarter_start,
    rolling_window,
)
from registry.schema import (
    Borough,
    Delivery,
    FundingStream,
    OutcomeCount,
    OutcomeMeasure,
    Programme,
)
from registry.windows import is_whole, not_given, whole_only

FREQUENCIES = {"month": "Monthly", "quarter": "Quarterly", "financial_year": "Financial year"}
LIMITS = {"95%": 0.95, "99.8%": 0.998}
PER_DELIVERY = 1_000.0
PER_OUTCOME = 100_000.0

# A tile map of London: (row, column) of each borough on a fixed grid that keeps neighbours next to
# each other, with a short label for the tile. Row 0 is the north.
BOROUGH_TILES: dict[str, tuple[int, int, str]] = {
    "E09000010": (0, 4, "Enf"),
    "E09000015": (1, 2, "Hrw"),
    "E09000003": (1, 3, "Bar"),
    "E09000014": (1, 4, "Hgy"),
    "E09000031": (1, 5, "WFo"),
    "E09000017": (2, 0, "Hil"),
    "E09000009": (2, 1, "Eal"),
    "E09000005": (2, 2, "Bre"),
    "E09000007": (2, 3, "Cam"),
    "E09000019": (2, 4, "Isl"),
    "E09000012": (2, 5, "Hck"),
    "E09000026": (2, 6, "Red"),
    "E09000016": (2, 7, "Hav"),
    "E09000018": (3, 0, "Hou"),
    "E09000013": (3, 1, "H&F"),
    "E09000020": (3, 2, "K&C"),
    "E09000033": (3, 3, "Wes"),
    "E09000001": (3, 4, "City"),
    "E09000030": (3, 5, "TH"),
    "E09000025": (3, 6, "New"),
    "E09000002": (3, 7, "B&D"),
    "E09000027": (4, 1, "Ric"),
    "E09000032": (4, 2, "Wan"),
    "E09000022": (4, 3, "Lam"),
    "E09000028": (4, 4, "Sou"),
    "E09000023": (4, 5, "Lew"),
    "E09000011": (4, 6, "Gre"),
    "E09000004": (4, 7, "Bex"),
    "E09000021": (5, 2, "Kin"),
    "E09000024": (5, 3, "Mer"),
    "E09000008": (5, 4, "Cro"),
    "E09000006": (5, 5, "Brm"),
    "E09000029": (6, 3, "Sut"),
}


@dataclass(frozen=True)
class ExploreOptions:
    """What the Explore filters offer, and the months with data."""

    measures: list[tuple[str, str]]
    areas: list[tuple[str, str]]
    programmes: list[str]
    funding_streams: list[str]
    first_month: dt.date | None
    last_month: dt.date | None
    # The latest month whose 12-month outcome windows are wholly stored (complete_month).
    complete_month: dt.date | None = None

    @property
    def default_end(self) -> dt.date | None:
        """Where a page's period ends by default: on complete outcome data when there is any."""
        return self.complete_month or self.last_month

    @property
    def empty(self) -> bool:
        return not self.measures or self.last_month is None


@dataclass(frozen=True)
class ExploreData:
    """The aggregated frames every Explore figure is computed from (areas × months, small)."""

    measure: str
    measure_label: str
    areas: pd.DataFrame  # area, area_name
    delivery: pd.DataFrame  # area, month, opportunities
    outcomes: pd.DataFrame  # area, month, count
    population: pd.DataFrame  # area, year, young_people (aged 10-24, every year of the data)
    band: str  # the measure's population band: who its rate is per
    # The band's people: area, year, people, population_year (the year that stood in).
    band_population: pd.DataFrame


@dataclass(frozen=True)
class ExploreFilter:
    """The filters applied to :class:`ExploreData`; empty ``areas`` means every area."""

    start: dt.date
    end: dt.date
    areas: tuple[str, ...] = ()
    frequency: str = "month"
    rates: bool = False

    def __post_init__(self) -> None:
        if self.frequency not in FREQUENCIES:
            raise RegistryError(
                f"Frequency must be one of {', '.join(FREQUENCIES)}, not {self.frequency!r}."
            )
        check_period(self.start, self.end)


def complete_month(session: Session, months: int = 12) -> dt.date | None:
    """The latest month at which every measure with counts has its ``months``-month window
    ending there wholly stored (:mod:`registry.windows`), or ``None`` when a measure has no
    whole window at all. Crime data usually stops before delivery data: a page that opened on
    the latest delivery month would show only part-stored outcome windows.
    """
    stored: dict[int, set[dt.date]] = {}
    for measure_id, month in session.execute(
        select(OutcomeCount.measure_id, OutcomeCount.month)
        .where(of_record(session, OutcomeCount))
        .distinct()
    ):
        stored.setdefault(measure_id, set()).add(as_date(month))
    ends = [_latest_whole_end(held, months) for held in stored.values()]
    return None if not ends or None in ends else min(e for e in ends if e is not None)


def _latest_whole_end(held: set[dt.date], months: int) -> dt.date | None:
    for end in sorted(held, reverse=True):
        start = add_months(end, 1 - months)
        if is_whole(start, end, sum(m in held for m in _months(start, end))):
            return end
    return None


def explore_options(session: Session, *, principal: Principal) -> ExploreOptions:
    require(principal, "outcomes.read")
    measures = stored_measures(session)
    first, last = session.execute(
        select(func.min(OutcomeCount.month), func.max(OutcomeCount.month)).where(
            of_record(session, OutcomeCount)
        )
    ).one()
    dfirst, dlast = session.execute(
        select(func.min(Delivery.month), func.max(Delivery.month)).where(
            Delivery.deleted_at.is_(None)
        )
    ).one()
    firsts = [as_date(v) for v in (first, dfirst) if v is not None]
    lasts = [as_date(v) for v in (last, dlast) if v is not None]
    return ExploreOptions(
        measures=measures,
        areas=[
            (code, name)
            for code, name in session.execute(
                select(Borough.gss_code, Borough.name).order_by(Borough.name)
            )
        ],
        programmes=list(session.scalars(select(Programme.name).order_by(Programme.name))),
        funding_streams=list(
            session.scalars(select(FundingStream.name).order_by(FundingStream.name))
        ),
        first_month=min(firsts) if firsts else None,
        last_month=max(lasts) if lasts else None,
        complete_month=complete_month(session),
    )


def _code_of(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Borough.id, Borough.gss_code)).tuples().all())


def _raw(column: Any) -> Any:
    """The column as the driver returns it: no per-row date conversion in Python (tens of
    thousands of rows); :func:`_by_area_month` converts the whole column at once."""
    return type_coerce(column, String)


def _by_area_month(session: Session, stmt: Select[Any], name: str) -> pd.DataFrame:
    """``(borough id, month, value)`` rows as ``area``, ``month`` (timestamp), ``name``."""
    # Tens of thousands of small rows: read them off the driver's cursor in one go rather than
    # building a Row object for each (the columns are plain ints and date text or dates).
    result = session.connection().execute(stmt)
    try:
        raw = pd.DataFrame(result.cursor.fetchall(), columns=["id", "month", name])
    finally:
        result.close()
    return pd.DataFrame(
        {
            "area": raw["id"].map(_code_of(session)),
            "month": pd.to_datetime(raw["month"].astype(str).str[:10], format="%Y-%m-%d"),
            name: raw[name].astype("int64"),
        }
    )


def area_names(session: Session, *, principal: Principal) -> pd.DataFrame:
    """Every area's code and name (``area``, ``area_name``)."""
    require(principal, "outcomes.read")
    return pd.DataFrame(
        session.execute(select(Borough.gss_code, Borough.name)).tuples().all(),
        columns=["area", "area_name"],
    )


def delivery_by_month(
    session: Session,
    *,
    principal: Principal,
    programmes: Sequence[str] = (),
    funding_streams: Sequence[str] = (),
) -> pd.DataFrame:
    """Opportunities summed by the database per area and month (``area``, ``month`` as a
    timestamp, ``opportunities``) for the programmes and funding streams chosen (all when empty).
    """
    require(principal, "outcomes.read")
    stmt = (
        select(Delivery.borough_id, _raw(Delivery.month), func.sum(Delivery.opportunities))
        .where(Delivery.deleted_at.is_(None))
        .group_by(Delivery.borough_id, Delivery.month)
    )
    if programmes or funding_streams:
        stmt = stmt.join(Programme, Programme.id == Delivery.programme_id)
    if programmes:
        stmt = stmt.where(Programme.id.in_(ids_by_name(session, Programme, programmes)))
    if funding_streams:
        ids = ids_by_name(session, FundingStream, funding_streams)
        stmt = stmt.where(Programme.funding_stream_id.in_(ids))
    return _by_area_month(session, stmt, "opportunities")


def outcomes_by_month(session: Session, *, principal: Principal, measure: str) -> pd.DataFrame:
    """``measure``'s counts per area and month (``area``, ``month``, ``count``)."""
    require(principal, "outcomes.read")
    outcome = get_measure(session, measure)
    stmt = (
        select(OutcomeCount.borough_id, _raw(OutcomeCount.month), func.sum(OutcomeCount.count))
        .where(of_record(session, OutcomeCount, outcome.id))
        .group_by(OutcomeCount.borough_id, OutcomeCount.month)
    )
    return _by_area_month(session, stmt, "count")


def young_people(
    session: Session, *, principal: Principal, first_year: int, last_year: int
) -> pd.DataFrame:
    """People aged 10-24 (the delivery rate's) per area and year from ``first_year`` to
    ``last_year`` (``area``, ``year``, ``young_people``), the nearest stored year standing in for
    a missing one."""
    people = measure_population(
        session, principal=principal, measure=None, first_year=first_year, last_year=last_year
    ).people
    return people.rename(columns={"people": "young_people"})[["area", "year", "young_people"]]


def measure_population(
    session: Session,
    *,
    principal: Principal,
    measure: str | None,
    first_year: int,
    last_year: int,
) -> Denominator:
    """The people ``measure``'s rate is per (aged 10-24 for ``None``, delivery), per area and
    year from ``first_year`` to ``last_year``."""
    require(principal, "outcomes.read")
    return denominator(
        session,
        measure=measure,
        start=dt.date(first_year, 1, 1),
        end=dt.date(last_year, 12, 1),
    )


def explore_data(
    session: Session,
    *,
    principal: Principal,
    measure: str,
    programmes: Sequence[str] = (),
    funding_streams: Sequence[str] = (),
) -> ExploreData:
    """Everything Explore draws from, in four grouped queries; nothing row-level is loaded.

    The page caches the parts separately (a new measure does not reload delivery).
    """
    options = explore_options(session, principal=principal)
    first = options.first_month.year if options.first_month else 2000
    last = options.last_month.year if options.last_month else first
    at_risk = measure_population(
        session, principal=principal, measure=measure, first_year=first, last_year=last
    )
    return ExploreData(
        measure,
        get_measure(session, measure).label,
        area_names(session, principal=principal),
        delivery_by_month(
            session, principal=principal, programmes=programmes, funding_streams=funding_streams
        ),
        outcomes_by_month(session, principal=principal, measure=measure),
        young_people(session, principal=principal, first_year=first, last_year=last),
        at_risk.band,
        at_risk.people,
    )


def period_of(month: dt.date, frequency: str) -> tuple[dt.date, str]:
    """The first month and label of the month, quarter or UK financial year holding ``month``."""
    if frequency == "quarter":
        return quarter_start(month), quarter_label(month)
    if frequency == "financial_year":
        return dt.date(financial_year_start(month), 4, 1), financial_year_label(month)
    return month, format_month(month)


def _within(
    frame: pd.DataFrame, start: dt.date, end: dt.date, areas: Sequence[str]
) -> pd.DataFrame:
    month = frame["month"]
    keep = (month >= pd.Timestamp(start)) & (month <= pd.Timestamp(end))
    if areas:
        keep &= frame["area"].isin(list(areas))
    return frame[keep]


def _months(start: dt.date, end: dt.date) -> list[dt.date]:
    return month_range(start, end)


def _people_by_year(data: ExploreData, areas: Sequence[str]) -> pd.DataFrame:
    """Per area and year: ``young_people`` (aged 10-24) and ``population`` (the measure's band),
    with the ``population_year`` that stood in."""
    young = data.population[data.population["area"].isin(list(areas))]
    band = data.band_population[data.band_population["area"].isin(list(areas))]
    return young.merge(
        band.rename(columns={"people": "population"}), on=["area", "year"], how="outer"
    )


def population_note(data: ExploreData, flt: ExploreFilter) -> str | None:
    """One line saying which population year stood in for the filter's years with none, e.g.
    "2021-2025 use 2020 population" (``None`` when every year has its own)."""
    areas = list(flt.areas) or list(data.areas["area"])
    years = range(flt.start.year, flt.end.year + 1)
    band = data.band_population
    return years_used_note(band[band["area"].isin(areas) & band["year"].isin(years)])


def _period_end(first: dt.date, frequency: str) -> dt.date:
    """The last month of the period (month, quarter or financial year) starting ``first``."""
    return add_months(first, {"month": 0, "quarter": 2, "financial_year": 11}[frequency])


def partial_periods(flt: ExploreFilter) -> list[str]:
    """Labels of the periods the filter holds only part of, at either end: left out of the
    trend, since a quarter holding only December would read as a dip."""
    ends = {period_of(flt.start, flt.frequency), period_of(flt.end, flt.frequency)}
    return [
        label
        for first, label in sorted(ends)
        if first < flt.start or _period_end(first, flt.frequency) > flt.end
    ]


def trend_series(data: ExploreData, flt: ExploreFilter) -> pd.DataFrame:
    """Delivery and the outcome per period for the areas chosen, summed over them.

    Columns ``period``, ``label``, ``opportunities``, ``count``, ``young_people`` (aged 10-24),
    ``population`` (the measure's band), ``months_stored`` (months of the period with an outcome
    count), ``delivery_rate`` (per 1,000 aged 10-24) and ``outcome_rate`` (per 100,000 of the
    band). Periods the filter cuts are left out (:func:`partial_periods`); a period's outcome is
    empty unless every month of it is stored, its delivery empty when it ends after the last
    month with recorded delivery; a period with a figure left empty for want of some of its
    months is labelled ``(part)``.
    """
    areas = list(flt.areas) or list(data.areas["area"])
    months = _months(flt.start, flt.end)
    frame = pd.DataFrame({"month": pd.to_datetime(months)})
    delivery = _within(data.delivery, flt.start, flt.end, flt.areas)
    outcomes = _within(data.outcomes, flt.start, flt.end, flt.areas)
    frame = frame.join(delivery.groupby("month")["opportunities"].sum(), on="month")
    frame = frame.join(outcomes.groupby("month")["count"].sum(), on="month")
    people = _people_by_year(data, areas).groupby("year")[["young_people", "population"]].sum()
    frame["young_people"] = frame["month"].dt.year.map(people["young_people"])
    frame["population"] = frame["month"].dt.year.map(people["population"])
    # Months before any delivery or outcome is stored are unknown, not zero.
    frame = frame.dropna(subset=["opportunities", "count"], how="all")
    keys = {m: period_of(m, flt.frequency) for m in months}
    periods = [keys[m.date()] for m in frame["month"]]
    frame["period"] = [p for p, _ in periods]
    frame["label"] = [label for _, label in periods]
    grouped = frame.groupby(["period", "label"], as_index=False).agg(
        opportunities=("opportunities", "sum"),
        count=("count", "sum"),
        has_count=("count", "count"),
        young_people=("young_people", "mean"),
        population=("population", "mean"),
    )
    ends = [_period_end(p, flt.frequency) for p in grouped["period"]]
    # Periods the filter cuts at either end are left out (see partial_periods); an outcome
    # figure needs every month of its period stored (registry.windows), and delivery needs its
    # period to end by the last month any delivery is recorded for.
    cut = [p < flt.start or e > flt.end for p, e in zip(grouped["period"], ends, strict=True)]
    grouped = grouped[~np.array(cut, dtype=bool)].copy()
    ends = [e for e, c in zip(ends, cut, strict=True) if not c]
    stored = grouped["has_count"].to_numpy()
    whole = np.array(
        [is_whole(p, e, n) for p, e, n in zip(grouped["period"], ends, stored, strict=True)],
        dtype=bool,
    )
    grouped.loc[~whole, "count"] = np.nan
    grouped["months_stored"] = stored.astype(int)
    recorded = data.delivery["month"].max() if len(data.delivery) else pd.NaT
    late = np.array([pd.isna(recorded) or pd.Timestamp(e) > recorded for e in ends], dtype=bool)
    begun = np.array(
        [pd.notna(recorded) and pd.Timestamp(p) <= recorded for p in grouped["period"]]
    )
    part = (~whole & (stored > 0)) | (late & begun)
    grouped.loc[late, "opportunities"] = np.nan
    grouped.loc[part, "label"] = grouped.loc[part, "label"] + " (part)"
    grouped = grouped.drop(columns="has_count").dropna(subset=["opportunities", "count"], how="all")
    grouped["delivery_rate"] = grouped["opportunities"] / grouped["young_people"] * PER_DELIVERY
    grouped["outcome_rate"] = grouped["count"] / grouped["population"] * PER_OUTCOME
    return grouped.sort_values("period").reset_index(drop=True)


def _area_totals(
    data: ExploreData, start: dt.date, end: dt.date, areas: Sequence[str]
) -> pd.DataFrame:
    """Per area: opportunities, count (empty when none stored), the number of months with a
    stored count, and the mean young people (aged 10-24) and population (the measure's band)."""
    delivery = _within(data.delivery, start, end, areas).groupby("area")["opportunities"].sum()
    stored = _within(data.outcomes, start, end, areas).groupby("area")
    outcomes, months = stored["count"].sum(), stored["month"].nunique().rename("months_stored")
    weights = pd.Series([m.year for m in _months(start, end)]).value_counts()
    pop = _people_by_year(data, areas)
    pop = pop[pop["year"].isin(weights.index)]
    weight = pop["year"].map(weights)
    people = [
        (
            (pop[c] * weight).groupby(pop["area"]).sum(min_count=1)
            / weight.groupby(pop["area"]).sum()
        ).rename(c)
        for c in ("young_people", "population")
    ]
    return pd.concat([delivery, outcomes, months, *people], axis=1).reindex(list(areas))


def borough_table(data: ExploreData, flt: ExploreFilter) -> pd.DataFrame:
    """One row per area: opportunities, count, young people (aged 10-24), the population of the
    measure's band, rates and change on a year earlier.

    ``change_pct`` compares the period's count with the same months one year earlier; it is
    empty unless every month of both windows has a stored count (a part-stored window would
    read as a fall) and the earlier count is above zero. ``outcome_rate`` is empty unless the
    period is whole; ``months_stored`` says how many of its months have a stored count.
    """
    areas = list(flt.areas) or list(data.areas["area"])
    now = _area_totals(data, flt.start, flt.end, areas)
    before = _area_totals(data, add_months(flt.start, -12), add_months(flt.end, -12), areas)
    names = data.areas.set_index("area")["area_name"]
    table = pd.DataFrame(
        {
            "area": areas,
            "borough": [names.get(a, a) for a in areas],
            "opportunities": now["opportunities"].fillna(0).astype(int).to_numpy(),
            "count": now["count"].to_numpy(),
            "young_people": now["young_people"].round(0).to_numpy(),
            "population": now["population"].round(0).to_numpy(),
            "count_year_earlier": before["count"].to_numpy(),
        }
    )
    table["delivery_rate"] = table["opportunities"] / table["young_people"] * PER_DELIVERY
    table["outcome_rate"] = table["count"] / table["population"] * PER_OUTCOME
    stored = now["months_stored"].fillna(0).to_numpy()
    stored_before = before["months_stored"].fillna(0).to_numpy()
    table["months_stored"] = stored.astype(int)
    # The one whole-window rule (registry.windows): no rate or change from a part-stored window.
    whole = is_whole(flt.start, flt.end, stored)
    whole_before = is_whole(add_months(flt.start, -12), add_months(flt.end, -12), stored_before)
    table["outcome_rate"] = table["outcome_rate"].where(whole)
    earlier = table["count_year_earlier"].where(
        whole & whole_before & (table["count_year_earlier"] > 0)
    )
    table["change_pct"] = (table["count"] - earlier) / earlier * 100.0
    return table.sort_values("borough").reset_index(drop=True)


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


def tile_map(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (one row per area, as from :func:`borough_table`) placed on the London tile grid.

    Areas with no tile (outside London's 33 boroughs) are left out.
    """
    tiles = pd.DataFrame(
        [(code, row, col, short) for code, (row, col, short) in BOROUGH_TILES.items()],
        columns=["area", "row", "col", "short"],
    )
    return tiles.merge(table, on="area", how="inner")


@dataclass(frozen=True)
class OutcomeTile:
    """One outcome's last 12 months against the same months a year earlier and against 2019."""

    code: str
    label: str
    window_start: dt.date
    window_end: dt.date
    count: int
    year_earlier: int | None
    change_year_pct: float | None
    count_2019: int | None
    change_2019_pct: float | None
    months_with_data: int = 12  # of the 12 in the window; a change needs all 12
    # Breaks in the series from the earliest comparison window's start to this window's end.
    series_breaks: tuple[SeriesBreak, ...] = ()

    @property
    def stored_note(self) -> str:
        """Empty when the window is whole, else why no change is given (registry.windows)."""
        if is_whole(self.window_start, self.window_end, self.months_with_data):
            return ""
        return not_given(self.window_start, self.window_end, self.months_with_data)


@dataclass(frozen=True)
class Overview:
    """Headline tiles for the period chosen."""

    start: dt.date
    end: dt.date
    opportunities: int
    programmes_delivering: int
    outcomes: list[OutcomeTile]


def _pct(now: int, then: int | None) -> float | None:
    if not then:
        return None
    return (now - then) / then * 100.0


def overview(session: Session, *, principal: Principal, start: dt.date, end: dt.date) -> Overview:
    """Opportunities delivered from ``start`` to ``end``; each outcome's 12 months ending ``end``.

    Outcome totals are London's (boroughs plus unallocated, matching the publisher). The
    comparison windows are the same 12 months one year earlier and calendar year 2019; a
    comparison is empty when its window is not fully stored.
    """
    require(principal, "outcomes.read")
    check_period(start, end)
    live = [Delivery.deleted_at.is_(None), Delivery.month.between(start, end)]
    opportunities, programmes = session.execute(
        select(
            func.coalesce(func.sum(Delivery.opportunities), 0),
            func.count(func.distinct(Delivery.programme_id)),
        ).where(*live)
    ).one()
    tiles = []
    for code, label in session.execute(
        select(OutcomeMeasure.code, OutcomeMeasure.label)
        .where(OutcomeMeasure.id.in_(list(record_sources(session))))
        .order_by(OutcomeMeasure.id)
    ):
        series = monthly_series(session, principal=principal, measure=code)
        window = rolling_window(end, 12)
        current = window_total(series, window.end, 12)
        if current.months_with_data == 0:
            continue
        earlier = window_total(series, add_months(window.end, -12), 12)
        y2019 = window_total(series, dt.date(2019, 12, 1), 12)
        year_earlier = earlier.count if earlier.whole else None
        count_2019 = y2019.count if y2019.whole else None
        now = [(current.start, current.end, current.months_with_data)]
        crossed = series_breaks(session, code, min(earlier.start, y2019.start), current.end)
        tiles.append(
            OutcomeTile(
                code,
                label,
                current.start,
                current.end,
                current.count,
                year_earlier,
                whole_only(_pct(current.count, year_earlier), now),
                count_2019,
                whole_only(_pct(current.count, count_2019), now),
                current.months_with_data,
                tuple(crossed),
            )
        )
    return Overview(start, end, int(opportunities or 0), int(programmes or 0), tiles)
