"""Benchmark: what reading through the source of record costs (issue #13), on SQLite.

Builds a migrated SQLite database with 6 measures × 300 areas × 180 months of counts from two
sources (``mps-borough`` and ``police-uk``: 648,000 rows). Then, in the same process:

- ``record_sources``: the index probes (one per measure and ordered source) that find each
  measure's source of record, against the baseline of a ``SELECT DISTINCT measure_id, source``
  over every count (what a naive selection would do on each read);
- one measure's monthly London totals, the query of ``monthly_series``, filtered by
  ``of_record(..., measure id)`` (finding the source of record each time, as readers do) against
  the same query with a bare ``source = 'mps-borough'`` filter (the least any source-aware reader
  must do);
  and ``monthly_series`` itself for London and one borough, for scale.

Prints median CPU times of 7 and the ratios. Targets: the probes under 10 ms and at least 10×
faster than the scan; the filtered query within 1.5× of the bare one.
Run: ``.venv/bin/python benchmarks/bench_sources.py``.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy import func, insert, select

from registry import db
from registry.analysis.series import monthly_series
from registry.auth import Principal
from registry.outcomes.sources import of_record, record_sources
from registry.periods import add_months
from registry.schema import Borough, ImportBatch, OutcomeCount, OutcomeMeasure

WHO = Principal("bench", "commissioner")
AREAS, MONTHS = 300, 180
SOURCES = ("mps-borough", "police-uk")


def build(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    rng = np.random.default_rng(13)
    with engine.begin() as conn:
        london = conn.execute(select(Borough.id)).scalars().all()
        conn.execute(
            insert(Borough),
            [
                {"gss_code": f"E99{i:06d}", "name": f"Bench area {i}", "inner_london": False}
                for i in range(AREAS - len(london))
            ],
        )
        areas = conn.execute(select(Borough.id)).scalars().all()
        measures = conn.execute(select(OutcomeMeasure.id)).scalars().all()
        batch = conn.execute(
            insert(ImportBatch).returning(ImportBatch.id),
            [
                {
                    "kind": "crime",
                    "format": "mps-borough",
                    "created_by": "bench",
                    "rows_read": 0,
                    "rows_accepted": 0,
                    "release_date": dt.date(2025, 11, 1),
                }
            ],
        ).scalar_one()
        months = [add_months(dt.date(2011, 1, 1), i) for i in range(MONTHS)]
        rows = [
            {
                "measure_id": m,
                "source": s,
                "borough_id": a,
                "month": t,
                "count": int(c),
                "import_batch_id": batch,
            }
            for s in SOURCES
            for m in measures
            for a in areas
            for t, c in zip(months, rng.poisson(6, MONTHS), strict=True)
        ]
        for start in range(0, len(rows), 50_000):
            conn.execute(insert(OutcomeCount), rows[start : start + 50_000])
    engine.dispose()
    return url


def median_time(fn: Callable[[], object], n: int = 7) -> float:
    """Median CPU seconds of ``fn`` (SQLite runs in this process; on a shared machine the wall
    clock mostly measures waiting for a core)."""
    times = []
    for _ in range(n):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = build(Path(tmp) / "bench.db")
        engine = db.make_engine(url)
        with db.session_scope(engine) as s:
            rows = s.scalar(select(func.count()).select_from(OutcomeCount))
            probes = median_time(lambda: record_sources(s))
            scan = median_time(
                lambda: s.execute(
                    select(OutcomeCount.measure_id, OutcomeCount.source).distinct()
                ).all()
            )
            homicide = s.scalar(select(OutcomeMeasure.id).where(OutcomeMeasure.code == "homicide"))

            def totals(source_filter: Callable[[], object]) -> Callable[[], object]:
                return lambda: s.execute(
                    select(OutcomeCount.month, func.sum(OutcomeCount.count))
                    .where(source_filter())
                    .group_by(OutcomeCount.month)
                ).all()

            record = median_time(totals(lambda: of_record(s, OutcomeCount, homicide)))
            bare = median_time(
                totals(
                    lambda: (
                        (OutcomeCount.measure_id == homicide)
                        & (OutcomeCount.source == "mps-borough")
                    )
                )
            )
            london = median_time(lambda: monthly_series(s, principal=WHO, measure="homicide"))
            camden = median_time(
                lambda: monthly_series(s, principal=WHO, measure="homicide", borough="Camden")
            )
        engine.dispose()
    print(f"counts stored: {rows:,} (two sources)")
    print(
        f"record_sources (probes): {probes * 1000:.2f} ms; DISTINCT scan baseline: "
        f"{scan * 1000:.2f} ms; {scan / probes:.1f}x faster"
    )
    print(
        f"monthly totals through of_record: {record * 1000:.1f} ms; with a bare source filter: "
        f"{bare * 1000:.1f} ms; ratio {record / bare:.2f}"
    )
    print(f"monthly_series: London {london * 1000:.1f} ms, Camden {camden * 1000:.1f} ms")


if __name__ == "__main__":
    main()
