"""Benchmark: import a data.police.uk-shaped street-level file of 1,000,000 rows.

Builds the file (the Met's real columns, 14 crime types, London and over-the-border LSOAs, No
Location rows, anti-social behaviour with empty IDs), then in the same run:

- baseline: ``pandas.read_csv`` of the whole file, in a fresh Python process;
- import: ``registry.outcomes.store.import_crime(..., fmt="police-uk")`` into a freshly migrated
  SQLite database, in a fresh Python process, committed.

Each process reports its own wall time and peak resident memory (``ru_maxrss``). Target: import
within 2x of read_csv, peak memory under 500 MB.

    .venv/bin/python benchmarks/bench_police_uk_import.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CRIME_TYPES = [
    "Anti-social behaviour",
    "Bicycle theft",
    "Burglary",
    "Criminal damage and arson",
    "Drugs",
    "Other crime",
    "Other theft",
    "Possession of weapons",
    "Public order",
    "Robbery",
    "Shoplifting",
    "Theft from the person",
    "Vehicle crime",
    "Violence and sexual offences",
]
LONDON = [
    "Barking and Dagenham", "Barnet", "Bexley", "Brent", "Bromley", "Camden", "Croydon", "Ealing",
    "Enfield", "Greenwich", "Hackney", "Hammersmith and Fulham", "Haringey", "Harrow", "Havering",
    "Hillingdon", "Hounslow", "Islington", "Kensington and Chelsea", "Kingston upon Thames",
    "Lambeth", "Lewisham", "Merton", "Newham", "Redbridge", "Richmond upon Thames", "Southwark",
    "Sutton", "Tower Hamlets", "Waltham Forest", "Wandsworth", "Westminster",
]  # fmt: skip
BORDER = ["Epping Forest", "Spelthorne", "Elmbridge", "Dartford", "Three Rivers"]


def generate(path: Path, rows: int, seed: int = 1) -> None:
    """Write a street-level file in 100,000-row slices (the generator itself stays small)."""
    rng = np.random.default_rng(seed)
    lsoas = np.array(
        [f"{b} {n:03d}{c}" for b in LONDON for n in range(1, 40) for c in "ABCD"]
        + [f"{b} {n:03d}{c}" for b in BORDER for n in range(1, 5) for c in "AB"]
    )
    codes = np.array([f"E0100{i:04d}" for i in range(len(lsoas))])
    weights = np.array([0.3] + [0.7 / 13] * 13)
    first = True
    for start in range(0, rows, 100_000):
        n = min(100_000, rows - start)
        crime = rng.choice(len(CRIME_TYPES), n, p=weights)
        month = rng.integers(1, 13, n)
        where = rng.integers(0, len(lsoas), n)
        no_location = rng.random(n) < 0.02
        asb = crime == 0
        ids = np.array([f"{x:016x}" * 4 for x in rng.integers(0, 2**62, n)])
        longitude = np.round(rng.uniform(-0.5, 0.3, n), 6).astype(str)
        latitude = np.round(rng.uniform(51.3, 51.7, n), 6).astype(str)
        outcome = "Investigation complete; no suspect identified"
        frame = pd.DataFrame(
            {
                "Crime ID": np.where(asb, "", ids),
                "Month": [f"2023-{m:02d}" for m in month],
                "Reported by": "Metropolitan Police Service",
                "Falls within": "Metropolitan Police Service",
                "Longitude": np.where(no_location, "", longitude),
                "Latitude": np.where(no_location, "", latitude),
                "Location": np.where(no_location, "No Location", "On or near Some Street"),
                "LSOA code": np.where(no_location, "", codes[where]),
                "LSOA name": np.where(no_location, "", lsoas[where]),
                "Crime type": np.array(CRIME_TYPES)[crime],
                "Last outcome category": np.where(asb, "", outcome),
                "Context": "",
            }
        )  # fmt: skip
        frame.to_csv(path, mode="w" if first else "a", header=first, index=False)
        first = False


def _peak_mb() -> float:
    """This process's peak resident memory: VmHWM, which (unlike ru_maxrss) restarts at exec."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def worker(mode: str, path: str, url: str) -> None:
    """Run one measured operation in this (fresh) process and print its figures as JSON."""
    if mode == "read_csv":
        start = time.perf_counter()
        frame = pd.read_csv(path)
        elapsed = time.perf_counter() - start
        print(json.dumps({"seconds": elapsed, "peak_mb": _peak_mb(), "rows": len(frame)}))
        return
    import logging

    from registry import db
    from registry.auth import SYSTEM
    from registry.outcomes import store
    from registry.outcomes.common import Source

    # The file is parsed in a child process (registry.untrusted); its peak is logged.
    children: list[float] = []
    handler = logging.Handler()
    handler.emit = lambda record: children.append(record.stats.peak_rss_bytes / 2**20)
    logging.getLogger("vru.untrusted").addHandler(handler)
    logging.getLogger("vru.untrusted").setLevel(logging.INFO)
    engine = db.make_engine(url)
    start = time.perf_counter()
    with db.session_scope(engine) as session:
        (report,) = store.import_crime(
            session, principal=SYSTEM, sources=[Source.from_path(Path(path))], fmt="police-uk"
        )
    elapsed = time.perf_counter() - start
    figures = {"seconds": elapsed, "peak_mb": _peak_mb(), "child_peak_mb": max(children or [0])}
    print(json.dumps(figures | report.as_json()))


def measure(mode: str, path: Path, url: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", mode, str(path), url],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--worker", nargs=3, metavar=("MODE", "FILE", "URL"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    from registry import db

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "2023-metropolitan-street.csv"
        started = time.perf_counter()
        generate(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        took = time.perf_counter() - started
        print(f"Generated {args.rows:,} rows ({size_mb:,.0f} MB) in {took:.1f} s")
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        measure("read_csv", path, url)  # warm the page cache so both runs read from memory
        baseline = measure("read_csv", path, url)
        imported = measure("import", path, url)
    ratio = imported["seconds"] / baseline["seconds"]
    print(
        f"pandas.read_csv:       {baseline['seconds']:6.2f} s, peak {baseline['peak_mb']:6.0f} MB"
    )
    child = imported.get("child_peak_mb")
    print(
        f"vru police-uk import:  {imported['seconds']:6.2f} s, peak {imported['peak_mb']:6.0f} MB"
        + ("" if child is None else f" (the parsing child process: {child:.0f} MB)")
    )
    print(f"ratio import/read_csv: {ratio:.2f} (target <= 2.0); import peak memory target < 500 MB")
    print(
        f"import: {imported['rows_read']:,} rows read, {imported['counts_written']:,} counts "
        f"written, unallocated {imported['unallocated']}, skipped {imported['skipped']}"
    )


if __name__ == "__main__":
    main()
