"""Explore and Overview: aggregated delivery and outcome figures, borough rates, funnel limits.

The database does the grouping: :func:`explore_data` asks it for opportunities summed per area and
month (for the programmes or funding streams chosen), outcome counts per area and month for one
measure, and the population aged 10-24 per area and year. Those frames are small (areas × months),
so every other filter (boroughs, period, counts or rates, month / quarter / financial year) is a
pure function over them: a filter change never reloads a table.

Definitions (stated the same way on the pages):

- delivery rate: opportunities per 1,000 people aged 10-24; outcome rate: count per 100,000 aged
  10-24. A period's young people are the mean over its months of each month's calendar-year
  population (nearest stored year when a year is missing); a rate is over the whole period, not
  annualised;
- borough figures and the London rate of the funnel plot count borough-allocated offences only
  (the police's "Unknown" and airport counts belong to no borough);
- change: the period's total against the same months one year earlier.

Funnel limits are exact Poisson limits around the London rate (Spiegelhalter 2005, with the
interpolation that makes them smooth): for a borough with ``E`` young people (in 100,000s) the
expected count is ``rate × E`` and the limits are the interpolated Poisson quantiles of that mean,
divided by ``E``.
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

from registry.analysis.panel import AGE_BAND, ids_by_name, stored_measures
from registry.analysis.series import monthly_series, window_total
from registry.auth import Principal, require
from registry.errors import RegistryError
from registry.models import (
    Borough,
    Delivery,
    FundingStream,
    OutcomeCount,
    OutcomeMeasure,
    Population,
    Programme,
)
from registry.outcomes.measures import get_measure
from registry.outcomes.sources import of_record, record_sources
from registry.periods import (
    add_months,
    as_date,
    financial_year_label,
    financial_year_start,
    format_month,
    quarter_label,
    quarter_start,
    rolling_window,
)

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
    population: pd.DataFrame  # area, year, young_people (every year of the data)


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
        if self.end < self.start:
            raise RegistryError(
                f"The period ends ({format_month(self.end)}) before it starts "
                f"({format_month(self.start)})."
            )


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
    """People aged 10-24 per area and year from ``first_year`` to ``last_year`` (``area``,
    ``year``, ``young_people``), the nearest stored year standing in for a missing one."""
    require(principal, "outcomes.read")
    code_of = _code_of(session)
    rows = session.execute(
        select(Population.borough_id, Population.year, func.sum(Population.people))
        .where(Population.age_band == AGE_BAND)
        .group_by(Population.borough_id, Population.year)
    )
    stored = pd.DataFrame(
        [(code_of[b], int(y), int(p)) for b, y, p in rows], columns=["area", "year", "people"]
    )
    if stored.empty:  # typed, so rates come out as NaN (not objects) where no one is counted
        return pd.DataFrame(
            {
                "area": pd.Series(dtype=object),
                "year": pd.Series(dtype="int64"),
                "young_people": pd.Series(dtype=float),
            }
        )
    # The same rule as the panel's nearest_population, vectorised over areas: for each year,
    # the stored years in order of distance (ties to the earlier), first one an area has.
    pivot = stored.pivot(index="area", columns="year", values="people")
    stored_years = pivot.columns.to_numpy()
    values = pivot.to_numpy(dtype=float)
    frames = []
    for year in range(first_year, last_year + 1):
        order = np.argsort(np.abs(stored_years - year) * 2 + (stored_years > year), kind="stable")
        ranked = values[:, order]
        first = np.argmax(~np.isnan(ranked), axis=1)
        frames.append(
            pd.DataFrame(
                {
                    "area": pivot.index,
                    "year": year,
                    "young_people": ranked[np.arange(len(ranked)), first],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


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
    return ExploreData(
        measure,
        get_measure(session, measure).label,
        area_names(session, principal=principal),
        delivery_by_month(
            session, principal=principal, programmes=programmes, funding_streams=funding_streams
        ),
        outcomes_by_month(session, principal=principal, measure=measure),
        young_people(session, principal=principal, first_year=first, last_year=last),
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
    n = (end.year - start.year) * 12 + end.month - start.month
    return [add_months(start, i) for i in range(n + 1)]


def _people_by_year(data: ExploreData, areas: Sequence[str]) -> pd.DataFrame:
    return data.population[data.population["area"].isin(list(areas))]


def trend_series(data: ExploreData, flt: ExploreFilter) -> pd.DataFrame:
    """Delivery and the outcome per period for the areas chosen, summed over them.

    Columns ``period``, ``label``, ``opportunities``, ``count``, ``young_people``,
    ``delivery_rate`` (per 1,000) and ``outcome_rate`` (per 100,000).
    """
    areas = list(flt.areas) or list(data.areas["area"])
    months = _months(flt.start, flt.end)
    frame = pd.DataFrame({"month": pd.to_datetime(months)})
    delivery = _within(data.delivery, flt.start, flt.end, flt.areas)
    outcomes = _within(data.outcomes, flt.start, flt.end, flt.areas)
    frame = frame.join(delivery.groupby("month")["opportunities"].sum(), on="month")
    frame = frame.join(outcomes.groupby("month")["count"].sum(), on="month")
    people = _people_by_year(data, areas).groupby("year")["young_people"].sum()
    frame["young_people"] = frame["month"].dt.year.map(people)
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
    )
    grouped.loc[grouped["has_count"] == 0, "count"] = np.nan
    grouped = grouped.drop(columns="has_count")
    grouped["delivery_rate"] = grouped["opportunities"] / grouped["young_people"] * PER_DELIVERY
    grouped["outcome_rate"] = grouped["count"] / grouped["young_people"] * PER_OUTCOME
    return grouped.sort_values("period").reset_index(drop=True)


def _area_totals(
    data: ExploreData, start: dt.date, end: dt.date, areas: Sequence[str]
) -> pd.DataFrame:
    """Per area: opportunities, count (empty when none stored), the number of months with a
    stored count, and mean young people."""
    delivery = _within(data.delivery, start, end, areas).groupby("area")["opportunities"].sum()
    stored = _within(data.outcomes, start, end, areas).groupby("area")
    outcomes, months = stored["count"].sum(), stored["month"].nunique().rename("months_stored")
    weights = pd.Series([m.year for m in _months(start, end)]).value_counts()
    pop = _people_by_year(data, areas)
    pop = pop[pop["year"].isin(weights.index)]
    weighted = pop["young_people"] * pop["year"].map(weights)
    people = (
        weighted.groupby(pop["area"]).sum() / pop["year"].map(weights).groupby(pop["area"]).sum()
    )
    return pd.concat([delivery, outcomes, months, people.rename("young_people")], axis=1).reindex(
        list(areas)
    )


def borough_table(data: ExploreData, flt: ExploreFilter) -> pd.DataFrame:
    """One row per area: opportunities, count, young people, rates and change on a year earlier.

    ``change_pct`` compares the period's count with the same months one year earlier; it is
    empty unless every month of both windows has a stored count (a part-stored window would
    read as a fall) and the earlier count is above zero.
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
            "count_year_earlier": before["count"].to_numpy(),
        }
    )
    table["delivery_rate"] = table["opportunities"] / table["young_people"] * PER_DELIVERY
    table["outcome_rate"] = table["count"] / table["young_people"] * PER_OUTCOME
    length = len(_months(flt.start, flt.end))
    whole = (now["months_stored"].to_numpy() == length) & (
        before["months_stored"].to_numpy() == length
    )
    earlier = table["count_year_earlier"].where(whole & (table["count_year_earlier"] > 0))
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


