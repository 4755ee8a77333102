"""Population: the ONS mid-year estimates by single year of age, or a long ``borough,year,
age_band,people`` file.

The ONS file has ``Code,Name,Geography,All ages,0,1,...,89,90+``, one row per area, numbers
quoted with thousands separators, trailing empty columns, rows of nothing but commas and the odd
Windows-1252 byte. It carries no year: give one, or keep it in the file name (``ONS2020_...``).
Single years are summed to the bands in :data:`BANDS`; areas other than the 33 London local
authorities (regions, England) are skipped and counted.
"""

from __future__ import annotations

import re

import pandas as pd

from registry import boroughs
from registry.outcomes.common import (
    ImportRefused,
    ParsedPopulation,
    Problem,
    Source,
    clean,
    read_csv_text,
    refuse,
    require_text,
)
from registry.outcomes.detect import describe

BANDS: dict[str, tuple[int, int]] = {"10-24": (10, 24), "10-17": (10, 17), "18-24": (18, 24)}
ALL_AGES = "all ages"
ONS_COLUMNS = ("Code", "All ages")
LONG_COLUMNS = ("borough", "year", "age_band", "people")
_YEAR_IN_NAME = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
NOT_LONDON = "not a London borough"


def year_from_name(name: str) -> int | None:
    """The year a file name holds (``ONS2020_mid_year.csv`` -> 2020), if exactly one."""
    years = set(_YEAR_IN_NAME.findall(name))
    return int(years.pop()) if len(years) == 1 else None


def _number(text: str) -> int | None:
    digits = clean(text).replace(",", "")
    return int(digits) if digits.isdigit() else None


def _frame(source: Source, fmt: str) -> pd.DataFrame:
    frame = read_csv_text(source, fmt)
    frame = frame.set_axis([clean(c) for c in frame.columns], axis=1)
    frame = frame.loc[:, [c for c in frame.columns if c and not c.startswith("Unnamed:")]]
    return frame.loc[~frame.map(lambda v: clean(v) == "").all(axis=1)]


def parse_ons(source: Source, year: int | None) -> ParsedPopulation:
    require_text(source, "ons-single-year")
    year = year or year_from_name(source.name)
    if year is None:
        raise refuse(
            source.name,
            "the ONS file does not say which year it estimates; give --year YYYY (or keep the "
            "year in the file name, as in ONS2020_...)",
        )
    if not 1900 <= year <= 2200:
        raise refuse(source.name, f"{year} is not a plausible year")
    frame = _frame(source, "ons-single-year")
    ages = [str(a) for a in range(10, 25)]
    missing = [c for c in (*ONS_COLUMNS, *ages) if c not in frame.columns]
    if missing:
        raise refuse(
            source.name,
            f"missing column(s) {', '.join(missing)} of the ONS single-year-of-age file"
            + describe(list(frame.columns), command="population", fmt="ons-single-year"),
        )
    parsed = ParsedPopulation(
        format="ons-single-year",
        file_name=source.name,
        sha256=source.sha256(),
        rows_read=len(frame),
    )
    problems: list[Problem] = []
    wanted = ["All ages", *ages]
    for idx, row in frame.iterrows():
        line = int(idx) + 2  # type: ignore[call-overload]
        borough = (
            boroughs.find(clean(row["Code"])) if clean(row["Code"]).startswith("E09") else None
        )
        if borough is None:
            parsed.skipped[NOT_LONDON] += 1
            continue
        values: dict[str, int] = {}
        for col in wanted:
            number = _number(row[col])
            if number is None:
                problems.append(
                    Problem(
                        "people must be a whole number of 0 or more", line, col, clean(row[col])
                    )
                )
            else:
                values[col] = number
        if len(values) < len(wanted):
            continue
        for band, (low, high) in BANDS.items():
            parsed.people[(borough.gss_code, year, band)] = sum(
                values[str(a)] for a in range(low, high + 1)
            )
        parsed.people[(borough.gss_code, year, ALL_AGES)] = values["All ages"]
    if problems:
        raise ImportRefused(source.name, problems)
    if not parsed.people:
        raise refuse(source.name, "no London borough rows (codes E09000001-E09000033) found")
    return parsed


def parse_long(source: Source) -> ParsedPopulation:
    frame = _frame(source, "long")
    frame = frame.set_axis([c.lower() for c in frame.columns], axis=1)
    missing = [c for c in LONG_COLUMNS if c not in frame.columns]
    if missing:
        raise refuse(
            source.name,
            f"missing column(s) {', '.join(missing)}; a long population file has the header "
            "'borough,year,age_band,people'"
            + describe(list(frame.columns), command="population", fmt="long"),
        )
    parsed = ParsedPopulation(
        format="long", file_name=source.name, sha256=source.sha256(), rows_read=len(frame)
    )
    problems: list[Problem] = []
    for idx, row in frame.iterrows():
        line = int(idx) + 2  # type: ignore[call-overload]
        borough = boroughs.find(clean(row["borough"]))
        if borough is None:
            problems.append(Problem(NOT_LONDON, line, "borough", clean(row["borough"])))
        year = _number(row["year"])
        if year is None or not 1900 <= year <= 2200:
            problems.append(Problem("not a plausible year", line, "year", clean(row["year"])))
        band = clean(row["age_band"])
        if not band or len(band) > 16:
            problems.append(Problem("an age band such as 10-24 is needed", line, "age_band", band))
        people = _number(row["people"])
        if people is None:
            problems.append(
                Problem(
                    "people must be a whole number of 0 or more",
                    line,
                    "people",
                    clean(row["people"]),
                )
            )
        if borough and year and people is not None and band and len(band) <= 16:
            key = (borough.gss_code, year, band)
            if key in parsed.people:
                problems.append(Problem("the same borough, year and age band again", line))
            parsed.people[key] = people
    if problems:
        raise ImportRefused(source.name, problems)
    return parsed
