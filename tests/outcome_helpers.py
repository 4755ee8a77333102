"""Shared helpers for the outcome import tests: fixtures, direct pandas totals, stored totals."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.schema import (
    AuditEvent,
    Borough,
    ImportBatch,
    OutcomeCount,
    OutcomeMeasure,
    OutcomeRevision,
    Population,
    UnallocatedCount,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "outcomes"

# The fixtures' area spellings, written out by hand (not through registry.boroughs).
AREAS = {
    "barking & dagenham": "E09000002",
    "barking and dagenham": "E09000002",
    "camden": "E09000007",
    "city of london": "E09000001",
    "islington": "E09000019",
    "southwark": "E09000028",
    "hackney": "E09000012",
    "hammersmith & fulham": "E09000013",
    "hillingdon": "E09000017",
    "kensington & chelsea": "E09000020",
    "kensington and chelsea": "E09000020",
    "kingston": "E09000021",
    "kingston upon thames": "E09000021",
    "lambeth": "E09000022",
    "richmond": "E09000027",
    "richmond upon thames": "E09000027",
    "westminster": "E09000033",
}
PSEUDO = {
    "aviation security(so18)": "Aviation Security (SO18)",
    "aviation security (so18)": "Aviation Security (SO18)",
    "london heathrow and london city airports": "London Heathrow and London City Airports",
    "unknown": "Unknown",
}
# (major, minor) in lower case -> measure, for the categories the fixtures hold.
MPS_CATEGORIES = {
    ("violence against the person", "murder"): "homicide",
    ("violence against the person", "homicide"): "homicide",
    ("violence against the person", "wounding/gbh"): "violence_with_injury",
    ("violence against the person", "assault with injury"): "violence_with_injury",
    ("violence against the person", "violence with injury"): "violence_with_injury",
    ("violence against the person", "offensive weapon"): "possession_of_weapons",
    ("robbery", "personal property"): "robbery_personal",
    ("robbery", "robbery of personal property"): "robbery_personal",
}
DASHBOARD_SUBGROUPS = {
    "Knife Injury Victims (non DA 1-24)": "knife_crime_injury_u25",
    "Gun Crime": "gun_crime",
}
Totals = dict[tuple[str, str, dt.date], int]


def area_key(value: str) -> str:
    return str(value).replace("\xa0", " ").strip().lower()


def mps_borough_expected(
    path: Path, area_col: str, major: str, minor: str
) -> tuple[Totals, Totals]:
    frame = pd.read_csv(path, dtype=str)
    months = [c for c in frame.columns if c.isdigit() and len(c) == 6]

    def measure(row: pd.Series) -> str | None:
        key = (row[major].strip().lower(), row[minor].strip().lower())
        if key[0] == "possession of weapons":
            return "possession_of_weapons"
        return MPS_CATEGORIES.get(key)

    frame["measure"] = frame.apply(measure, axis=1)
    frame = frame[frame["measure"].notna()]
    long = frame.melt(id_vars=["measure", area_col], value_vars=months, var_name="m")
    long["value"] = long["value"].astype(int)
    long["month"] = [dt.date(int(m[:4]), int(m[4:]), 1) for m in long["m"]]
    return _split(long, area_col)


def _split(long: pd.DataFrame, area_col: str) -> tuple[Totals, Totals]:
    keyed = long[area_col].map(area_key)
    code = keyed.map(lambda a: a.upper() if a.startswith("e09") else AREAS.get(a))
    pseudo = keyed.map(PSEUDO.get)
    boroughs = long[code.notna()].assign(area=code).groupby(["measure", "area", "month"])["value"]
    unalloc = (
        long[pseudo.notna()].assign(area=pseudo).groupby(["measure", "area", "month"])["value"]
    )
    assert (code.notna() | pseudo.notna()).all(), "fixture area missing from AREAS/PSEUDO"
    return (
        {k: int(v) for k, v in boroughs.sum().items()},
        {k: int(v) for k, v in unalloc.sum().items()},
    )


def dashboard_expected(frame: pd.DataFrame) -> tuple[Totals, Totals]:
    frame = frame.rename(columns={"Crime Subtype": "Offence Subgroup"})
    rows = frame[
        (frame["Area Type"] == "Borough")
        & (frame["Measure"] == "Offences")
        & frame["Offence Subgroup"].isin(DASHBOARD_SUBGROUPS)
    ].copy()
    rows["measure"] = rows["Offence Subgroup"].map(DASHBOARD_SUBGROUPS)
    rows["month"] = [dt.date(d.year, d.month, 1) for d in pd.to_datetime(rows["Month_Year"])]
    rows["value"] = rows["Count"].astype(int)
    return _split(rows, "Area name")


def police_uk_expected(paths: list[Path]) -> tuple[Totals, Totals, dict[str, int]]:
    frame = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    weapons = frame[frame["Crime type"] == "Possession of weapons"]
    london_force = weapons["Falls within"].isin(
        ["Metropolitan Police Service", "City of London Police"]
    )
    no_loc = weapons["LSOA name"].isna()
    prefix = weapons["LSOA name"].fillna("").str.rsplit(" ", n=1).str[0].str.lower()
    code = prefix.map(AREAS)
    counted = weapons[~no_loc & code.notna()].assign(gss=code)
    month = counted["Month"].map(lambda m: dt.date(int(m[:4]), int(m[5:]), 1))
    boroughs = counted.assign(month=month).groupby(["gss", "month"]).size()
    unalloc = weapons[no_loc & london_force]
    umonth = unalloc["Month"].map(lambda m: dt.date(int(m[:4]), int(m[5:]), 1))
    unalloc_totals = unalloc.assign(month=umonth).groupby("month").size()
    skipped = {
        "crime type not mapped to a measure": int(len(frame) - len(weapons)),
        "no location, outside London": int((no_loc & ~london_force).sum()),
        "outside London": int((~no_loc & code.isna()).sum()),
    }
    return (
        {("possession_of_weapons", g, m): int(n) for (g, m), n in boroughs.items()},
        {("possession_of_weapons", "No Location", m): int(n) for m, n in unalloc_totals.items()},
        skipped,
    )


def stored(session: Session) -> tuple[Totals, Totals]:
    counts = session.execute(
        select(OutcomeMeasure.code, Borough.gss_code, OutcomeCount.month, OutcomeCount.count)
        .join(OutcomeMeasure, OutcomeCount.measure_id == OutcomeMeasure.id)
        .join(Borough, OutcomeCount.borough_id == Borough.id)
    ).tuples()
    unalloc = session.execute(
        select(
            OutcomeMeasure.code,
            UnallocatedCount.source_area,
            UnallocatedCount.month,
            UnallocatedCount.count,
        ).join(OutcomeMeasure, UnallocatedCount.measure_id == OutcomeMeasure.id)
    ).tuples()
    return {(c, g, m): n for c, g, m, n in counts}, {(c, a, m): n for c, a, m, n in unalloc}


def table_sizes(session: Session) -> dict[str, int]:
    """Row counts of every table an import writes, to show a refusal changed nothing."""
    return {
        model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
        for model in (
            OutcomeCount,
            UnallocatedCount,
            OutcomeRevision,
            Population,
            ImportBatch,
            AuditEvent,
        )
    }
