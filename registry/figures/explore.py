"""Explore: aggregated delivery and outcome figures per area and period, the borough table and
the tile map (the funnel plot is :mod:`registry.figures.funnel`).

The database does the grouping: :func:`delivery_by_month` asks it for opportunities summed per
area and month (for the programmes or funding streams chosen), :func:`outcomes_by_month` for one
measure's counts per area and month, and :func:`young_people` and :func:`measure_population` for
the population per area and year (aged 10-24 for delivery, the measure's band for the outcome).
The page caches each part on its own and puts them together as :class:`ExploreData`. Those frames
are small (areas × months), so every other filter (boroughs, period, counts or rates, month /
quarter / financial year) is a pure function over them: a filter change never reloads a table.

Definitions (stated the same way on the pages):

- delivery rate: opportunities per 1,000 people aged 10-24; outcome rate: count per 100,000 of
  the measure's population band (residents, or aged 1-24 for knife crime with injury under 25). A
  period's people are the mean over its months of each month's calendar-year population (nearest
  stored year when a year is missing, :mod:`registry.denominators`); a rate is over the whole
  period, not annualised;
- borough figures and the London rate of the funnel plot count borough-allocated offences only
  (the police's "Unknown" and airport counts belong to no borough);
- change: the period's total against the same months one year earlier.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Select, String, func, select, type_coerce
from sqlalchemy.orm import Session

from registry.analysis.panel import for_programmes, stored_measures
from registry.auth import Principal, require
from registry.denominators import Denominator, denominator, years_used_note
from registry.errors import RegistryError
from registry.outcomes.measures import get_measure
from registry.outcomes.sources import months_of_record, of_record
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
)
from registry.schema import Borough, Delivery, FundingStream, OutcomeCount, Programme
from registry.windows import complete_month, is_whole

FREQUENCIES = {"month": "Monthly", "quarter": "Quarterly", "financial_year": "Financial year"}
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
    # The latest month whose 12-month outcome windows are wholly stored (windows.complete_month).
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


def _months_held(session: Session) -> dict[int, set[dt.date]]:
    """Each measure's months with a count of record (measure id -> months)."""
    held: dict[int, set[dt.date]] = {}
    for measure_id, month in session.execute(
        select(OutcomeCount.measure_id, OutcomeCount.month)
        .where(of_record(session, OutcomeCount))
        .distinct()
    ):
        held.setdefault(measure_id, set()).add(as_date(month))
    return held


def explore_options(session: Session, *, principal: Principal) -> ExploreOptions:
    require(principal, "outcomes.read")
    measures = stored_measures(session)
    first, last = months_of_record(session)
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
        complete_month=complete_month(_months_held(session).values()),
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
    return _by_area_month(
        session, for_programmes(session, stmt, programmes, funding_streams), "opportunities"
    )


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


def tile_map(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (one row per area, as from :func:`borough_table`) placed on the London tile grid.

    Areas with no tile (outside London's 33 boroughs) are left out.
    """
    tiles = pd.DataFrame(
        [(code, row, col, short) for code, (row, col, short) in BOROUGH_TILES.items()],
        columns=["area", "row", "col", "short"],
    )
    return tiles.merge(table, on="area", how="inner")
