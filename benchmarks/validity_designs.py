"""Validity scenarios for the event study and ITS (issue #14.4-5), for bench_model_validity.

``SCENARIOS`` is a list of ``(scenario_name, model_name, true_effect, run)``; ``run(seed)``
simulates one panel or series and returns ``estimate``, ``ci_low``, ``ci_high``, ``p_value``,
``verdict`` and ``true_effect`` (this panel's own truth: for staggered starts it is the log of
expected counts with over without the programme, pooled over reached borough-months 0-12
after first delivery, and moves a little with the noise; ``true_effect`` in the tuple is its
mean). A true effect of None is a null.

Panels: 33 boroughs × 96 months from 2018-01, multiplicative risk (borough risk times a London
level falling 3% a year with a season), gamma noise on each borough-month; knife-crime-sized
(about 4.5 a borough-month) and homicide-sized (about 0.3). Series: London's monthly counts
2013-01 to 2022-12 (120 months) with a COVID dip, a falling trend, a season and a level that
wanders as AR(1) with rho 0.5 or 0.8 (standard deviation 0.08 on the log scale) under Poisson
noise; knife-crime-sized (about 150 a month) and homicide-sized (about 10).

Run alone for a quick table (per-panel truth): ``python benchmarks/validity_designs.py [N] [ONLY]``.
For ITS it also prints, from the same fits, the baseline: Newey-West errors alone.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from registry.analysis.estimators import fit_event_study, fit_its  # noqa: E402
from registry.analysis.result import ModelResult  # noqa: E402
from tests.analysis_sim import its_series, staggered_panel  # noqa: E402

AT = dt.date(2019, 9, 1)
DESIGN_SEED = 14  # which boroughs are reached, and when: the same in every panel
KNIFE, HOMICIDE = 8.0, 0.55  # per 100,000 young people a month: ~4.5 and ~0.3 a borough-month
STAGGERED_EFFECT = -0.2


def _out(result: ModelResult, truth: float | None) -> dict[str, object]:
    out: dict[str, object] = {
        "estimate": result.estimate,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "p_value": result.p_value,
        "verdict": result.verdict,
        "true_effect": truth,
    }
    if "newey_west_std_error" in result.diagnostics:
        # Baseline in the same fit: Newey-West errors alone, normal reference (what ITS had).
        z = result.estimate / result.diagnostics["newey_west_std_error"]
        out["baseline_p_value"] = math.erfc(abs(z) / math.sqrt(2))
    return out


def _event(**kwargs: object) -> Callable[[int], dict[str, object]]:
    def run(seed: int) -> dict[str, object]:
        frame, firsts, truth = staggered_panel(seed, design_seed=DESIGN_SEED, **kwargs)
        result = fit_event_study(frame, first_delivery=firsts, programme="P")
        null = kwargs.get("after_peak") or kwargs.get("effect") == 0.0
        return _out(result, None if null else truth)

    return run


def _its(**kwargs: object) -> Callable[[int], dict[str, object]]:
    def run(seed: int) -> dict[str, object]:
        series = its_series(seed, at=AT, **kwargs)
        level = float(kwargs.get("level", 0.0))  # type: ignore[arg-type]
        return _out(fit_its(series, at=AT, outcome="simulated"), level or None)

    return run


def _mean_truth(**kwargs: object) -> float:
    """The staggered scenario's truth averaged over 20 panels (it barely moves)."""
    return float(
        np.mean(
            [
                staggered_panel(s, design_seed=DESIGN_SEED, **kwargs)[2]  # type: ignore[arg-type]
                for s in range(20)
            ]
        )
    )


def scenarios() -> list[tuple[str, str, float | None, Callable[[int], dict[str, object]]]]:
    knife = {"base_rate": KNIFE}
    return [
        (
            "staggered starts, effects by cohort growing over a year (knife-sized)",
            "event",
            _mean_truth(effect=STAGGERED_EFFECT, **knife),
            _event(effect=STAGGERED_EFFECT, **knife),
        ),
        ("staggered starts, null (knife-sized)", "event", None, _event(effect=0.0, **knife)),
        (
            "staggered starts, null (homicide-sized)",
            "event",
            None,
            _event(effect=0.0, base_rate=HOMICIDE),
        ),
        (
            "starts just after a borough's peak, no effect (knife-sized)",
            "event",
            None,
            _event(after_peak=True, **knife),
        ),
        ("ITS, AR(1) rho 0.5, null (knife-sized)", "its", None, _its(rho=0.5, base=150)),
        ("ITS, AR(1) rho 0.8, null (knife-sized)", "its", None, _its(rho=0.8, base=150)),
        ("ITS, AR(1) rho 0.5, null (homicide-sized)", "its", None, _its(rho=0.5, base=10)),
        (
            "ITS, AR(1) rho 0.5, level change -0.15 (knife-sized)",
            "its",
            -0.15,
            _its(rho=0.5, base=150, level=-0.15),
        ),
        (
            "ITS, AR(1) rho 0.8, level change -0.15 (knife-sized)",
            "its",
            -0.15,
            _its(rho=0.8, base=150, level=-0.15),
        ),
    ]


SCENARIOS = scenarios()


def main(panels: int = 50, only: str = "") -> None:
    print(f"{panels} panels per scenario (per-panel truth for coverage)\n")
    print(
        "| Scenario | Model | Truth | Panels | False positives | Coverage | Power | "
        "Association | No detectable | Not interpretable | Seconds per fit | "
        "Baseline: Newey-West alone, p < 0.05 |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, model, true, run in SCENARIOS:
        if only.lower() not in name.lower():
            continue
        began = time.perf_counter()
        outs = [run(1000 + seed) for seed in range(panels)]
        per_fit = (time.perf_counter() - began) / panels
        rejected = sum(1 for o in outs if o["p_value"] < 0.05) / panels  # type: ignore[operator]
        covered = [
            o["ci_low"] <= (o["true_effect"] or 0.0) <= o["ci_high"]  # type: ignore[operator]
            for o in outs
            if math.isfinite(o["ci_low"]) and math.isfinite(o["ci_high"])  # type: ignore[arg-type]
        ]
        shares = [
            sum(1 for o in outs if o["verdict"] == v) / panels
            for v in ("association", "no detectable association", "not interpretable")
        ]
        null = true is None
        print(
            f"| {name} | {model} | {'0' if null else f'{true:.3f}'} | {panels} | "
            f"{f'{100 * rejected:.1f}%' if null else '–'} | "
            f"{100 * sum(covered) / max(len(covered), 1):.1f}% | "
            f"{'–' if null else f'{100 * rejected:.1f}%'} | "
            + " | ".join(f"{100 * s:.1f}%" for s in shares)
            + f" | {per_fit:.2f} | "
            + (
                f"{100 * sum(1 for o in outs if o['baseline_p_value'] < 0.05) / panels:.1f}% |"  # type: ignore[operator]
                if "baseline_p_value" in outs[0]
                else "– |"
            )
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50, sys.argv[2] if len(sys.argv) > 2 else "")
