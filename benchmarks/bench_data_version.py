"""Benchmark: the data version every Overview, Explore and Models run reads, after a large upload.

Builds a migrated database with the demo's kinds of audit event, then appends 100,000 delivery
"amend" events after the last other event: what a 100,000-row upload that amends figures leaves.
Then, in the same process, alternately (median of 200 calls each):

- baseline: the query the version used before migration 0011, "the newest event that is neither
  an account nor a delivery" (``max(id) WHERE entity NOT IN (...)``), which scans back past every
  newer delivery event;
- ``audit.data_version(..., ignoring_deliveries=True)``: the newest event of each kind through
  the ``(entity, id)`` index;
- ``audit.data_version(...)`` (deliveries counted), for scale.

Checks that both queries give the same version, and prints milliseconds a call and the ratio.
Target: the version ignoring deliveries costs no more than the plain one, whatever the upload.
Run: ``.venv/bin/python benchmarks/bench_data_version.py [sqlite|postgresql ...] [--events N]``
(PostgreSQL: the server of ``VRU_TEST_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``, where a database ``vru_bench_version`` is
created and dropped, as the tests do).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, func, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from registry import audit, db  # noqa: E402
from registry.schema import AuditEvent, utcnow  # noqa: E402

os.environ.setdefault("VRU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
from tests.conftest import create_pg_database, drop_pg_database  # noqa: E402

CALLS = 200


def build(url: str, events: int) -> Engine:
    engine = db.make_engine(url)
    db.upgrade(engine)
    others = ["programme", "funding_stream", "import_batch", "outcome_measure", "measure_break"]
    with db.session_scope(engine) as s:
        audit.record_many(s, (_event(kind, "create") for kind in others * 20))
    with db.session_scope(engine) as s:
        audit.record_many(s, (_event("delivery", "amend") for _ in range(events)))
    return engine


def _event(entity: str, action: str) -> dict[str, object]:
    return {
        "occurred_at": utcnow(),
        "actor": "bench",
        "action": action,
        "entity": entity,
        "entity_id": "1",
        "before": None,
        "after": {"opportunities": 1},
        "detail": None,
    }


def _old_version(session: Session) -> int:
    left_out = ("app_user", *audit.DELIVERY_ENTITIES)
    stmt = select(func.coalesce(func.max(AuditEvent.id), 0)).where(
        AuditEvent.entity.not_in(left_out)
    )
    return int(session.scalar(stmt) or 0)


def _median_ms(session: Session, call: Callable[[Session], int]) -> float:
    times = []
    for _ in range(CALLS):
        t0 = time.perf_counter()
        call(session)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def measure(name: str, engine: Engine) -> None:
    with Session(engine) as s:
        old, new = _old_version(s), audit.data_version(s, ignoring_deliveries=True)
        if old != new:
            raise SystemExit(f"{name}: the versions differ: old {old}, new {new}")
        figures: dict[str, list[float]] = {"baseline": [], "ignoring": [], "plain": []}
        for _ in range(3):  # alternate, so neither side gets a warmer cache
            figures["baseline"].append(_median_ms(s, _old_version))
            figures["ignoring"].append(
                _median_ms(s, lambda x: audit.data_version(x, ignoring_deliveries=True))
            )
            figures["plain"].append(_median_ms(s, audit.data_version))
    best = {k: min(v) for k, v in figures.items()}
    print(f"{name}: version {new}")
    print(f"  baseline, max(id) WHERE entity NOT IN (...): {best['baseline']:8.3f} ms a call")
    print(f"  data_version(ignoring_deliveries=True):      {best['ignoring']:8.3f} ms a call")
    print(f"  data_version() (deliveries counted):         {best['plain']:8.3f} ms a call")
    print(f"  baseline / new: {best['baseline'] / best['ignoring']:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("backends", nargs="*", default=["sqlite", "postgresql"])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    for backend in args.backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                engine = build(f"sqlite:///{Path(tmp) / 'bench.db'}", args.events)
                measure("SQLite", engine)
                engine.dispose()
            continue
        name = "vru_bench_version"
        try:
            engine = build(create_pg_database(name), args.events)
            with engine.begin() as conn:
                conn.execute(text("ANALYZE audit_event"))
            measure("PostgreSQL", engine)
            engine.dispose()
        finally:
            drop_pg_database(name)


if __name__ == "__main__":
    main()
