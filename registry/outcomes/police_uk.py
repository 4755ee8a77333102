"""data.police.uk street-level files, aggregated to borough and month.

One file per force and month (about 90,000 rows for the Met), perhaps a whole year of them: each
is streamed in chunks of a few columns, and only per-chunk aggregates are kept, so memory stays
flat whatever the number of files.

Every row ends in exactly one place, in this order:

1. its crime type feeds no measure: skipped (``crime type not mapped to a measure``);
2. no location (empty LSOA) in a London force's file: London unallocated (``No Location``);
   in another force's file: skipped (``no location, outside London``);
3. an LSOA whose name does not start with a London local authority (a force's file includes
   LSOAs just over its border): skipped (``outside London``);
4. otherwise a count for the LSOA's borough.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from registry import boroughs
from registry.outcomes.common import (
    ImportRefused,
    ParsedCrime,
    Progress,
    Source,
    clean,
    combined_sha256,
    header_of,
    no_progress,
    parser_refusal,
    refuse,
    require_text,
)
from registry.outcomes.detect import require_columns
from registry.periods import PeriodError, parse_month
from registry.problems import Problem, sheet_row

if TYPE_CHECKING:
    from registry.outcomes.mapping import Mapper

COLUMNS = ["Month", "Falls within", "LSOA name", "Crime type"]
LONDON_FORCES = {"metropolitan police service", "city of london police"}
NO_LOCATION = "No Location"
NOT_MAPPED = "crime type not mapped to a measure"
NO_LOCATION_ELSEWHERE = "no location, outside London"
OUTSIDE_LONDON = "outside London"
CHUNK_ROWS = 200_000


def borough_of_lsoa(name: str) -> str | None:
    """GSS code of the London borough an LSOA name (``Camden 027B``) starts with, else ``None``."""
    area, _, _suffix = clean(name).rpartition(" ")
    found = boroughs.find(area) if area else None
    return found.gss_code if found else None


def _codes(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Category codes (-1 for empty) and the categories of a column read as ``category``."""
    cat = series.cat
    return cat.codes.to_numpy(), [str(c) for c in cat.categories]


class _Accumulator:
    """Per-chunk aggregation into one :class:`ParsedCrime`, with lookups cached across chunks."""

    def __init__(self, parsed: ParsedCrime, mapper: Mapper) -> None:
        self.parsed = parsed
        self.mapper = mapper
        self.problems: list[Problem] = []
        self._months: dict[str, dt.date | None] = {}
        self._lsoa: dict[str, str | None] = {}

    def _month(self, value: str, source: Source, row: int) -> dt.date | None:
        if value not in self._months:
            try:
                self._months[value] = parse_month(value)
            except PeriodError as exc:
                self._months[value] = None
                self.problems.append(Problem(f"{source.name}: {exc}", row, "Month", value))
        return self._months[value]

    def feed(self, chunk: pd.DataFrame, source: Source, first_row: int) -> None:
        parsed = self.parsed
        n = len(chunk)
        parsed.rows_read += n
        crime_codes, crime_types = _codes(chunk["Crime type"])
        if (crime_codes < 0).any():
            row = first_row + int(np.argmax(crime_codes < 0))
            self.problems.append(
                Problem(f"{source.name}: the crime type is empty", row, "Crime type")
            )
            return
        measures: list[str | None] = []
        for crime in crime_types:
            known, measure = self.mapper.resolve(crime)
            if not known:
                parsed.unmapped.add(clean(crime))
            measures.append(measure)
        measure_names = sorted({m for m in measures if m})
        measure_idx = np.array([measure_names.index(m) if m else -1 for m in measures] or [-1])
        row_measure = measure_idx[crime_codes]
        mapped = row_measure >= 0
        parsed.skipped[NOT_MAPPED] += int(n - mapped.sum())

        month_codes, month_values = _codes(chunk["Month"])
        if (month_codes < 0).any():
            row = first_row + int(np.argmax(month_codes < 0))
            self.problems.append(Problem(f"{source.name}: the month is empty", row, "Month"))
            return
        month_list = []
        for i, value in enumerate(month_values):
            row = first_row + int(np.argmax(month_codes == i))
            month_list.append(self._month(value, source, row))
        if not mapped.any():
            return

        lsoa_codes, lsoa_names = _codes(chunk["LSOA name"])
        lsoa_gss = []
        for name in lsoa_names:
            if name not in self._lsoa:
                self._lsoa[name] = borough_of_lsoa(name)
            lsoa_gss.append(self._lsoa[name])
        gss_names = sorted({g for g in lsoa_gss if g})
        gss_idx = np.array([gss_names.index(g) if g else -1 for g in lsoa_gss] + [-1])
        row_gss = gss_idx[lsoa_codes]  # code -1 (no location) picks the trailing -1
        no_location = lsoa_codes < 0
        force_codes, forces = _codes(chunk["Falls within"])
        london = np.array([clean(f).casefold() in LONDON_FORCES for f in forces] + [False])
        row_london = london[force_codes]

        unallocated = mapped & no_location & row_london
        parsed.skipped[NO_LOCATION_ELSEWHERE] += int((mapped & no_location & ~row_london).sum())
        parsed.skipped[OUTSIDE_LONDON] += int((mapped & ~no_location & (row_gss < 0)).sum())
        in_borough = mapped & ~no_location & (row_gss >= 0)
        parsed.borough_rows += int(in_borough.sum())
        parsed.unallocated_rows[NO_LOCATION] += int(unallocated.sum())

        frame = pd.DataFrame({"m": row_measure, "g": row_gss, "t": month_codes})
        for (m, g, t), count in frame[in_borough].value_counts().items():
            month = month_list[t]
            if month is not None:
                parsed.add_count(measure_names[m], gss_names[g], month, int(count))
        for (m, t), count in frame[unallocated][["m", "t"]].value_counts().items():
            month = month_list[t]
            if month is not None:
                parsed.add_unallocated(measure_names[m], NO_LOCATION, month, int(count))


