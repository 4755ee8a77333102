"""Borough × month (or quarter) panel: opportunities, delivery rate, outcome counts and rates.

Definitions (stated the same way in the README and on the pages):

- young people: a borough's population aged 10-24 for the calendar year containing the month
  (nearest available year when a year is missing, said in the caveats);
- delivery rate: opportunities per 1,000 young people; outcome rate: count per 100,000 people of
  the measure's population band (residents, or aged 1-24 for knife crime with injury under 25),
  the same year rule (:mod:`registry.denominators`).

The database does the grouping (deliveries summed per borough and month); pandas only joins the
small result and, for quarters, adds three months together. Delivery is known from the first month
the registry holds any delivery: a borough-month after that with no delivery row had none; months
before it are unknown, so lags never invent zeros the registry cannot vouch for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from registry import boroughs
from registry.auth import Principal, require
from registry.denominators import (
    DELIVERY_BAND,
    nearest_years,
    no_population_message,
    rate_unit,
    stored_population,
    years_used_note,
)
from registry.errors import NotFoundError, RegistryError
from registry.outcomes.measures import get_measure
from registry.outcomes.sources import of_record, record_sources
from registry.periods import (
    add_months,
    as_date,
    format_month,
    month_start,
    months_between,
    quarter_start,
)
from registry.programmes import name_key
from registry.schema import (
    Borough,
    Delivery,
    FundingStream,
    OutcomeCount,
    OutcomeMeasure,
    Programme,
)

FREQUENCIES = {"month": 1, "quarter": 3}


@dataclass(frozen=True)
class Panel:
    """The assembled panel and what was learnt while building it.

    ``frame`` has one row per borough and period with columns ``area`` (GSS code),
    ``area_name``, ``period`` (first day of the month or quarter), ``opportunities``,
    ``young_people`` (aged 10-24, for the delivery rate), ``population`` (the measure's band,
    for the outcome rate), ``population_year``, ``delivery_rate``, ``count``, ``rate`` and, for
    each lag ``n`` asked for, ``delivery_rate_lag{n}`` (``delivery_rate_lag0`` is the same
    period). ``population_note`` says which population year stood in for a missing one.
    """

    measure: str
    frequency: str
    frame: pd.DataFrame
    band: str = DELIVERY_BAND
    population_note: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def rate_unit(self) -> str:
        """``per 100,000 residents``: who the outcome rate is per."""
        return rate_unit(self.band)

    @property
    def n_areas(self) -> int:
        return int(self.frame["area"].nunique())

    @property
    def n_periods(self) -> int:
        return int(self.frame["period"].nunique())


def lag_column(lag: int) -> str:
    return f"delivery_rate_lag{lag}"


def stored_measures(session: Session) -> list[tuple[str, str]]:
    """``(code, label)`` of every measure with at least one stored count, in measure order."""
    return [
        (code, label)
        for code, label in session.execute(
            select(OutcomeMeasure.code, OutcomeMeasure.label)
            .where(OutcomeMeasure.id.in_(list(record_sources(session))))
            .order_by(OutcomeMeasure.id)
        )
    ]


def ids_by_name(
    session: Session, model: type[Programme | FundingStream], names: Sequence[str]
) -> list[int]:
    wanted = {name_key(n): n for n in names}
    rows = session.execute(select(model.id, model.name)).all()
    found = {name_key(name): id_ for id_, name in rows if name_key(name) in wanted}
    missing = [wanted[k] for k in wanted if k not in found]
    if missing:
        kind = "programme" if model is Programme else "funding stream"
        raise NotFoundError(f"There is no {kind} called {', '.join(repr(m) for m in missing)}.")
    return list(found.values())


def for_programmes(
    session: Session,
    stmt: Select[Any],
    programmes: Sequence[str] = (),
    funding_streams: Sequence[str] = (),
) -> Select[Any]:
    """``stmt``, a query on :class:`Delivery`, kept to the deliveries of the programmes and
    funding streams named (every delivery when both are empty); an unknown name is refused."""
    if not (programmes or funding_streams):
        return stmt
    stmt = stmt.join(Programme, Programme.id == Delivery.programme_id)
    if programmes:
        stmt = stmt.where(Programme.id.in_(ids_by_name(session, Programme, programmes)))
    if funding_streams:
        ids = ids_by_name(session, FundingStream, funding_streams)
        stmt = stmt.where(Programme.funding_stream_id.in_(ids))
    return stmt


def borough_codes(names: Sequence[str]) -> list[str]:
    """GSS codes of the boroughs named (names in any variant, or codes)."""
    codes = []
    for name in names:
        try:
            codes.append(boroughs.lookup(name).gss_code)
        except boroughs.UnknownBoroughError as exc:
            raise RegistryError(str(exc)) from exc
    return codes


def build_panel(
    delivery: pd.DataFrame,
    outcomes: pd.DataFrame,
    population: pd.DataFrame,
    *,
    measure: str,
    known_from: dt.date,
    band: str = DELIVERY_BAND,
    band_population: pd.DataFrame | None = None,
    lags: Sequence[int] = (1,),
    frequency: str = "month",
) -> Panel:
    """Assemble the panel from monthly frames (pure: no database).

    ``delivery``: ``area``, ``month``, ``opportunities`` (summed over the programmes chosen);
    ``outcomes``: ``area``, ``month``, ``count``; ``population``: ``area``, ``year``, ``people``
    aged 10-24; ``band_population`` the same for the measure's ``band`` (``population`` when the
    band is 10-24 or it is not given). ``known_from`` is the first month delivery is known
    (months with no delivery row after it had none).
    """
    if band_population is None:
        band_population = population
    if frequency not in FREQUENCIES:
        raise RegistryError(
            f"Frequency must be one of {', '.join(FREQUENCIES)}, not {frequency!r}."
        )
    if outcomes.empty:
        raise RegistryError(f"No {measure} counts are stored for the boroughs and period asked.")
    for frame_, band_ in ((population, DELIVERY_BAND), (band_population, band)):
        if frame_.empty:
            raise RegistryError(no_population_message(band_))
    notes: list[str] = []
    step = FREQUENCIES[frequency]
    to_period = quarter_start if frequency == "quarter" else month_start
    outcomes = outcomes.assign(period=[to_period(m) for m in outcomes["month"]])
    if frequency == "quarter":
        grouped = outcomes.groupby(["area", "period"], as_index=False).agg(
            count=("count", "sum"), months=("count", "size")
        )
        partial = int((grouped["months"] < 3).sum())
        if partial:
            notes.append(f"{partial} borough-quarters with fewer than 3 months of counts left out.")
        outcomes = grouped[grouped["months"] == 3].drop(columns="months")
    else:
        outcomes = outcomes[["area", "period", "count"]]
    areas = sorted(outcomes["area"].unique())
    first_period = to_period(known_from)
    if frequency == "quarter" and first_period != known_from:
        first_period = add_months(first_period, 3)  # only whole quarters of known delivery
    last_period = max(outcomes["period"].max(), first_period)
    n_steps = months_between(first_period, last_period) // step
    periods = [add_months(first_period, i * step) for i in range(n_steps + 1)]
    grid = pd.DataFrame([(a, p) for a in areas for p in periods], columns=["area", "period"])
    if not delivery.empty:
        monthly = delivery.assign(period=[to_period(m) for m in delivery["month"]])
        summed = monthly.groupby(["area", "period"], as_index=False)["opportunities"].sum()
        grid = grid.join(summed.set_index(["area", "period"]), on=["area", "period"])
    else:
        grid["opportunities"] = np.nan
    grid["opportunities"] = grid["opportunities"].fillna(0.0)
    grid["year"] = [p.year for p in grid["period"]]
    years = sorted(set(grid["year"]) | {p.year for p in outcomes["period"]})
    young = nearest_years(population[population["area"].isin(areas)], years)
    at_risk = nearest_years(band_population[band_population["area"].isin(areas)], years)
    if young.empty or at_risk.empty:
        raise RegistryError(
            no_population_message(
                DELIVERY_BAND if young.empty else band,
                f" for the boroughs with {measure} counts",
            )
        )
    no_pop = sorted(set(areas) - (set(young["area"]) & set(at_risk["area"])))
    if no_pop:
        names = ", ".join(boroughs.BY_CODE[a].name for a in no_pop)
        notes.append(f"Left out for want of any population figure: {names}.")
    pop = young.rename(columns={"people": "young_people"}).drop(columns="population_year")
    pop = pop.merge(at_risk.rename(columns={"people": "population"}), on=["area", "year"])
    grid = grid.join(pop.set_index(["area", "year"]), on=["area", "year"], how="inner")
    grid["delivery_rate"] = grid["opportunities"] / grid["young_people"] * 1000.0
    grid = grid.sort_values(["area", "period"]).reset_index(drop=True)
    by_area = grid.groupby("area")["delivery_rate"]
    for lag in sorted(set(lags)):
        if lag < 0:
            raise RegistryError(f"A lag must be 0 or more periods, not {lag}.")
        grid[lag_column(lag)] = by_area.shift(lag) if lag else grid["delivery_rate"]
    frame = outcomes.join(
        grid.set_index(["area", "period"]), on=["area", "period"], how="inner"
    ).drop(columns="year")
    # Outcomes before delivery was known have no delivery rate: they cannot enter a model.
    needed = [lag_column(lag) for lag in lags]
    frame = frame.dropna(subset=needed)
    if frame.empty or frame["period"].nunique() < 2:
        have = outcomes["period"].nunique()
        raise RegistryError(
            f"Too few periods for a lag of {max(lags, default=0)}: delivery is known from "
            f"{format_month(known_from)} and {have} {frequency}(s) of {measure} counts are "
            "stored, leaving fewer than 2 periods with a lagged delivery rate."
        )
    frame["count"] = frame["count"].astype(int)
    frame["rate"] = frame["count"] / frame["population"] * 100_000.0
    frame["area_name"] = [boroughs.BY_CODE[a].name for a in frame["area"]]
    columns = [
        "area",
        "area_name",
        "period",
        "opportunities",
        "young_people",
        "population",
        "population_year",
        "delivery_rate",
        "count",
        "rate",
        *dict.fromkeys(lag_column(lag) for lag in lags),
    ]
    frame = frame[list(dict.fromkeys(columns))].sort_values(["area", "period"])
    frame = frame.reset_index(drop=True)
    used = frame.assign(year=[p.year for p in frame["period"]])
    used = used[["area", "year", "population_year"]].drop_duplicates()
    return Panel(measure, frequency, frame, band, years_used_note(used), notes)


def load_panel(
    session: Session,
    *,
    principal: Principal,
    measure: str,
    programmes: Sequence[str] = (),
    funding_streams: Sequence[str] = (),
    borough_names: Sequence[str] = (),
    start: dt.date | None = None,
    end: dt.date | None = None,
    lags: Sequence[int] = (1,),
    frequency: str = "month",
) -> Panel:
    """The borough panel for ``measure`` from the database, filtered as asked.

    Deliveries count when not deleted (``deleted_at IS NULL``); programme and funding-stream
    filters choose which deliveries are summed; the borough filter and period choose the rows.
    """
    require(principal, "models.run")
    outcome = get_measure(session, measure)
    codes = borough_codes(borough_names) if borough_names else None
    code_of = dict(session.execute(select(Borough.id, Borough.gss_code)).tuples().all())

    known = session.scalar(select(func.min(Delivery.month)).where(Delivery.deleted_at.is_(None)))
    if known is None:
        raise RegistryError("No delivery is recorded, so there is nothing to relate outcomes to.")
    known_from = as_date(known)
    lead_in = max(lags, default=0) * FREQUENCIES.get(frequency, 1) + 2

    stmt = (
        select(Delivery.borough_id, Delivery.month, func.sum(Delivery.opportunities).label("opp"))
        .where(Delivery.deleted_at.is_(None))
        .group_by(Delivery.borough_id, Delivery.month)
    )
    stmt = for_programmes(session, stmt, programmes, funding_streams)
    if start is not None:
        stmt = stmt.where(Delivery.month >= add_months(month_start(start), -lead_in))
    if end is not None:
        stmt = stmt.where(Delivery.month <= end)
    delivery = pd.DataFrame(
        [(code_of[b], as_date(m), int(o)) for b, m, o in session.execute(stmt)],
        columns=["area", "month", "opportunities"],
    )

    out_stmt = select(OutcomeCount.borough_id, OutcomeCount.month, OutcomeCount.count).where(
        of_record(session, OutcomeCount, outcome.id)
    )
    if start is not None:
        out_stmt = out_stmt.where(OutcomeCount.month >= start)
    if end is not None:
        out_stmt = out_stmt.where(OutcomeCount.month <= end)
    outcomes = pd.DataFrame(
        [(code_of[b], as_date(m), int(c)) for b, m, c in session.execute(out_stmt)],
        columns=["area", "month", "count"],
    )
    if codes is not None:
        outcomes = outcomes[outcomes["area"].isin(codes)]
        delivery = delivery[delivery["area"].isin(codes)]
    band = outcome.population_band
    population = stored_population(session, DELIVERY_BAND)
    return build_panel(
        delivery,
        outcomes,
        population,
        measure=measure,
        known_from=known_from,
        band=band,
        band_population=(population if band == DELIVERY_BAND else stored_population(session, band)),
        lags=lags,
        frequency=frequency,
    )
