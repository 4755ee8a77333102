"""``vru trend`` and ``vru analyse``: parse the arguments, call the analysis engine, print."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import click
import pandas as pd

from registry import numbers
from registry.analysis.estimators import OVERDISPERSION_THRESHOLD, event_study_percent
from registry.analysis.headline import UNIT
from registry.analysis.result import ModelResult, TrendChange
from registry.analysis.run import (
    HEADLINE,
    MODELS,
    VRU_START,
    model_series_breaks,
    run_model,
    run_specs,
)
from registry.analysis.synth import run_synth
from registry.analysis.trends import TrendReport, trend_report
from registry.cli import Context, cli, pass_ctx
from registry.cli.params import MEASURE, MONTH, json_option, period
from registry.periods import format_month


def _print_trend(change: TrendChange) -> None:
    d = change.to_dict()
    click.echo(
        f"{change.measure}, {change.area}: {d['current']['count']:,} in the {change.window_months} "
        f"months {d['current']['start']} to {d['current']['end']} against "
        f"{d['baseline']['count']:,} in {d['baseline']['start']} to {d['baseline']['end']}"
    )
    if change.area == "London":
        click.echo(
            f"  (London includes unallocated counts: {d['current']['unallocated']:,} now, "
            f"{d['baseline']['unallocated']:,} in the baseline)"
        )
    if not change.given:  # a part-stored window: the words, never a figure
        for window in (change.current, change.baseline):
            if not window.whole:
                click.echo(f"  {window.not_given()}")
        return
    click.echo(
        f"  change {d['change_pct']:+.1f}% (95% exact interval {d['ci_low']:+.1f}% to "
        f"{d['ci_high']:+.1f}%; p = {change.p_value:.3g})"
    )
    overdispersion = change.overdispersion_words()
    if overdispersion:
        click.echo(f"  {overdispersion}")


def _borough_change(row: Any) -> str:
    """A borough's change in percent; from a baseline of 0 it has no percentage."""
    if not math.isfinite(row.change):
        return f"{row.baseline:,} to {row.current:,}"
    return f"{100 * row.change:+.1f}%"


def _print_sensitivity(report: TrendReport) -> None:
    if report.boroughs is not None:
        table = report.boroughs
        tested = int(table["tested"].sum())
        for column, how in (
            ("significant", ""),
            ("od_significant", ", allowing for overdispersion"),
        ):
            changed = table[table[column]]
            names = ", ".join(f"{r.borough} ({_borough_change(r)})" for r in changed.itertuples())
            click.echo(
                f"Boroughs whose change is significant after Holm's correction for "
                f"{tested} tests{how}: {names or 'none'}"
            )
        untested = table[~table["tested"]]
        for reason, part in untested.groupby("not_tested_because", sort=False):
            click.echo(f"Not tested, {reason}: {', '.join(part['borough'])}.")
    table = report.sensitivity
    if table.empty:
        return
    click.echo("Baseline sensitivity (the same current window against other baselines):")
    for row in table.to_dict(orient="records"):
        click.echo(
            f"  {row['window_months']:>2} months to {format_month(row['current_end'])} vs "
            f"{format_month(row['baseline_start'])} to {format_month(row['baseline_end'])}: "
            f"{row['current_count']:,} vs {row['baseline_count']:,}, {100 * row['change']:+.1f}% "
            f"({100 * row['ci_low']:+.1f}% to {100 * row['ci_high']:+.1f}%)"
        )


@cli.command("trend")
@click.option("--measure", required=True, type=MEASURE, help="Outcome measure code, e.g. homicide.")
@click.option("--end", required=True, type=MONTH, help="Last month of the current window.")
@click.option(
    "--baseline-end", required=True, type=MONTH, help="Last month of the baseline window."
)
@click.option("--window", default=12, show_default=True, type=click.IntRange(1, 240))
@click.option("--borough", metavar="B", help="One borough (name or GSS code); default London.")
@json_option()
@pass_ctx
def trend(
    obj: Context,
    measure: str,
    end: dt.date,
    baseline_end: dt.date,
    window: int,
    borough: str | None,
    as_json: bool,
) -> None:
    """Change of a window's total against a baseline window, with an exact Poisson interval."""
    with obj.session() as (session, principal):
        report = trend_report(
            session,
            principal=principal,
            measure=measure,
            end=end,
            baseline_end=baseline_end,
            window=window,
            borough=borough,
        )
    change = report.change
    if as_json:
        click.echo(json.dumps(change.to_dict(), indent=2))
    else:
        _print_trend(change)
        _print_sensitivity(report)
    for caveat in change.caveats:
        click.echo(f"Note: {caveat}", err=True)


