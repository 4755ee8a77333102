"""Do the models tell the truth? Simulated panels with a known answer, many of them.

Usage: ``python benchmarks/bench_model_validity.py [--panels N] [--only SUBSTRING]``.

Each scenario draws ``--panels`` borough × month panels (33 boroughs, 96 months; knife-crime-
sized counts, about 4.5 per borough-month, and homicide-sized, about 0.3) and fits each model.
Printed per scenario and model: the false-positive rate (p < 0.05 when there is no effect), the
share of intervals covering the truth, power (p < 0.05 when there is an effect) and the shares of
each verdict. Baseline, in the same process and on the same fits: the borough-clustered errors
with Student's t and no checks ("CRV" rows), which the bootstraps and checks replace.

Other helpers' scenarios plug in: ``benchmarks/validity_designs.py`` and
``benchmarks/validity_synth.py``, when present, expose ``SCENARIOS``, a list of
``(scenario_name, model_name, true_effect, run)`` where ``run(seed)`` returns a dict with
``estimate``, ``ci_low``, ``ci_high`` (may be None), ``p_value`` and ``verdict``; a true effect
of None or 0 is a null.

Targets (issue #14): false-positive rate at most 7% for the headline (and FE where its
assumption holds), coverage at least 92%, and delivery that chases crime "not interpretable" in
at least 90% of panels.
"""

from __future__ import annotations

import argparse
import importlib
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from registry.analysis.headline import fe_with_checks, headline_poisson  # noqa: E402
from registry.analysis.result import (  # noqa: E402
    ASSOCIATION_FOUND,
    NO_ASSOCIATION,
    NOT_INTERPRETABLE,
    ModelResult,
)
from tests.analysis_sim import risk_panel  # noqa: E402

PROCESSES = 2
BETA = -0.03  # per opportunity per 1,000 young people: -26% per 10
SIZES = {"knife": 4.5, "homicide": 0.3}

Outcome = dict[str, object]


def _outcome(result: ModelResult, *, crv: bool = False) -> Outcome:
    if crv:
        p = float(result.extra["crv_p_value"])
        return {
            "estimate": result.estimate,
            "ci_low": result.extra["crv_ci_low"],
            "ci_high": result.extra["crv_ci_high"],
            "p_value": p,
            "verdict": ASSOCIATION_FOUND if p < 0.05 else NO_ASSOCIATION,
        }
    return {
        "estimate": result.estimate,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "p_value": result.p_value,
        "verdict": result.verdict,
    }


def _fit_all(frame: object) -> dict[str, Outcome]:
    out: dict[str, Outcome] = {}
    head = headline_poisson(frame, x="delivery_rate_lag1", lag=1)  # type: ignore[arg-type]
    out["headline Poisson (bootstrap + checks)"] = _outcome(head)
    out["Poisson CRV t(G-1), no checks [baseline]"] = _outcome(head, crv=True)
    fe = fe_with_checks(frame, x="delivery_rate_lag1", lag=1)  # type: ignore[arg-type]
    out["additive FE (WCR + checks)"] = _outcome(fe)
    out["additive FE CRV, no checks [baseline]"] = _outcome(fe, crv=True)
    return out


def _own(name: str, true: float | None, **panel: object) -> tuple[str, float | None, Callable]:
    def run(seed: int) -> dict[str, Outcome]:
        return _fit_all(risk_panel(seed, **panel))  # type: ignore[arg-type]

    return name, true, run


def own_scenarios() -> list[tuple[str, float | None, Callable]]:
    out = []
    for size, mean in SIZES.items():
        out += [
            _own(f"targeted, London falling, null ({size})", 0.0, per_borough_month=mean),
            _own(
                f"targeted, London falling, effect {BETA} ({size})",
                BETA,
                per_borough_month=mean,
                beta=BETA,
            ),
            _own(
                f"delivery chases last quarter, null ({size})",
                0.0,
                per_borough_month=mean,
                chase=True,
            ),
            _own(
                f"4 delivering boroughs, London flat, null ({size})",
                0.0,
                per_borough_month=mean,
                delivering=4,
                targeted=False,
                london_fall=0.0,
            ),
            _own(
                f"8 delivering boroughs, London flat, null ({size})",
                0.0,
                per_borough_month=mean,
                delivering=8,
                targeted=False,
                london_fall=0.0,
            ),
        ]
    return out


