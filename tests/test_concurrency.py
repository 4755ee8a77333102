"""Concurrency: several processes upload and amend the same deliveries at once.

Three processes run ``vru import deliveries`` one file after another while three more amend the
same rows through :mod:`registry.deliveries` (read a row, pause as a person would, save a new
figure). Every figure written is unique, so the final rows and the audit trail can be checked
against what each process was told: no lost update, no duplicate, every refusal a clear conflict,
and one audit event per write with each amendment's ``before`` equal to the previous ``after``.

Meaningful on PostgreSQL (row locks, concurrent transactions); on SQLite writers queue for the
database lock, and the same guarantees are checked there too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests import fault_helpers as fh

pytestmark = pytest.mark.slow

PROGRAMME = "Fault Programme 01"
BOROUGHS = ("Camden", "Hackney", "Lambeth", "Newham")
MONTHS = ("2023-01", "2023-02", "2023-03")
KEYS = [(b, m) for b in BOROUGHS for m in MONTHS]
IMPORTERS, IMPORT_ROUNDS = 3, 3
AMENDERS, AMEND_ROUNDS = 3, 25
FIGURES = ("opportunities", "participants", "spend_gbp", "version")


def _import_file(tmp_path: Path, lane: int, round_: int) -> tuple[Path, dict[tuple[str, str], int]]:
    values = {key: 10_000 + lane * 1_000 + round_ * 100 + i for i, key in enumerate(KEYS)}
    path = tmp_path / f"lane{lane}-round{round_}.csv"
    lines = ["programme,borough,month,opportunities"]
    lines += [f"{PROGRAMME},{b},{m},{v}" for (b, m), v in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, values


def _import_lane(url: str, tmp_path: Path, lane: int) -> list[dict[str, Any]]:
    """One operator importing files one after another; what each run reported."""
    runs = []
    for round_ in range(IMPORT_ROUNDS):
        path, values = _import_file(tmp_path, lane, round_)
        process = fh.start_vru(url, "import", "deliveries", str(path), "--json")
        out, err = process.communicate(timeout=600)
        runs.append({"exit": process.returncode, "out": out, "err": err, "values": values})
    return runs


def _amend_lane(url: str, worker: int) -> list[dict[str, Any]]:
    keys = ",".join(f"{b}|{m}" for b, m in KEYS)
    command = [sys.executable, "-m", "tests.fault_helpers", "amend", url, str(worker)]
    command += [str(AMEND_ROUNDS), str(worker), PROGRAMME, keys]
    done = subprocess.run(
        command, env=fh.vru_env(url), capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _history(engine: Engine) -> tuple[dict[tuple[str, str], dict[str, Any]], list[Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT d.id, b.name, d.month, d.opportunities, d.version FROM delivery d "
                "JOIN borough b ON b.id = d.borough_id"
            )
        ).all()
        events = conn.execute(
            text(
                "SELECT id, action, entity, entity_id, actor, before, after FROM audit_event "
                "ORDER BY id"
            )
        ).all()
    by_key = {
        (r.name, f"{r.month:%Y-%m}" if hasattr(r.month, "year") else str(r.month)[:7]): {
            "id": str(r.id),
            "opportunities": r.opportunities,
            "version": r.version,
        }
        for r in rows
    }
    return by_key, events


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else value


def test_concurrent_uploads_and_amendments_lose_nothing(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    fh.add_programmes(engine, [PROGRAMME])
    with ThreadPoolExecutor(IMPORTERS + AMENDERS) as pool:
        imports = [pool.submit(_import_lane, db_url, tmp_path, lane) for lane in range(IMPORTERS)]
        amends = [pool.submit(_amend_lane, db_url, worker) for worker in range(AMENDERS)]
        import_runs = [run for f in imports for run in f.result()]
        attempts = [a for f in amends for a in f.result()]

    # Every refusal is a clear conflict: one line, no traceback, nothing else went wrong.
    imported = [r for r in import_runs if r["exit"] == 0]
    for run in import_runs:
        assert run["exit"] in (0, 1), run["err"]
        assert "Traceback" not in run["err"]
        if run["exit"] == 1:
            line = run["err"].strip()
            assert "\n" not in line and line.startswith("Error: Someone else"), line
    saved = [a for a in attempts if a["ok"]]
    for a in attempts:
        assert a["ok"] or a["error"].startswith("ConflictError: "), a["error"]

    # What each successful write was told it wrote, per row.
    written: dict[tuple[str, str], list[int]] = defaultdict(list)
    reported = Counter()
    for run in imported:
        summary = json.loads(run["out"])
        reported["added"] += summary["added"]
        reported["amended"] += summary["amended"]
        assert summary["added"] + summary["amended"] == len(KEYS)
        for key, value in run["values"].items():
            written[key].append(value)
    for a in saved:
        written[tuple(a["key"].split("|"))].append(a["value"])
        reported["amended" if a["amended"] else "added"] += 1

    rows, events = _history(engine)
    # No duplicate: one row per programme × borough × month, and each was created once.
    assert sorted(rows) == sorted(KEYS)
    assert reported["added"] == len(KEYS)
    assert fh.integrity_problems(engine) == []

    amendments: dict[str, list[Any]] = defaultdict(list)
    for e in events:
        if e.entity == "delivery" and e.action == "amend":
            amendments[e.entity_id].append(e)
    assert sum(len(v) for v in amendments.values()) == reported["amended"]
    # One audit event per upload and per row recorded from the form.
    assert sum(1 for e in events if e.action == "import") == len(imported)
    form_adds = [e for e in events if e.action == "create" and e.entity == "delivery"]
    assert len(form_adds) == sum(1 for a in saved if not a["amended"])

    for key, row in rows.items():
        chain = amendments.get(row["id"], [])
        befores = [_json(e.before) for e in chain]
        afters = [_json(e.after) for e in chain]
        # The chain is unbroken: each amendment started from what the previous one left.
        for previous, before in zip(afters, befores[1:], strict=False):
            assert {f: before.get(f) for f in FIGURES} == {f: previous.get(f) for f in FIGURES}
        assert [b["version"] for b in befores] == list(range(1, len(chain) + 1))
        assert [a["version"] for a in afters] == list(range(2, len(chain) + 2))
        first = befores[0]["opportunities"] if chain else row["opportunities"]
        history = [first, *(a["opportunities"] for a in afters)]
        # No lost update: every successful write is in the row's history exactly once, and the
        # row holds the last of them.
        assert sorted(history) == sorted(written[key])
        assert row["opportunities"] == history[-1]
        assert row["version"] == len(history)

    refused_imports = len(import_runs) - len(imported)
    refused_amends = len(attempts) - len(saved)
    reasons = Counter(
        [r["err"].strip()[:60] for r in import_runs if r["exit"]]
        + [a["error"][:60] for a in attempts if not a["ok"]]
    )
    print(
        f"\n[{engine.dialect.name}] imports: {len(imported)} saved, {refused_imports} refused; "
        f"form saves: {len(saved)} saved, {refused_amends} refused as conflicts; "
        f"{reported['amended']} amendments audited across {len(rows)} rows; "
        f"refusals: {dict(reasons)}"
    )
    assert len(saved) > 0 and len(imported) > 0