def _print_dispersion(diagnostics: dict[str, Any]) -> None:
    """A count model's dispersion, so a Poisson and a negative-binomial fit can be told apart."""
    if "pearson_chi2_per_df" not in diagnostics:
        return
    flagged = (
        f"overdispersion flagged (above {OVERDISPERSION_THRESHOLD:g})"
        if diagnostics["overdispersed"]
        else f"no overdispersion flagged (at most {OVERDISPERSION_THRESHOLD:g})"
    )
    click.echo(f"  Poisson Pearson chi2/df = {diagnostics['pearson_chi2_per_df']:.3f}: {flagged}")
    if "alpha" in diagnostics:
        click.echo(
            f"  negative binomial dispersion alpha = {diagnostics['alpha']:.4g} "
            f"(its Pearson chi2/df = {diagnostics['nb_pearson_chi2_per_df']:.3f})"
        )


def _print_effect(result: ModelResult) -> None:
    """The headline figure in words with its full interval, p-value, method and the smallest
    change the data could detect."""
    effect = result.extra.get("effect")
    if not effect:
        click.echo(
            f"{result.model} model of {result.outcome}: {result.term} = {result.estimate:.4g} "
            f"(95% interval {result.ci_low:.4g} to {result.ci_high:.4g}; p = {result.p_value:.3g})"
        )
        return
    percent = effect["scale"] == "percent"

    def fmt(value: float) -> str:
        return numbers.change(value) if percent else f"{value:+,.2f}"

    p = effect["p_value"]
    p_text = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
    click.echo(
        f"{effect['label']}: {fmt(effect['value'])} (95% interval {fmt(effect['ci_low'])} to "
        f"{fmt(effect['ci_high'])}; {p_text})"
    )
    if "ratio_words" in effect:
        click.echo(f"  That is {effect['ratio_words']}.")
    click.echo(
        f"  Smallest change detectable with 80% power: {fmt(-abs(effect['mde_fall']))} "
        f"(either way). Inference: {effect['inference']}."
    )


def _print_model(result: ModelResult) -> None:
    click.echo(result.verdict_text or "No verdict.")
    for check in result.checks:
        detail = check.detail[0].upper() + check.detail[1:]
        click.echo(f"  - {detail}" if check.passed else f"  - FAILED ({check.name}): {detail}")
    _print_effect(result)
    click.echo(
        f"  {result.n_obs:,} observations, {result.n_areas} boroughs, {result.n_periods} periods"
    )
    extra = result.extra
    if "rate_unit" in extra:
        click.echo(f"  outcome rates {extra['rate_unit']}; delivery per 1,000 aged 10-24")
    _print_dispersion(result.diagnostics)
    if "slope_change" in extra:
        click.echo(
            f"  slope change per year (log scale): {extra['slope_change']:.4g} "
            f"({extra['slope_change_ci_low']:.4g} to {extra['slope_change_ci_high']:.4g}) "
            f"at {format_month(extra['interruption'])}"
        )
    if "permutation_p_value" in extra:
        click.echo(
            f"  permutation p = {extra['permutation_p_value']:.3g} "
            f"({extra['permutations']} shuffles)"
        )
    for key in ("permutation", "lead_placebo"):
        if key in result.diagnostics:
            click.echo(f"  {result.diagnostics[key]}")
    if "coefficients" in extra:
        click.echo(
            f"  pre-trend p = {extra['pre_trend_p_value']:.3g}; % change in counts against "
            "the prediction, by period from first delivery (95% interval):"
        )
        for row in event_study_percent(extra["coefficients"]).itertuples(index=False):
            period, change, low, high = row[:4]
            click.echo(
                f"    {period:>4}: {numbers.change(change):>8} "
                f"({numbers.change(low)} to {numbers.change(high)})"
            )
    click.echo("Caveats:")
    for caveat in result.caveats:
        click.echo(f"  - {caveat}")


def _print_synth(result: ModelResult) -> None:
    """The verdict in words, then each treated borough's figures, donors and caveats."""
    click.echo(result.verdict_text)
    failed = [c for c in result.checks if not c.passed]
    for check in failed:
        click.echo(f"  failed check, {check.name}: {check.detail}")
    click.echo(f"  {len(result.checks) - len(failed)} of {len(result.checks)} checks passed.")
    for one in result.extra["boroughs"]:
        click.echo(
            f"{one['borough']} from {one['start']}: {100 * one['relative_gap']:+.1f}% against its "
            f"synthetic counterpart (placebo range {100 * one['ci_low']:+.1f}% to "
            f"{100 * one['ci_high']:+.1f}%; rank {one['rank']} of {one['placebos'] + 1}, "
            f"p = {one['p_value']:.2f}); about {one['gap_count_cumulative']:+,.0f} crimes in all"
        )
        click.echo(
            f"  pre-start RMSPE {one['pre_rmspe']:.2f}, post-start {one['post_rmspe']:.2f}; "
            "donors: " + ", ".join(f"{d['borough']} {d['weight']:.2f}" for d in one["donors"])
        )
    click.echo("Caveats:")
    for caveat in result.caveats:
        click.echo(f"  - {caveat}")