def plugin_scenarios() -> list[tuple[str, float | None, Callable]]:
    """Other helpers' scenarios, one model each, wrapped to the same shape."""
    out = []
    for module in ("validity_designs", "validity_synth"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        for scenario, model, true, run in mod.SCENARIOS:

            def wrapped(seed: int, run: Callable = run, model: str = model) -> dict[str, Outcome]:
                return {model: run(seed)}

            out.append((scenario, true, wrapped))
    return out


SCENARIOS: list[tuple[str, float | None, Callable]] = []


def _task(args: tuple[int, int]) -> tuple[int, dict[str, Outcome] | str]:
    index, seed = args
    try:
        return index, SCENARIOS[index][2](seed)
    except Exception as exc:  # a refused fit is a result too: counted, not fatal
        return index, f"{type(exc).__name__}: {exc}"


def _summary(true: float | None, outcomes: list[Outcome]) -> dict[str, float]:
    null = true is None or true == 0
    truth = 0.0 if null else float(true)  # type: ignore[arg-type]
    n = len(outcomes)
    ps = [float(o["p_value"]) for o in outcomes if o["p_value"] is not None]
    rejected = sum(1 for p in ps if math.isfinite(p) and p < 0.05)
    covered = [
        float(o["ci_low"]) <= truth <= float(o["ci_high"])  # type: ignore[arg-type]
        for o in outcomes
        if o.get("ci_low") is not None
        and o.get("ci_high") is not None
        and math.isfinite(float(o["ci_low"]))  # type: ignore[arg-type]
        and math.isfinite(float(o["ci_high"]))  # type: ignore[arg-type]
    ]
    verdicts = [o["verdict"] for o in outcomes]
    return {
        "n": n,
        "fpr": rejected / n if null else float("nan"),
        "power": rejected / n if not null else float("nan"),
        "coverage": sum(covered) / len(covered) if covered else float("nan"),
        "association": verdicts.count(ASSOCIATION_FOUND) / n,
        "none": verdicts.count(NO_ASSOCIATION) / n,
        "not_interpretable": verdicts.count(NOT_INTERPRETABLE) / n,
    }


def _pct(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{100 * value:.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int, default=200, help="Panels per scenario.")
    parser.add_argument("--only", default="", help="Only scenarios whose name contains this.")
    parser.add_argument("--processes", type=int, default=PROCESSES, help="At most 2.")
    args = parser.parse_args()
    SCENARIOS.extend(own_scenarios() + plugin_scenarios())
    chosen = [i for i, s in enumerate(SCENARIOS) if args.only.lower() in s[0].lower()]
    tasks = [(i, 1000 * i + seed) for i in chosen for seed in range(args.panels)]
    results: dict[int, list[dict[str, Outcome]]] = {i: [] for i in chosen}
    failures: dict[int, list[str]] = {i: [] for i in chosen}
    began = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(min(max(args.processes, 1), 2)) as pool:
        for index, out in pool.imap_unordered(_task, tasks, chunksize=4):
            (failures if isinstance(out, str) else results)[index].append(out)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - began
    print(f"{args.panels} panels per scenario, {len(tasks)} fits in {elapsed:,.0f} s\n")
    print(
        "| Scenario | Model | Panels | False positives | Coverage | Power | "
        "Association | No detectable | Not interpretable |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for i in chosen:
        name, true, _ = SCENARIOS[i]
        models = sorted({m for r in results[i] for m in r}, key=lambda m: (m.endswith("]"), m))
        for model in models:
            outcomes = [r[model] for r in results[i] if model in r]
            s = _summary(true, outcomes)
            print(
                f"| {name} | {model} | {int(s['n'])} | {_pct(s['fpr'])} | {_pct(s['coverage'])} "
                f"| {_pct(s['power'])} | {_pct(s['association'])} | {_pct(s['none'])} "
                f"| {_pct(s['not_interpretable'])} |"
            )
        if failures[i]:
            print(f"| {name} | (fits refused) | {len(failures[i])} | {failures[i][0][:80]} |")


if __name__ == "__main__":
    main()
