"""The Met's wide borough-level monthly crime file ("MPS Borough Level Crime"), every layout.

Layouts are recognised from the header (FORMATS.md): ``Borough,Major Category,Minor Category``
(to 2018), ``MajorText,MinorText,LookUp_BoroughName`` (2019 to early 2024) and
``MajorText,MinorText,BoroughName`` (2024 on, upper case, with an ``Unknown`` area). Ward-level
files (``WardName,WardCode`` anywhere, perhaps a trailing ``Refreshed Date``) and LSOA-level files
(``LSOA Code,LSOA Name,Borough`` holding GSS codes) are summed to borough. Month columns are the
``YYYYMM`` headers; every other column is ignored.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, cast

from registry.outcomes.common import (
    ImportRefused,
    ParsedCrime,
    Progress,
    Source,
    check_counts,
    clean,
    crime_area,
    no_progress,
    read_csv_text,
    refuse,
    unknown_area,
)
from registry.outcomes.detect import describe
from registry.periods import PeriodError, parse_compact_month
from registry.problems import HEADER_ROW, Problem, first_sheet_row, without_blank_rows

if TYPE_CHECKING:
    from registry.outcomes.mapping import Mapper

AREA_COLUMNS = ("BoroughName", "LookUp_BoroughName", "Borough")
CATEGORY_COLUMNS = (("MajorText", "MinorText"), ("Major Category", "Minor Category"))
MONTH_HEADER = re.compile(r"^\d{6}$")
NOT_MAPPED = "category not mapped to a measure"


def layout_of(columns: list[str]) -> str | None:
    """A short name for the layout this header belongs to, or ``None`` if it is not one."""
    cols = set(columns)
    if not any(MONTH_HEADER.match(c) for c in cols):
        return None
    if {"Major Category", "Minor Category", "Borough"} <= cols:
        return "to 2018"
    if not {"MajorText", "MinorText"} <= cols:
        return None
    if "LSOA Code" in cols and "Borough" in cols:
        return "LSOA-level"
    if "WardCode" in cols and ("LookUp_BoroughName" in cols or "BoroughName" in cols):
        return "ward-level"
    if "LookUp_BoroughName" in cols:
        return "2019 to early 2024"
    if "BoroughName" in cols:
        return "2024 on"
    return None


def _columns(source: Source, columns: list[str]) -> tuple[str, str, str, list[str]]:
    layout = layout_of(columns)
    if layout is None:
        raise refuse(
            source.name,
            "this is not an MPS borough-level crime file: expected a header such as "
            "'MajorText,MinorText,BoroughName,201004,...' or "
            "'Borough,Major Category,Minor Category,200801,...'"
            + describe(columns, command="crime", fmt="mps-borough"),
        )
    area = next(c for c in AREA_COLUMNS if c in columns)
    if layout == "LSOA-level":
        area = "Borough"
    major, minor = next(pair for pair in CATEGORY_COLUMNS if set(pair) <= set(columns))
    months = [c for c in columns if MONTH_HEADER.match(c)]
    return area, major, minor, months


def parse(source: Source, mapper: Mapper, progress: Progress = no_progress) -> ParsedCrime:
    """Read one file; refuse it (nothing parsed) if any cell or area is wrong."""
    progress(0.0, f"Reading {source.name}")
    frame = read_csv_text(source, "mps-borough")
    frame = frame.set_axis([clean(c) for c in frame.columns], axis=1)
    area_col, major_col, minor_col, month_cols = _columns(source, list(frame.columns))
    frame = without_blank_rows(frame)
    parsed = ParsedCrime(
        format="mps-borough",
        file_name=source.name,
        sha256=source.sha256(),
        rows_read=len(frame),
        layout=layout_of(list(frame.columns)),
    )
    problems: list[Problem] = []
    months = {}
    for col in month_cols:
        try:
            months[col] = parse_compact_month(col)
        except PeriodError as exc:
            problems.append(Problem(str(exc), HEADER_ROW, col))
    progress(0.3, "Checking counts")
    numbers, bad_counts = check_counts(frame[month_cols].apply(lambda s: s.map(clean)))
    problems += bad_counts
    area_of: dict[str, tuple[str, str]] = {}  # (kind, target) of each area not refused
    for name in frame[area_col].unique():
        place = crime_area(name)
        if place is not None:
            area_of[name] = place
        else:
            first = first_sheet_row(frame, frame[area_col] == name)
            problems.append(unknown_area(name, first, area_col))
    if problems:
        raise ImportRefused(source.name, problems)

    progress(0.6, "Mapping categories")
    category = frame[major_col].map(clean) + " / " + frame[minor_col].map(clean)
    resolved = {c: mapper.resolve(c) for c in category.unique()}
    measure = category.map(lambda c: resolved[c][1])
    parsed.unmapped.update(c for c, (known, _m) in resolved.items() if not known)
    kind = frame[area_col].map(lambda a: area_of[a][0])
    target = frame[area_col].map(lambda a: area_of[a][1])
    mapped = measure.notna()
    parsed.skipped[NOT_MAPPED] += int((~mapped).sum())
    parsed.note_borough_rows(int((mapped & (kind == "borough")).sum()))
    for area, n in target[mapped & (kind == "pseudo")].value_counts().items():
        parsed.unallocated_rows[str(area)] += int(n)

    long = (
        numbers.loc[mapped]
        .assign(_measure=measure[mapped], _kind=kind[mapped], _target=target[mapped])
        .groupby(["_measure", "_kind", "_target"])[month_cols]
        .sum()
        .stack()
    )
    for key, total in long.items():
        code, area_kind, area, col = cast(tuple[str, str, str, str], key)
        if area_kind == "borough":
            parsed.add_count(code, area, months[col], int(total))
        else:
            parsed.add_unallocated(code, area, months[col], int(total))
    progress(1.0, f"Read {parsed.rows_read:,} rows from {source.name}")
    return parsed
