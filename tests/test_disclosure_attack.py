"""The disclosure attack: every table one funder can download, solved together as a linear program.

A funder with two funding streams fetches every summary it may: each stream and each programme,
by month, quarter and financial year, for two overlapping periods (April-March and May-April).
Each figure in the downloaded CSVs becomes a constraint on the unknown participant counts
(programme x borough x month): a number is an equality, ``<10`` and ``a to b`` are bounds, and
what anyone knows anyway (0 <= participants <= opportunities, which summaries publish) bounds each
unknown. HiGHS then finds the smallest and largest value each hidden count can take. No hidden
count may be pinned down, or narrowed at all within its interval.

The same solver given what a publisher that suppresses cells but prints true totals would show
recovers most hidden counts exactly: the attack works, the method is what stops it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterator

import numpy as np
import pytest
from scipy.optimize import linprog
from sqlalchemy import select

from registry import db
from registry.auth import Principal
from registry.periods import Window, financial_year_label, format_month, quarter_label
from registry.reports.build import Scope, build_report
from registry.reports.disclosure import TOTAL
from registry.reports.render import render
from registry.schema import Borough, Delivery, FundingStream, Programme

pytestmark = pytest.mark.slow

FUNDER = Principal("fran", "funder", funder="City Hall")
STREAMS = {"Young Londoners": ["Mentors", "Sports"], "Youth Fund": ["Arts"]}
BOROUGHS = ["Bexley", "Camden", "Hackney", "Lambeth"]
MONTHS = [dt.date(2023 + (3 + i) // 12, (3 + i) % 12 + 1, 1) for i in range(13)]  # 2023-04..2024-04
WINDOWS = [Window(MONTHS[0], MONTHS[11]), Window(MONTHS[1], MONTHS[12])]  # overlapping years
GRANULARITIES = ("month", "quarter", "financial_year")
THRESHOLD = 10
Cell = tuple[str, str, dt.date]  # programme, borough, month


@pytest.fixture
def registry(engine) -> Iterator[dict[Cell, tuple[int, int | None]]]:
    """Small programmes, so many counts are small; returns (opportunities, participants)."""
    rng = np.random.default_rng(19)
    truth: dict[Cell, tuple[int, int | None]] = {}
    with db.session_scope(engine) as s:
        ids = dict(s.execute(select(Borough.name, Borough.id)).tuples().all())
        other = FundingStream(name="Serious Violence", funder="Home Office")
        s.add(other)
        names = {**STREAMS, "Serious Violence": ["Elsewhere"]}
        for stream_name, programmes in names.items():
            stream = (
                other
                if stream_name == "Serious Violence"
                else FundingStream(name=stream_name, funder="City Hall")
            )
            s.add(stream)
            s.flush()
            for name in programmes:
                programme = Programme(
                    name=name, funding_stream_id=stream.id, start_date=dt.date(2020, 1, 1)
                )
                s.add(programme)
                s.flush()
                for borough in BOROUGHS:
                    for month in MONTHS:
                        if rng.random() < 0.15:
                            continue  # not every programme is in every borough every month
                        opportunities = int(rng.integers(1, 30))
                        participants = (
                            None if rng.random() < 0.05 else int(rng.binomial(opportunities, 0.6))
                        )
                        truth[(name, borough, month)] = (opportunities, participants)
                        s.add(
                            Delivery(
                                programme_id=programme.id,
                                borough_id=ids[borough],
                                month=month,
                                opportunities=opportunities,
                                participants=participants,
                                updated_by="test",
                            )
                        )
    yield truth


def _label(month: dt.date, granularity: str) -> str:
    if granularity == "quarter":
        return quarter_label(month)
    if granularity == "financial_year":
        return financial_year_label(month)
    return format_month(month)


def _tables(data: bytes) -> dict[str, list[dict[str, str]]]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    return {
        n.removesuffix(".csv"): list(csv.DictReader(io.StringIO(archive.read(n).decode())))
        for n in archive.namelist()
        if n.endswith(".csv")
    }


def _downloads(engine) -> Iterator[tuple[list[str], Window, str, dict[str, list[dict[str, str]]]]]:
    """Every summary the funder can fetch, as the CSV files it downloads."""
    scopes = [Scope("funding_stream", s) for s in STREAMS] + [
        Scope("programme", p) for ps in STREAMS.values() for p in ps
    ]
    for scope in scopes:
        programmes = STREAMS[scope.name] if scope.kind == "funding_stream" else [scope.name]
        for window in WINDOWS:
            for granularity in GRANULARITIES:
                with db.session_scope(engine) as s:
                    report = build_report(
                        s, principal=FUNDER, scope=scope, window=window, granularity=granularity
                    )
                yield programmes, window, granularity, _tables(render(report, "csv"))


def _published(engine) -> list[tuple[list[Cell], str]]:
    """Every participant figure the funder sees, with the finest cells it adds up."""
    figures = []
    for programmes, window, granularity, tables in _downloads(engine):
        months = [m for m in MONTHS if window.start <= m <= window.end]

        def cells(borough: str, period: str, programmes=programmes, months=months, g=granularity):
            return [
                (p, b, m)
                for p in programmes
                for b in BOROUGHS
                for m in months
                if borough in (TOTAL, b) and period in (TOTAL, _label(m, g))
            ]

        short = {"month": "month", "quarter": "quarter", "financial_year": "fy"}[granularity]
        for row in tables[f"participants_by_borough_{short}"]:
            figures.append((cells(row["borough"], row["period"]), row["participants"]))
        for row in tables["delivery_by_borough"]:
            figures.append((cells(row["borough"], TOTAL), row["participants"]))
        for row in tables[f"delivery_by_{granularity}"]:
            figures.append((cells(TOTAL, row["period"]), row["participants"]))
        summary = {r["item"]: r["value"] for r in tables["summary"]}
        figures.append((cells(TOTAL, TOTAL), summary["participants"]))
    return figures


def _bounds(
    truth: dict[Cell, tuple[int, int | None]], figures: list[tuple[list[Cell], str]]
) -> tuple[list[Cell], np.ndarray, np.ndarray]:
    """Solve every figure together: the smallest and largest each recorded count can be."""
    theirs = {p for ps in STREAMS.values() for p in ps}
    unknowns = [c for c, (_, p) in truth.items() if p is not None and c[0] in theirs]
    column = {c: i for i, c in enumerate(unknowns)}
    a_ub, b_ub, a_eq, b_eq = [], [], [], []
    for members, value in figures:
        row = np.zeros(len(unknowns))
        for c in members:
            if c in column:
                row[column[c]] = 1.0
        if value == "":
            assert not row.any(), "a blank figure must hold no recorded count"
            continue
        if value.startswith("<"):
            lo, hi = 0, int(value[1:]) - 1
        elif " to " in value:
            lo, hi = (int(v) for v in value.split(" to "))
        else:
            a_eq.append(row)
            b_eq.append(int(value))
            continue
        a_ub += [row, -row]
        b_ub += [hi, -lo]
    prior = [(0, truth[c][0]) for c in unknowns]  # 0 <= participants <= opportunities
    lows, highs = np.zeros(len(unknowns)), np.zeros(len(unknowns))
    problem = {
        "A_ub": np.array(a_ub) if a_ub else None,
        "b_ub": np.array(b_ub) if b_ub else None,
        "A_eq": np.array(a_eq) if a_eq else None,
        "b_eq": np.array(b_eq) if b_eq else None,
        "bounds": prior,
        "method": "highs",
    }
    for i, c in enumerate(unknowns):
        if truth[c][1] >= THRESHOLD:
            lows[i] = highs[i] = truth[c][1]
            continue
        objective = np.zeros(len(unknowns))
        objective[i] = 1.0
        low = linprog(objective, **problem)
        high = linprog(-objective, **problem)
        assert low.status == 0 and high.status == 0, (low.message, high.message)
        lows[i], highs[i] = low.fun, -high.fun
    return unknowns, lows, highs


def test_no_hidden_count_can_be_worked_out_from_every_download(engine, registry) -> None:
    figures = _published(engine)
    assert len(figures) > 1000  # 30 summaries' worth of participant figures
    unknowns, lows, highs = _bounds(registry, figures)
    hidden = [i for i, c in enumerate(unknowns) if registry[c][1] < THRESHOLD]
    assert len(hidden) > 50 and "Elsewhere" not in {c[0] for c in unknowns}
    for i in hidden:
        opportunities, participants = registry[unknowns[i]]
        interval = (0, min(THRESHOLD - 1, opportunities))
        # The solver cannot narrow a hidden count at all: it may be anything in its interval.
        assert lows[i] == pytest.approx(interval[0], abs=1e-6), unknowns[i]
        assert highs[i] == pytest.approx(interval[1], abs=1e-6), unknowns[i]
        assert highs[i] - lows[i] >= 1  # never recovered exactly
        assert interval[0] <= participants <= interval[1]


def test_the_same_attack_recovers_counts_when_totals_are_true(engine, registry) -> None:
    """The control: hide the small cells but print true totals, and most hidden counts fall out."""
    naive = []
    for members, _value in _published(engine):
        recorded = [registry[c][1] for c in members if c in registry and registry[c][1] is not None]
        if not recorded:
            naive.append((members, ""))
        elif len(recorded) == 1 and recorded[0] < THRESHOLD:
            naive.append((members, f"<{THRESHOLD}"))
        else:
            naive.append((members, str(sum(recorded))))
    unknowns, lows, highs = _bounds(registry, naive)
    hidden = [i for i, c in enumerate(unknowns) if registry[c][1] < THRESHOLD]
    recovered = [i for i in hidden if highs[i] - lows[i] < 1e-6]
    assert len(recovered) > len(hidden) / 2
    assert all(abs(lows[i] - registry[unknowns[i]][1]) < 1e-6 for i in recovered)
