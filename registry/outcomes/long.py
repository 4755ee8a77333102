"""A plain long CSV ``measure,borough,month,count`` for any other source.

``borough`` is a GSS code or a borough name; one of the Met's non-borough areas (``Unknown``,
airports) makes the row a London unallocated count under that name.
"""

from __future__ import annotations

from registry.outcomes.common import (
    COUNT_REASON,
    ImportRefused,
    ParsedCrime,
    Progress,
    Source,
    clean,
    crime_area,
    no_progress,
    read_csv_text,
    unknown_area,
    whole_number,
)
from registry.outcomes.detect import require_columns
from registry.periods import PeriodError, parse_month
from registry.problems import Problem, sheet_row_of, without_blank_rows

COLUMNS = ("measure", "borough", "month", "count")


def parse(source: Source, measures: set[str], progress: Progress = no_progress) -> ParsedCrime:
    progress(0.0, f"Reading {source.name}")
    frame = read_csv_text(source, "long")
    header = [clean(c) for c in frame.columns]
    frame = frame.set_axis([c.lower() for c in header], axis=1)
    require_columns(
        source.name,
        list(frame.columns),
        COLUMNS,
        "; a long file has the header 'measure,borough,month,count'",
        command="crime",
        fmt="long",
        header=header,
    )
    frame = without_blank_rows(frame)
    parsed = ParsedCrime(
        format="long", file_name=source.name, sha256=source.sha256(), rows_read=len(frame)
    )
    problems: list[Problem] = []
    seen: dict[tuple[str, str, object], int] = {}
    for idx, row in frame.iterrows():
        line = sheet_row_of(idx)
        measure = clean(row["measure"])
        if measure not in measures:
            problems.append(
                Problem(
                    f"unknown measure; the measures are {', '.join(sorted(measures))}",
                    line,
                    "measure",
                    measure,
                )
            )
        area = clean(row["borough"])
        place = crime_area(area)
        if place is None:
            problems.append(unknown_area(area, line, "borough"))
        try:
            month = parse_month(clean(row["month"]))
        except PeriodError as exc:
            problems.append(Problem(str(exc), line, "month", clean(row["month"])))
            month = None
        text = clean(row["count"])
        count = whole_number(text)
        if count is None:
            problems.append(Problem(COUNT_REASON, line, "count", text))
        if month is None or count is None or place is None or measure not in measures:
            continue
        key = (measure, place[1], month)
        if key in seen:
            problems.append(
                Problem(
                    f"the same measure, area and month as row {seen[key]}",
                    line,
                    "month",
                    clean(row["month"]),
                )
            )
            continue
        seen[key] = line
        parsed.add_row(place, measure, month, count)
        if len(problems) >= 100:
            break
    if problems:
        raise ImportRefused(source.name, problems)
    progress(1.0, f"Read {parsed.rows_read:,} rows from {source.name}")
    return parsed
