"""A plain long CSV ``measure,borough,month,count`` for any other source.

``borough`` is a GSS code or a borough name; one of the Met's non-borough areas (``Unknown``,
airports) makes the row a London unallocated count under that name.
"""

from __future__ import annotations

from registry import boroughs
from registry.outcomes.common import (
    ImportRefused,
    ParsedCrime,
    Problem,
    Progress,
    Source,
    clean,
    no_progress,
    pseudo_area_name,
    read_csv_text,
    refuse,
)
from registry.outcomes.detect import describe
from registry.periods import PeriodError, parse_month
from registry.problems import sheet_row

COLUMNS = ("measure", "borough", "month", "count")


def parse(source: Source, measures: set[str], progress: Progress = no_progress) -> ParsedCrime:
    progress(0.0, f"Reading {source.name}")
    frame = read_csv_text(source, "long")
    header = [clean(c) for c in frame.columns]
    frame = frame.set_axis([c.lower() for c in header], axis=1)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise refuse(
            source.name,
            f"missing column(s) {', '.join(missing)}; a long file has the header "
            "'measure,borough,month,count'" + describe(header, command="crime", fmt="long"),
        )
    frame = frame.loc[~frame.map(lambda v: clean(v) == "").all(axis=1)]
    parsed = ParsedCrime(
        format="long", file_name=source.name, sha256=source.sha256(), rows_read=len(frame)
    )
    problems: list[Problem] = []
    seen: dict[tuple[str, str, object], int] = {}
    for idx, row in frame.iterrows():
        # pandas-stubs type a row label as Hashable; these frames are numbered by row (ints).
        line = sheet_row(int(idx))  # type: ignore[call-overload]
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
        borough = boroughs.find(area)
        pseudo = None if borough else pseudo_area_name(area)
        if borough is None and pseudo is None:
            hint = boroughs.suggest(area)
            problems.append(
                Problem(
                    "not a London borough or one of the Met's known non-borough areas"
                    + (f"; did you mean {hint!r}?" if hint else ""),
                    line,
                    "borough",
                    area,
                )
            )
        try:
            month = parse_month(clean(row["month"]))
        except PeriodError as exc:
            problems.append(Problem(str(exc), line, "month", clean(row["month"])))
            month = None
        text = clean(row["count"])
        count = int(text) if text.isdigit() else None
        if count is None:
            problems.append(
                Problem("a count must be a whole number of 0 or more", line, "count", text)
            )
        target = borough.gss_code if borough else pseudo
        if month is None or count is None or target is None or measure not in measures:
            continue
        key = (measure, target, month)
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
        if borough:
            parsed.note_borough_rows(1)
            parsed.add_count(measure, borough.gss_code, month, count)
        else:
            parsed.unallocated_rows[str(pseudo)] += 1
            parsed.add_unallocated(measure, str(pseudo), month, count)
        if len(problems) >= 100:
            break
    if problems:
        raise ImportRefused(source.name, problems)
    progress(1.0, f"Read {parsed.rows_read:,} rows from {source.name}")
    return parsed
