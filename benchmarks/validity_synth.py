"""Validity of the synthetic control on simulated boroughs with a known answer (issue #18).

Scenarios (33 boroughs, 120 months, the start at month 72, London falling by a third with a
seasonal swing, each borough's risk log-normal):

- knife-crime-sized counts (about 15 a month in a typical borough) with a planted 20% drop from
  the start: is it found (placebo p < 0.05), and does the placebo interval cover it?
- the same with no effect: the share of runs with placebo p < 0.05 (target at most 7%);
- homicide-sized counts (about 1 a month) with no effect;
- a treated borough above every donor (the highest rate in London), no effect: it must be
  reported as poorly fitted ("not interpretable"), not as an effect.

``SCENARIOS`` is read by ``benchmarks/bench_model_validity.py``; run this file alone for its own
table, which also gives the power of Abadie's post/pre RMSPE ratio for comparison::

    .venv/bin/python benchmarks/validity_synth.py --runs 200
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry.analysis.synth import estimate_borough, synth_result
from tests.analysis_sim import synth_rates

Run = Callable[[int], dict]


def _runner(effect: float, **kwargs: float) -> Run:
    def run(seed: int) -> dict:
        rates, population, treated, start = synth_rates(seed, effect=effect, **kwargs)
        donors = [c for c in rates.columns if c != treated]
        one = estimate_borough(rates, population, treated, start, donors)
        result = synth_result("Outcome", "outcome", [one], rates, donors, [])
        # Abadie's ratio statistic, for comparison: the treated borough's rank among donors.
        ratio = one.fit.ratio
        p_ratio = (1 + sum(p.ratio >= ratio for p in one.test.placebos)) / (
            1 + len(one.test.placebos)
        )
        return {
            "estimate": result.estimate,
            "ci_low": result.ci_low,
            "ci_high": result.ci_high,
            "p_value": result.p_value,
            "verdict": result.verdict,
            "p_ratio": p_ratio,
        }

    return run


SCENARIOS: list[tuple[str, str, float | None, Run]] = [
    ("planted 20% drop, knife-crime-sized", "synth", -0.2, _runner(-0.2, base=15.0)),
    ("no effect, knife-crime-sized", "synth", None, _runner(0.0, base=15.0)),
    ("no effect, homicide-sized", "synth", None, _runner(0.0, base=1.0)),
    (
        "treated above every donor, no effect",
        "synth",
        None,
        _runner(0.0, base=15.0, treated_risk=6.0),
    ),
]


def _summarise(name: str, truth: float | None, rows: list[dict]) -> dict:
    n = len(rows)
    significant = sum(r["p_value"] < 0.05 for r in rows) / n
    covered = [
        r["ci_low"] <= (truth or 0.0) <= r["ci_high"]
        for r in rows
        if math.isfinite(r["ci_low"]) and math.isfinite(r["ci_high"])
    ]
    verdicts: dict[str, float] = {}
    for r in rows:
        verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1 / n
    return {
        "scenario": name,
        "runs": n,
        "mean_estimate": sum(r["estimate"] for r in rows) / n,
        "rejects": significant,
        "rejects_ratio_test": sum(r["p_ratio"] < 0.05 for r in rows) / n,
        "coverage": sum(covered) / len(covered) if covered else math.nan,
        "verdicts": verdicts,
    }


def _one(args: tuple[int, int]) -> dict:
    index, seed = args
    return SCENARIOS[index][3](seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    print(f"Synthetic control, {args.runs} simulated panels per scenario")
    header = "scenario | runs | mean estimate | p<0.05 (mean gap) | p<0.05 (RMSPE ratio) | "
    print(header + "coverage | verdicts")
    with ProcessPoolExecutor(args.processes) as pool:
        for index, (name, _model, truth, _run) in enumerate(SCENARIOS):
            began = time.perf_counter()
            rows = list(pool.map(_one, [(index, 1000 + s) for s in range(args.runs)]))
            s = _summarise(name, truth, rows)
            verdicts = ", ".join(f"{k} {v:.1%}" for k, v in sorted(s["verdicts"].items()))
            print(
                f"{name} | {s['runs']} | {s['mean_estimate']:+.3f} | {s['rejects']:.1%} | "
                f"{s['rejects_ratio_test']:.1%} | {s['coverage']:.1%} | {verdicts} "
                f"({time.perf_counter() - began:.0f} s)"
            )


if __name__ == "__main__":
    main()
