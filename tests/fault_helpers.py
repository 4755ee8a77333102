"""Shared set-up for the fault-injection and concurrency tests: big generated files, a real
``vru`` process, integrity checks, and the amending worker run as its own process.

Run as a script (``python -m tests.fault_helpers amend URL WORKER ROUNDS SEED``) it is one of the
concurrency test's amending processes: it prints one JSON line per attempted save.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from registry import boroughs, db, deliveries, programmes
from registry.auth import Principal

ROOT = Path(__file__).resolve().parent.parent
FIRST_MONTH = dt.date(2015, 1, 1)
MONTHS = 120  # 2015-01 to 2024-12
OPERATOR = Principal("operator", "admin")


def programme_names(count: int) -> list[str]:
    return [f"Fault Programme {n:02d}" for n in range(1, count + 1)]


def add_programmes(engine: Engine, names: list[str]) -> None:
    with db.session_scope(engine) as session:
        programmes.add_funding_stream(
            session, principal=OPERATOR, name="Fault Fund", funder="City Hall"
        )
        for name in names:
            programmes.add_programme(
                session,
                principal=OPERATOR,
                name=name,
                funding_stream="Fault Fund",
                start=FIRST_MONTH,
            )


def write_deliveries(path: Path, names: list[str], seed: int = 1) -> int:
    """A valid upload: every programme × borough × month from 2015-01 to 2024-12; its row count."""
    borough_names = [b.name for b in boroughs.BOROUGHS]
    months = [f"{FIRST_MONTH.year + m // 12}-{m % 12 + 1:02d}" for m in range(MONTHS)]
    index = pd.MultiIndex.from_product([names, borough_names, months])
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "programme": index.get_level_values(0),
            "borough": index.get_level_values(1),
            "month": index.get_level_values(2),
            "opportunities": rng.integers(0, 60, len(index)),
        }
    )
    frame.to_csv(path, index=False)
    return len(frame)


def write_police_uk(path: Path, rows: int) -> None:
    """A data.police.uk street-level file, made by the police.uk import benchmark's generator."""
    spec = importlib.util.spec_from_file_location(
        "bench_police_uk_import", ROOT / "benchmarks" / "bench_police_uk_import.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(path, rows)


def vru_env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRU_")}
    return env | {"VRU_DATABASE_URL": url, "PYTHONPATH": str(ROOT)} | extra


def start_vru(url: str, *args: str, **extra: str) -> subprocess.Popen[str]:
    """``vru ARGS`` in its own process, as an operator would run it."""
    return subprocess.Popen(
        [sys.executable, "-c", "from registry.cli import main; main()", *args],
        env=vru_env(url, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_pause(process: subprocess.Popen[str], timeout: float = 300) -> None:
    """Read the process's stderr until the fault hook says it paused before committing."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            raise AssertionError(f"vru ended before pausing (exit {process.wait()}).")
        if line.startswith(db.FAULT_PAUSE_MARKER):
            return
    raise AssertionError("vru did not reach the pause in time.")


def kill(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


def integrity_problems(engine: Engine) -> list[str]:
    """What is wrong with the database's structure: empty when it passes every check.

    SQLite: ``PRAGMA integrity_check`` and ``foreign_key_check``. PostgreSQL: ``amcheck``'s
    ``bt_index_check`` on every index (with the heap check) when the extension is there; on both,
    recounts of the unique keys and of rows pointing at missing import batches.
    """
    problems: list[str] = []
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            result = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
            if result != ["ok"]:
                problems += result
            problems += [str(tuple(r)) for r in conn.exec_driver_sql("PRAGMA foreign_key_check")]
        else:
            problems += _amcheck(engine)
        checks = {
            "duplicate delivery": "SELECT programme_id, borough_id, month FROM delivery "
            "GROUP BY programme_id, borough_id, month HAVING count(*) > 1",
            "duplicate outcome count": "SELECT measure_id, source, borough_id, month FROM "
            "outcome_count GROUP BY measure_id, source, borough_id, month HAVING count(*) > 1",
            "delivery without its batch": "SELECT d.id FROM delivery d LEFT JOIN import_batch b "
            "ON b.id = d.import_batch_id WHERE d.import_batch_id IS NOT NULL AND b.id IS NULL",
            "outcome count without its batch": "SELECT c.id FROM outcome_count c LEFT JOIN "
            "import_batch b ON b.id = c.import_batch_id WHERE b.id IS NULL",
        }
        for name, sql in checks.items():
            problems += [f"{name}: {tuple(r)}" for r in conn.execute(text(sql))]
    return problems


def _amcheck(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        try:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS amcheck"))
            conn.commit()
        except DBAPIError:
            conn.rollback()
            return []
        indexes = conn.execute(
            text(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE a.amname = 'btree' AND n.nspname = 'public'"
            )
        ).scalars()
        problems = []
        for name in list(indexes):
            try:
                conn.execute(text("SELECT bt_index_check(CAST(:n AS regclass), true)"), {"n": name})
            except DBAPIError as exc:
                conn.rollback()
                problems.append(f"index {name}: {exc.orig}")
        return problems


def amend(url: str, worker: int, rounds: int, seed: int, programme: str, keys: str) -> None:
    """One amending process: read a row, wait a moment (a person typing), save a unique value.

    Each attempt prints ``{"key", "value", "ok", "error", "kind"}``; a refused save must be a
    :class:`~registry.errors.ConflictError`, anything else is printed as an error kind too.
    """
    rng = random.Random(seed)
    engine = db.make_engine(url)
    who = Principal(f"amender{worker}", "staff")
    triples = [tuple(k.split("|")) for k in keys.split(",")]
    for attempt in range(rounds):
        borough, month = rng.choice(triples)
        value = 100_000 + worker * 1_000 + attempt
        with db.session_scope(engine) as session:
            read = deliveries.get_delivery(
                session,
                principal=who,
                programme=programme,
                borough=borough,
                month=dt.date.fromisoformat(month + "-01"),
            )
        time.sleep(rng.uniform(0, 0.03))
        record = {"key": f"{borough}|{month}", "value": value, "ok": True, "error": ""}
        try:
            with db.session_scope(engine) as session:
                deliveries.save_delivery(
                    session,
                    principal=who,
                    programme=programme,
                    borough=borough,
                    month=month,
                    opportunities=value,
                    read=read,
                )
        except Exception as exc:  # reported, not raised: the test judges every refusal
            record |= {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        record["amended"] = read is not None
        print(json.dumps(record), flush=True)
    engine.dispose()


if __name__ == "__main__":
    _, command, *arguments = sys.argv
    assert command == "amend"
    amend(arguments[0], int(arguments[1]), int(arguments[2]), int(arguments[3]), *arguments[4:])