@dataclass(frozen=True)
class Funnel:
    """A funnel plot: the areas' rates, the London rate, and control-limit curves."""

    london_rate: float
    points: pd.DataFrame  # area, borough, young_people, count, outcome_rate, expected, band
    limits: pd.DataFrame  # young_people, limit, side, rate
    notes: list[str] = field(default_factory=list)


def funnel(data: ExploreData, flt: ExploreFilter, every: pd.DataFrame | None = None) -> Funnel:
    """Borough outcome rates per 100,000 against the London rate with 95% and 99.8% limits.

    The London rate is over every area with counts and population (whatever the area filter);
    the points are the areas chosen. ``band`` says where each point falls. ``every`` is
    :func:`borough_table` for every area over the same period, when the caller has it already.
    """
    if every is None:
        every = borough_table(data, dataclasses.replace(flt, areas=()))
    usable = every.dropna(subset=["count", "young_people"])
    usable = usable[usable["young_people"] > 0]
    if usable.empty:
        raise RegistryError(
            "No area has both outcome counts and a population aged 10-24 in this period, so "
            "there is no rate to plot."
        )
    london_rate = float(usable["count"].sum() / usable["young_people"].sum() * PER_OUTCOME)
    chosen = set(flt.areas) if flt.areas else set(data.areas["area"])
    points = usable[usable["area"].isin(chosen)].copy()
    exposure = points["young_people"].to_numpy() / PER_OUTCOME
    points["expected"] = london_rate * exposure
    counts = points["count"].to_numpy()
    band = np.full(len(points), "within 95% limits", dtype=object)
    for label, level in LIMITS.items():
        low = poisson_limit(points["expected"].to_numpy(), (1 - level) / 2)
        high = poisson_limit(points["expected"].to_numpy(), 1 - (1 - level) / 2)
        band = np.where(counts > high, f"above {label} limit", band)
        band = np.where(counts < low, f"below {label} limit", band)
    points["band"] = band
    lo = max(float(usable["young_people"].min()) * 0.8, 1.0)
    hi = float(usable["young_people"].max()) * 1.1
    grid = np.geomspace(lo, hi, 60)
    curves = []
    for label, level in LIMITS.items():
        for side, p in (("lower", (1 - level) / 2), ("upper", 1 - (1 - level) / 2)):
            e = grid / PER_OUTCOME
            rate = poisson_limit(london_rate * e, p) / e
            curves.append(
                pd.DataFrame({"young_people": grid, "limit": label, "side": side, "rate": rate})
            )
    notes = []
    missing = sorted(chosen - set(usable["area"]))
    if missing:
        names = data.areas.set_index("area")["area_name"]
        notes.append(
            "Not plotted for want of counts or population: "
            + ", ".join(str(names.get(a, a)) for a in missing)
            + "."
        )
    return Funnel(
        london_rate,
        points[["area", "borough", "young_people", "count", "outcome_rate", "expected", "band"]]
        .sort_values("borough")
        .reset_index(drop=True),
        pd.concat(curves, ignore_index=True),
        notes,
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
    if end < start:
        raise RegistryError(
            f"The period ends ({format_month(end)}) before it starts ({format_month(start)})."
        )
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
        tiles.append(
            OutcomeTile(
                code,
                label,
                current.start,
                current.end,
                current.count,
                year_earlier,
                _pct(current.count, year_earlier) if current.whole else None,
                count_2019,
                _pct(current.count, count_2019) if current.whole else None,
                current.months_with_data,
            )
        )
    return Overview(start, end, int(opportunities or 0), int(programmes or 0), tiles)
