"""Benchmark: validate and commit an upload of 100,000 delivery rows on SQLite.

Builds a fresh migrated SQLite database with 100 programmes, writes a CSV of 100,000 valid rows
(programme × borough × month, all new), then times in the same process:

- baseline: ``pandas.read_csv`` of the file;
- the whole import: read, validate, preview and commit (``deliveries.import_file``).

Prints rows per second for both and the ratio. Target: the import within 5× ``read_csv``.
Run: ``.venv/bin/python benchmarks/bench_delivery_import.py [ROWS]``.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select

from registry import db, deliveries, programmes, uploads
from registry.auth import SYSTEM
from registry.boroughs import BOROUGHS
from registry.models import Delivery
from registry.periods import add_months, format_month

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000


def build(directory: Path) -> tuple[str, Path]:
    url = f"sqlite:///{directory / 'bench.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    months = [add_months(dt.date(2019, 1, 1), i) for i in range(72)]
    per_programme = len(BOROUGHS) * len(months)
    count = -(-ROWS // per_programme)
    with db.session_scope(engine) as s:
        programmes.add_funding_stream(s, principal=SYSTEM, name="Bench Fund", funder="Bench")
        for i in range(count):
            programmes.add_programme(
                s,
                principal=SYSTEM,
                name=f"Programme {i:03d}",
                funding_stream="Bench Fund",
                start=dt.date(2019, 1, 1),
            )
    engine.dispose()
    lines = ["programme,borough,month,opportunities,participants,spend_gbp"]
    n = 0
    for i in range(count):
        for m in months:
            for b in BOROUGHS:
                if n == ROWS:
                    break
                opp = 5 + (n * 7919) % 60
                lines.append(
                    f"Programme {i:03d},{b.name},{format_month(m)},{opp},{opp - n % 5},"
                    f"{opp * 37.5:.2f}"
                )
                n += 1
    path = directory / "deliveries.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return url, path


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url, path = build(Path(tmp))
        start = time.perf_counter()
        frame = pd.read_csv(path)
        baseline = time.perf_counter() - start
        assert len(frame) == ROWS

        engine = db.make_engine(url)
        start = time.perf_counter()
        content = path.read_bytes()
        with db.session_scope(engine) as s:
            # What deliveries.import_file does, step by step, to show where the time goes.
            sheet = uploads.read_upload(content, path.name)
            parsed = time.perf_counter()
            checked = deliveries.check_rows(s, sheet.frame)
            result = deliveries.preview(s, checked, file_name=path.name, fmt="csv")
            validated = time.perf_counter()
            assert result.ok, result.problems[:3]
            deliveries.commit(s, principal=SYSTEM, preview=result)
        elapsed = time.perf_counter() - start
        phases = (parsed - start, validated - parsed, start + elapsed - validated)
        with engine.connect() as conn:
            stored = conn.scalar(select(func.count()).select_from(Delivery))
        assert stored == ROWS, stored
        engine.dispose()

    print(f"rows: {ROWS:,} (file {len(content) / 1e6:.1f} MB)")
    print(f"pandas.read_csv:           {baseline:.3f} s  ({ROWS / baseline:,.0f} rows/s)")
    print(f"import (parse+validate+commit): {elapsed:.3f} s  ({ROWS / elapsed:,.0f} rows/s)")
    print(f"ratio import / read_csv:   {elapsed / baseline:.1f}x (target <= 5x)")
    names = ("parse (read_upload)", "validate + preview", "commit (one transaction)")
    for name, seconds in zip(names, phases, strict=True):
        print(f"  {name:<26} {seconds:.3f} s  ({seconds / baseline:.1f}x read_csv)")


if __name__ == "__main__":
    main()
