"""The Met's Monthly Crime Dashboard file: long, one row per month, area, subgroup and measure.

Header ``Month_Year, Area Type, Borough_SNT, Area name, Area code, Offence Group, Offence
Subgroup, Measure, Financial Year, FY_FYIndex, Count, Refresh Date`` (older files say ``Crime
Type`` and ``Crime Subtype``), as CSV or XLSX. Only ``Borough`` rows of the ``Offences`` measure
count; Safer Neighbourhood Team rows (which repeat the borough figures) and ``Positive Outcomes``
rows are skipped and reported. Subgroups map to measures (``Knife Injury Victims (non DA 1-24)``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pandas as pd

from registry.outcomes.common import (
    XLSX_MAGIC,
    ImportRefused,
    ParsedCrime,
    Progress,
    Source,
    check_counts,
    clean,
    crime_area,
    no_progress,
    read_csv_text,
    read_xlsx,
    unknown_area,
)
from registry.outcomes.detect import require_columns
from registry.problems import Problem, first_sheet_row, without_blank_rows

if TYPE_CHECKING:
    from registry.outcomes.mapping import Mapper

RENAMED = {"Crime Type": "Offence Group", "Crime Subtype": "Offence Subgroup"}
REQUIRED = ("Month_Year", "Area Type", "Area name", "Offence Subgroup", "Measure", "Count")
NOT_MAPPED = "subgroup not mapped to a measure"
MONTH_FORMATS = (
    "%Y-%m",
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%d/%m/%Y",
    "%m/%Y",
    "%b-%y",
    "%b %Y",
    "%B %Y",
    "%Y%m",
)


def has_dashboard_columns(columns: list[str]) -> bool:
    renamed = {RENAMED.get(c, c) for c in columns}
    return set(REQUIRED) <= renamed


def parse_month_year(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return dt.date(value.year, value.month, 1)
    text = clean(value)
    for fmt in MONTH_FORMATS:
        try:
            parsed = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        return dt.date(parsed.year, parsed.month, 1)
    return None


def _read(source: Source) -> pd.DataFrame:
    with source.open() as stream:
        magic = stream.read(4)
    frame = read_xlsx(source) if magic == XLSX_MAGIC else read_csv_text(source, "mps-dashboard")
    frame = frame.set_axis([RENAMED.get(clean(c), clean(c)) for c in frame.columns], axis=1)
    return frame


def parse(source: Source, mapper: Mapper, progress: Progress = no_progress) -> ParsedCrime:
    progress(0.0, f"Reading {source.name}")
    frame = _read(source)
    require_columns(
        source.name,
        list(frame.columns),
        REQUIRED,
        " of the Met crime dashboard file",
        command="crime",
        fmt="mps-dashboard",
    )
    frame = without_blank_rows(frame)
    parsed = ParsedCrime(
        format="mps-dashboard",
        file_name=source.name,
        sha256=source.sha256(),
        rows_read=len(frame),
        layout="old headers" if "Crime Subtype" in set(frame.columns) else None,
    )
    area_type = frame["Area Type"].map(clean)
    measure_kind = frame["Measure"].map(clean)
    is_borough = area_type.str.casefold() == "borough"
    is_offences = measure_kind.str.casefold() == "offences"
    for value, n in area_type[~is_borough].value_counts().items():
        parsed.skipped[f"{value} rows"] += int(n)
    for value, n in measure_kind[is_borough & ~is_offences].value_counts().items():
        parsed.skipped[f"{value} rows"] += int(n)
    rows = frame.loc[is_borough & is_offences]

    problems: list[Problem] = []
    months: dict[object, dt.date | None] = {
        v: parse_month_year(v) for v in rows["Month_Year"].unique()
    }
    for value, month in months.items():
        if month is None:
            first = first_sheet_row(rows, rows["Month_Year"] == value)
            problems.append(
                Problem("not a month (expected e.g. 2023-04)", first, "Month_Year", str(value))
            )
    counts, bad_counts = check_counts(rows[["Count"]].apply(lambda s: s.map(clean)))
    problems += bad_counts
    codes = rows["Area code"].map(clean) if "Area code" in rows.columns else None
    area_of: dict[tuple[str, str], tuple[str, str]] = {}  # (kind, target) of each area not refused
    keys = list(
        zip(
            rows["Area name"].map(clean),
            codes if codes is not None else [""] * len(rows),
            strict=True,
        )
    )
    for name, code in set(keys):
        place = crime_area(name, code)
        if place is not None:
            area_of[(name, code)] = place
        else:
            first = first_sheet_row(rows, rows["Area name"].map(clean) == name)
            problems.append(unknown_area(name, first, "Area name"))
    if problems:
        raise ImportRefused(source.name, problems)

    progress(0.5, "Mapping subgroups")
    subgroup = rows["Offence Subgroup"].map(clean)
    resolved = {s: mapper.resolve(s) for s in subgroup.unique()}
    parsed.unmapped.update(s for s, (known, _m) in resolved.items() if not known)
    whole_counts = counts["Count"].to_numpy()  # checked above: whole numbers of 0 or more
    for i, (idx, sub) in enumerate(subgroup.items()):
        measure = resolved[sub][1]
        if measure is None:
            parsed.skipped[NOT_MAPPED] += 1
            continue
        month = months[rows.at[idx, "Month_Year"]]
        if month is None:  # such rows were refused above
            raise RuntimeError("A row whose month could not be read got past the checks.")
        parsed.add_row(area_of[keys[i]], measure, month, int(whole_counts[i]))
    progress(1.0, f"Read {parsed.rows_read:,} rows from {source.name}")
    return parsed
