"""Population: the ONS mid-year estimates by single year of age (as the ONS publishes them, or
as Nomis exports them), or a long ``borough,year,age_band,people`` file.

The ONS file has ``Code,Name,Geography,All ages,0,1,...,89,90+``, one row per area, numbers
quoted with thousands separators, trailing empty columns, rows of nothing but commas and the odd
Windows-1252 byte. It carries no year: give one, or keep it in the file name (``ONS2020_...``).

The Nomis export is long: one row per area, year, sex and age with ``DATE_NAME``,
``GEOGRAPHY_NAME``, ``GEOGRAPHY_CODE``, ``GENDER_NAME``, ``C_AGE_NAME``, ``MEASURES_NAME`` and
``OBS_VALUE`` (among other columns Nomis adds). Persons are taken where given (``Total`` or ``All
persons``); otherwise males and females are added. Ages read ``Age 0``/``Aged 0``, ``Aged under 1
year``, ``Aged 7 years``, ``Age 90+``/``Aged 90 and over``, and ``All Ages``.

Single years are summed to :data:`BANDS` (10-24 and its halves, for delivery rates) and to every
band a measure declares (``bands``); areas other than the 33 London local authorities (regions,
England) are skipped and counted.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

import pandas as pd

from registry import boroughs
from registry.denominators import ALL_AGES, OLDEST_SINGLE_AGE, band_ages
from registry.outcomes.common import (
    ImportRefused,
    ParsedPopulation,
    Source,
    clean,
    did_you_mean,
    read_csv_text,
    refuse,
    require_text,
    whole_number,
)
from registry.outcomes.detect import require_columns
from registry.problems import Problem, sheet_row_of, without_blank_rows

BANDS: dict[str, tuple[int, int]] = {"10-24": (10, 24), "10-17": (10, 17), "18-24": (18, 24)}
ONS_COLUMNS = ("Code", "All ages")
LONG_COLUMNS = ("borough", "year", "age_band", "people")
NOMIS_COLUMNS = (
    "DATE_NAME",
    "GEOGRAPHY_NAME",
    "GEOGRAPHY_CODE",
    "GENDER_NAME",
    "C_AGE_NAME",
    "MEASURES_NAME",
    "OBS_VALUE",
)
_YEAR_IN_NAME = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
NOT_LONDON = "not a London borough"
PEOPLE_REASON = "people must be a whole number of 0 or more"
OLDEST = "90+"  # the last age column: everyone 90 and over


def year_from_name(name: str) -> int | None:
    """The year a file name holds (``ONS2020_mid_year.csv`` -> 2020), if exactly one."""
    years = set(_YEAR_IN_NAME.findall(name))
    return int(years.pop()) if len(years) == 1 else None


def _number(text: str) -> int | None:
    """A whole number of 0 or more, perhaps with thousands separators (``1,234``)."""
    return whole_number(clean(text).replace(",", ""))


def _london_borough(code: str) -> boroughs.BoroughInfo | None:
    """The London borough of a local authority GSS code; ``None`` for any other area (regions,
    England), whose rows are skipped as :data:`NOT_LONDON`."""
    return boroughs.find(code) if code.startswith("E09") else None


def _frame(source: Source, fmt: str) -> pd.DataFrame:
    frame = read_csv_text(source, fmt)
    frame = frame.set_axis([clean(c) for c in frame.columns], axis=1)
    frame = frame.loc[:, [c for c in frame.columns if c and not c.startswith("Unnamed:")]]
    return without_blank_rows(frame)


def wanted_bands(bands: Iterable[str]) -> dict[str, tuple[int, int] | None]:
    """:data:`BANDS` plus ``bands`` (measures' bands), each with its ages (``None``: all ages)."""
    out: dict[str, tuple[int, int] | None] = dict(BANDS)
    for band in bands:
        out[band] = band_ages(band)
    out.setdefault(ALL_AGES, None)
    return out


def _sum_bands(
    singles: dict[int, int], all_ages: int | None, bands: dict[str, tuple[int, int] | None]
) -> tuple[dict[str, int], list[str]]:
    """The bands ``singles`` (people by single year of age) and ``all_ages`` give, and the bands
    they cannot (ages missing)."""
    out: dict[str, int] = {}
    missing = []
    for band, ages in bands.items():
        if ages is None:
            if all_ages is not None:
                out[band] = all_ages
            else:
                missing.append(band)
            continue
        years = range(ages[0], ages[1] + 1)
        if all(a in singles for a in years):
            out[band] = sum(singles[a] for a in years)
        else:
            missing.append(band)
    return out, missing


def parse_ons(source: Source, year: int | None, bands: Iterable[str] = ()) -> ParsedPopulation:
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
    derived = wanted_bands(bands)
    ages = sorted({a for r in derived.values() if r for a in range(r[0], r[1] + 1)})
    require_columns(
        source.name,
        list(frame.columns),
        (*ONS_COLUMNS, *map(str, ages)),
        " of the ONS single-year-of-age file",
        command="population",
        fmt="ons-single-year",
    )
    parsed = ParsedPopulation(
        format="ons-single-year",
        file_name=source.name,
        sha256=source.sha256(),
        rows_read=len(frame),
    )
    problems: list[Problem] = []
    wanted = ["All ages", *map(str, ages)]
    for idx, row in frame.iterrows():
        line = sheet_row_of(idx)
        borough = _london_borough(clean(row["Code"]))
        if borough is None:
            parsed.skipped[NOT_LONDON] += 1
            continue
        values: dict[str, int] = {}
        for col in wanted:
            number = _number(row[col])
            if number is None:
                problems.append(Problem(PEOPLE_REASON, line, col, clean(row[col])))
            else:
                values[col] = number
        if len(values) < len(wanted):
            continue
        singles = {a: values[str(a)] for a in ages}
        people, _ = _sum_bands(singles, values["All ages"], derived)
        for band, n in people.items():
            parsed.people[(borough.gss_code, year, band)] = n
    if problems:
        raise ImportRefused(source.name, problems)
    if not parsed.people:
        raise refuse(source.name, "no London borough rows (codes E09000001-E09000033) found")
    return parsed


_PERSONS = {"total", "all persons", "persons", "people", "all"}
_SEXES = {"male": "male", "males": "male", "female": "female", "females": "female"}
_AGE_RE = re.compile(r"^aged?\s+(\d{1,2})(?:\s+years?)?$")
_OLDEST_RE = re.compile(r"^aged?\s+90\s*(?:\+|and over|years and over)$")
_UNDER_ONE = {"aged under 1 year", "age under 1", "aged under 1"}
_ALL_AGES = {"all ages", "all age", "total"}


def nomis_age(text: str) -> int | str | None:
    """``Age 7`` -> 7, ``Aged 90+`` -> ``"90+"``, ``All Ages`` -> ``"all ages"``; ``None`` for an
    age group (``Aged 16 - 64``) or anything else."""
    key = " ".join(clean(text).lower().split())
    if key in _ALL_AGES:
        return ALL_AGES
    if key in _UNDER_ONE:
        return 0
    if _OLDEST_RE.match(key):
        return OLDEST
    match = _AGE_RE.match(key)
    if match and int(match.group(1)) <= OLDEST_SINGLE_AGE:
        return int(match.group(1))
    return None


def parse_nomis(source: Source, bands: Iterable[str] = ()) -> ParsedPopulation:
    """The mid-year estimates as Nomis exports them (see the module's docstring)."""
    frame = _frame(source, "nomis")
    require_columns(
        source.name,
        list(frame.columns),
        NOMIS_COLUMNS,
        " of a Nomis population export",
        command="population",
        fmt="nomis",
    )
    parsed = ParsedPopulation(
        format="nomis", file_name=source.name, sha256=source.sha256(), rows_read=len(frame)
    )
    problems: list[Problem] = []
    # (gss, year) -> sex ("persons", "male", "female") -> age -> people, and the first line seen
    cells: dict[tuple[str, int], dict[str, dict[int | str, int]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    seen: dict[tuple[str, int, str, int | str], int] = {}
    for idx, row in frame.iterrows():
        line = sheet_row_of(idx)
        borough = _london_borough(clean(row["GEOGRAPHY_CODE"]))
        if borough is None:
            parsed.skipped[NOT_LONDON] += 1
            continue
        measure = clean(row["MEASURES_NAME"])
        if measure.lower() != "value":
            parsed.skipped[f"not a count of people (MEASURES_NAME {measure[:40]!r})"] += 1
            continue
        date = clean(row["DATE_NAME"])
        years = set(_YEAR_IN_NAME.findall(date))
        if len(years) != 1:
            problems.append(Problem("a year such as 2021 is needed", line, "DATE_NAME", date))
            continue
        year = int(years.pop())
        sex_text = clean(row["GENDER_NAME"])
        sex = "persons" if sex_text.lower() in _PERSONS else _SEXES.get(sex_text.lower())
        if sex is None:
            problems.append(
                Problem(
                    "the sex must be Total, All persons, Male or Female",
                    line,
                    "GENDER_NAME",
                    sex_text,
                )
            )
            continue
        age_text = clean(row["C_AGE_NAME"])
        age = nomis_age(age_text)
        if age is None:
            if re.search(r"\d+\s*(?:-|to)\s*\d+", age_text):
                parsed.skipped["an age group, not a single year of age"] += 1
            else:
                problems.append(
                    Problem(
                        "an age such as 'Age 7', 'Age 90+' or 'All Ages' is needed",
                        line,
                        "C_AGE_NAME",
                        age_text,
                    )
                )
            continue
        people = _number(row["OBS_VALUE"])
        if people is None:
            problems.append(Problem(PEOPLE_REASON, line, "OBS_VALUE", clean(row["OBS_VALUE"])))
            continue
        key = (borough.gss_code, year, sex, age)
        if key in seen:
            problems.append(Problem(f"the same area, year, sex and age as row {seen[key]}", line))
            continue
        seen[key] = line
        cells[(borough.gss_code, year)][sex][age] = people
    derived = wanted_bands(bands)
    unmade: dict[str, int] = defaultdict(int)
    for (gss, year), by_sex in sorted(cells.items()):
        ages = _persons(by_sex)
        if ages is None:
            name = boroughs.BY_CODE[gss].name
            only = ", ".join(sorted(by_sex))
            problems.append(
                Problem(
                    f"{name} {year} has only {only} rows: give persons (Total) or both Male "
                    "and Female"
                )
            )
            continue
        singles = {a: n for a, n in ages.items() if isinstance(a, int)}
        all_ages = ages.get(ALL_AGES)
        if all_ages is None and len(singles) == OLDEST_SINGLE_AGE + 1 and OLDEST in ages:
            all_ages = sum(singles.values()) + ages[OLDEST]
        by_band, missing_bands = _sum_bands(singles, all_ages, derived)
        for band, n in by_band.items():
            parsed.people[(gss, year, band)] = n
        for band in missing_bands:
            unmade[band] += 1
    for band, n in unmade.items():
        parsed.skipped[f"band {band} not derived: ages missing (area-years)"] = n
    if problems:
        raise ImportRefused(source.name, problems)
    if not parsed.people:
        raise refuse(
            source.name,
            "no London borough rows (GEOGRAPHY_CODE E09000001-E09000033) with single years of "
            "age found",
        )
    return parsed


def _persons(by_sex: dict[str, dict[int | str, int]]) -> dict[int | str, int] | None:
    """People by age: the persons rows, or males and females added; ``None`` with one sex."""
    if "persons" in by_sex:
        return by_sex["persons"]
    if {"male", "female"} <= set(by_sex):
        male, female = by_sex["male"], by_sex["female"]
        return {a: male[a] + female[a] for a in male.keys() & female.keys()}
    return None


def parse_long(source: Source) -> ParsedPopulation:
    frame = _frame(source, "long")
    frame = frame.set_axis([c.lower() for c in frame.columns], axis=1)
    require_columns(
        source.name,
        list(frame.columns),
        LONG_COLUMNS,
        "; a long population file has the header 'borough,year,age_band,people'",
        command="population",
        fmt="long",
    )
    parsed = ParsedPopulation(
        format="long", file_name=source.name, sha256=source.sha256(), rows_read=len(frame)
    )
    problems: list[Problem] = []
    for idx, row in frame.iterrows():
        line = sheet_row_of(idx)
        area = clean(row["borough"])
        borough = boroughs.find(area)
        if borough is None:
            problems.append(Problem(NOT_LONDON + did_you_mean(area), line, "borough", area))
        year = _number(row["year"])
        if year is None or not 1900 <= year <= 2200:
            problems.append(Problem("not a plausible year", line, "year", clean(row["year"])))
        band = clean(row["age_band"])
        if not band or len(band) > 16:
            problems.append(Problem("an age band such as 10-24 is needed", line, "age_band", band))
        people = _number(row["people"])
        if people is None:
            problems.append(Problem(PEOPLE_REASON, line, "people", clean(row["people"])))
        if borough and year and people is not None and band and len(band) <= 16:
            key = (borough.gss_code, year, band)
            if key in parsed.people:
                problems.append(Problem("the same borough, year and age band again", line))
            parsed.people[key] = people
    if problems:
        raise ImportRefused(source.name, problems)
    return parsed
