"""Population denominators: who a rate is per, and the one rule for a year with no estimate.

Each outcome measure declares its population band (``OutcomeMeasure.population_band``): ``all
ages`` (a rate per 100,000 residents) or ``LOW-HIGH`` years of age (per 100,000 aged 1-24 for
knife crime with injury, victims under 25). Delivery rates stay per 1,000 aged 10-24
(:data:`DELIVERY_BAND`). Every rate that divides by population gets its people from
:func:`denominator` (or, for pure frame code, :func:`nearest_years`), and says its band with
:func:`rate_unit`.

A month's people are its calendar year's estimate; when that year has none, the nearest stored
year stands in (ties to the earlier year) and :func:`years_used_note` says so in one line:
"2021-2025 use 2020 population".
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.errors import RegistryError
from registry.schema import Borough, OutcomeMeasure, Population

ALL_AGES = "all ages"
DELIVERY_BAND = "10-24"
OLDEST_SINGLE_AGE = 89  # the ONS and Nomis files stop single years at 89, then "90+"
_BAND_RE = re.compile(r"^(\d{1,2})\s*-\s*(\d{1,2})$")
_COLUMNS = ["area", "year", "people", "population_year"]


def parse_band(text: str) -> str:
    """``text`` as a stored band (``all ages`` or ``LOW-HIGH``), or a plain refusal."""
    cleaned = " ".join(text.strip().lower().split())
    if cleaned in {ALL_AGES, "all", "all ages (residents)", "residents"}:
        return ALL_AGES
    match = _BAND_RE.match(cleaned)
    if match:
        low, high = int(match.group(1)), int(match.group(2))
        if low <= high <= OLDEST_SINGLE_AGE:
            return f"{low}-{high}"
    raise RegistryError(
        f"{text!r} is not a population band: use 'all ages' or ages such as '1-24' "
        f"(0 to {OLDEST_SINGLE_AGE}, youngest first)."
    )


def band_ages(band: str) -> tuple[int, int] | None:
    """The first and last single year of age of ``band`` (``None`` for all ages)."""
    if band == ALL_AGES:
        return None
    low, high = band.split("-")
    return int(low), int(high)


def band_words(band: str) -> str:
    """``residents`` or ``aged 1-24``: the words after "per 100,000"."""
    return "residents" if band == ALL_AGES else f"aged {band}"


def people_words(band: str) -> str:
    """A column heading for the people counted: ``Residents`` or ``People aged 1-24``."""
    return "Residents" if band == ALL_AGES else f"People aged {band}"


def rate_unit(band: str, per: int = 100_000) -> str:
    """``per 100,000 residents``, ``per 100,000 aged 1-24``."""
    return f"per {per:,} {band_words(band)}"


def measure_band(session: Session, measure: str) -> str:
    """The population band ``measure`` declares (all ages when the measure is unknown here)."""
    band = session.scalar(
        select(OutcomeMeasure.population_band).where(OutcomeMeasure.code == measure)
    )
    return band or ALL_AGES


def bands_needed(session: Session) -> list[str]:
    """Every band a measure declares, plus the delivery band, in a stable order."""
    declared = session.scalars(select(OutcomeMeasure.population_band).distinct())
    return sorted({DELIVERY_BAND, *declared})


def stored_population(session: Session, band: str) -> pd.DataFrame:
    """Every stored estimate of ``band`` (``area``, ``year``, ``people``)."""
    rows = session.execute(
        select(Borough.gss_code, Population.year, func.sum(Population.people))
        .join(Borough, Borough.id == Population.borough_id)
        .where(Population.age_band == band)
        .group_by(Borough.gss_code, Population.year)
    )
    return pd.DataFrame(
        [(a, int(y), int(p)) for a, y, p in rows], columns=["area", "year", "people"]
    )


def nearest_years(stored: pd.DataFrame, years: Sequence[int]) -> pd.DataFrame:
    """People per area for each of ``years``, the nearest stored year standing in for a missing
    one (ties to the earlier year).

    ``stored`` has ``area``, ``year``, ``people``. Returns ``area``, ``year``, ``people`` and
    ``population_year`` (the year used); areas with no estimate at all are left out.
    """
    if stored.empty or not len(years):
        return pd.DataFrame(
            {
                "area": pd.Series(dtype=object),
                "year": pd.Series(dtype="int64"),
                "people": pd.Series(dtype=float),
                "population_year": pd.Series(dtype="int64"),
            }
        )
    pivot = stored.pivot_table(index="area", columns="year", values="people", aggfunc="sum")
    stored_years = pivot.columns.to_numpy(dtype="int64")
    values = pivot.to_numpy(dtype=float)
    rows = np.arange(len(values))
    frames = []
    for year in sorted(set(years)):
        # Distance doubled, plus one for later years: ties go to the earlier year.
        order = np.argsort(np.abs(stored_years - year) * 2 + (stored_years > year), kind="stable")
        first = np.argmax(~np.isnan(values[:, order]), axis=1)
        frames.append(
            pd.DataFrame(
                {
                    "area": pivot.index,
                    "year": year,
                    "people": values[:, order][rows, first],
                    "population_year": stored_years[order][first],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[_COLUMNS]


def _span(years: list[int]) -> str:
    """``2021-2025`` for a run of years, ``2019, 2021`` otherwise."""
    runs: list[list[int]] = []
    for year in sorted(years):
        if runs and year == runs[-1][-1] + 1:
            runs[-1].append(year)
        else:
            runs.append([year])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def years_used_note(people: pd.DataFrame) -> str | None:
    """One line saying which population year stood in for a year with none, or ``None``.

    ``people`` is :func:`nearest_years`' frame for the areas and years shown: "2021-2025 use
    2020 population"; where only some areas lacked the year, "(for 3 areas)" says so.
    """
    if people.empty:
        return None
    gaps = people[people["year"] != people["population_year"]]
    if gaps.empty:
        return None
    n_areas = people["area"].nunique()
    parts = []
    for used, rows in gaps.groupby(gaps["population_year"], sort=True):
        years = sorted(set(int(y) for y in rows["year"]))
        verb = "uses" if len(years) == 1 else "use"
        part = f"{_span(years)} {verb} {int(used)} population"
        affected = rows["area"].nunique()
        if affected < n_areas:
            part += f" (for {affected} area{'s' if affected > 1 else ''})"
        parts.append(part)
    return "; ".join(parts)


@dataclass(frozen=True)
class Denominator:
    """The people a rate is per: one band, per area and year, with the year that stood in."""

    band: str
    people: pd.DataFrame  # area, year, people, population_year


def no_population_message(band: str, scope: str = "") -> str:
    """The refusal when a band has no stored estimate (the importer derives every measure's band
    from single years of age, so loading the ONS or Nomis file again fills it)."""
    who = "of all ages" if band == ALL_AGES else f"aged {band}"
    return (
        f"No population {who} is stored{scope}, so rates cannot be computed; import population "
        "estimates by single year of age (`vru import population`), which give every band the "
        "measures need."
    )


def denominator(
    session: Session,
    *,
    measure: str | None,
    start: dt.date,
    end: dt.date,
    areas: Sequence[str] | None = None,
) -> Denominator:
    """The people ``measure``'s rate is per, for ``areas`` (GSS codes; every area when
    ``None``) and each calendar year from ``start`` to ``end``.

    ``measure=None`` gives the delivery denominator (young people aged 10-24).
    """
    band = DELIVERY_BAND if measure is None else measure_band(session, measure)
    stored = stored_population(session, band)
    if areas is not None:
        stored = stored[stored["area"].isin(list(areas))]
    return Denominator(band, nearest_years(stored, range(start.year, end.year + 1)))