def parse(
    sources: list[Source],
    mapper: Mapper,
    progress: Progress = no_progress,
    chunk_rows: int = CHUNK_ROWS,
) -> ParsedCrime:
    """Read one or many street-level files into one set of borough-month counts."""
    if not sources:
        raise refuse("police.uk import", "no files given")
    hashes: dict[str, str] = {}
    for source in sources:
        require_text(source, "police-uk")
        require_columns(
            source.name,
            header_of(source),
            COLUMNS,
            " of a data.police.uk street-level file",
            command="crime",
            fmt="police-uk",
        )
        digest = source.sha256()
        if digest in hashes:
            raise refuse(source.name, f"it is the same file as {hashes[digest]}; give it once")
        hashes[digest] = source.name
    names = [s.name for s in sources]
    label = names[0] if len(names) == 1 else f"{len(names)} files: {', '.join(names)}"
    parsed = ParsedCrime(
        format="police-uk",
        file_name=label if len(label) <= 255 else label[:252] + "...",
        sha256=next(iter(hashes)) if len(hashes) == 1 else combined_sha256(hashes),
        files=[{"name": name, "sha256": digest} for digest, name in hashes.items()],
    )
    acc = _Accumulator(parsed, mapper)
    total = sum(s.size() for s in sources) or 1
    done = 0
    for source in sources:
        progress(done / total, f"Reading {source.name}")
        with source.open() as stream:
            reader = pd.read_csv(
                stream,
                usecols=COLUMNS,
                dtype="category",
                chunksize=chunk_rows,
                encoding_errors="replace",
            )
            first_row = sheet_row(0)
            try:
                for chunk in reader:
                    acc.feed(chunk, source, first_row)
                    first_row += len(chunk)
                    if len(acc.problems) >= 50:
                        break
                    progress(min((done + stream.tell()) / total, 1.0), f"Reading {source.name}")
            except pd.errors.ParserError as exc:
                raise parser_refusal(source.name, exc) from exc
        done += source.size()
        if acc.problems:
            raise ImportRefused(source.name, acc.problems)
    progress(1.0, f"Read {parsed.rows_read:,} rows from {len(sources)} file(s)")
    return parsed