SPEC_HEADER = (
    f"{'Outcome':<44} {'Lag':>3} {'Change':>8} {'95% interval':>20} {'p':>7} {'Holm p':>7}  Verdict"
)


def _print_specs(table: pd.DataFrame) -> None:
    """The specification table as text, with a header, and how its p-values were adjusted."""
    click.echo(
        "Headline Poisson model, every outcome at lags 0-3; change in the rate (%) per extra "
        f"{UNIT} opportunities per 1,000 young people. Holm-adjusted p-values across all "
        f"{int(table['p_value'].notna().sum())} specifications."
    )
    click.echo(SPEC_HEADER)
    for row in table.to_dict(orient="records"):
        if isinstance(row["note"], str) and row["note"]:
            click.echo(f"{row['outcome'][:44]:<44} {row['lag']:>3}  not fitted: {row['note']}")
            continue
        interval = f"{numbers.change(row['ci_low_pct'])} to {numbers.change(row['ci_high_pct'])}"
        click.echo(
            f"{row['outcome'][:44]:<44} {row['lag']:>3} {numbers.change(row['change_pct']):>8} "
            f"{interval:>20} {row['p_value']:>7.3f} {row['holm_p_value']:>7.3f}  {row['verdict']}"
        )


@cli.command("analyse")
@click.option("--outcome", required=True, type=MEASURE, help="Outcome measure code.")
@click.option(
    "--model",
    "model",
    default=HEADLINE,
    show_default=True,
    type=click.Choice([*MODELS, "synth"]),
    help="poisson is the headline (multiplicative, borough and month effects); synth "
    "compares one borough with a synthetic one.",
)
@click.option("--lag", default=1, show_default=True, type=click.IntRange(0, 60))
@click.option("--from", "start", type=MONTH, help="First month of outcomes to use.")
@click.option("--to", "end", type=MONTH, help="Last month of outcomes to use.")
@click.option("--programme", metavar="P", help="Only this programme's delivery (event: required).")
@click.option(
    "--at",
    type=MONTH,
    default=format_month(VRU_START),
    show_default=True,
    help="Interruption month for --model its; the start month for --model synth.",
)
@click.option(
    "--borough",
    metavar="B",
    help="--model its: this borough's series, not London's. --model synth: the treated borough "
    "(name or GSS code); default every borough that delivered --programme, each from its own "
    "first month.",
)
@click.option(
    "--donor-threshold",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="--model synth: boroughs with at most this many opportunities of --programme in the "
    "period count as without it (donors).",
)
@click.option(
    "--by",
    "frequency",
    type=period("month", "quarter"),
    default="month",
    show_default=True,
)
@click.option(
    "--specs",
    is_flag=True,
    help="Every stored outcome at lags 0-3 with the headline model, Holm-adjusted p-values.",
)
@json_option("Print JSON (numbers at full precision).")
@pass_ctx
def analyse(
    obj: Context,
    outcome: str,
    model: str,
    lag: int,
    start: dt.date | None,
    end: dt.date | None,
    programme: str | None,
    at: dt.date,
    borough: str | None,
    donor_threshold: int,
    frequency: str,
    specs: bool,
    as_json: bool,
) -> None:
    """Relate delivery to an outcome; prints the verdict first, then estimates and caveats.

    With --specs, the specification table: every stored outcome (--outcome's rows first) at
    lags 0-3 with the headline model, so no lag is picked for looking best.
    """
    if specs:
        with obj.session() as (session, principal):
            table = run_specs(
                session,
                principal=principal,
                start=start,
                end=end,
                programme=programme,
                frequency=frequency,
                first=outcome,
            )
        if as_json:
            click.echo(table.to_json(orient="records", indent=2))
        else:
            _print_specs(table)
        return
    with obj.session() as (session, principal):
        if model == "synth":
            result = run_synth(
                session,
                principal=principal,
                outcome=outcome,
                borough=borough,
                at=at if borough else None,
                programme=programme,
                start=start,
                end=end,
                donor_threshold=donor_threshold,
            )
        else:
            result = run_model(
                session,
                principal=principal,
                outcome=outcome,
                model=model,
                lag=lag,
                start=start,
                end=end,
                programme=programme,
                at=at,
                borough=borough,
                frequency=frequency,
            )
        breaks = model_series_breaks(
            session, principal=principal, outcome=outcome, start=start, end=end
        )
    if as_json:
        out = result.to_dict() | {"series_breaks": [b.to_dict() for b in breaks]}
        click.echo(json.dumps(out, indent=2))
    elif model == "synth":
        _print_synth(result)  # its caveats already name the breaks
    else:
        _print_model(result)
        for brk in breaks:
            click.echo(f"Note: {brk.sentence()}")
