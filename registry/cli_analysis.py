"""``vru trend`` and ``vru analyse``: parse the arguments, call the analysis engine, print."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from registry.analysis.models import OVERDISPERSION_THRESHOLD
from registry.analysis.result import ModelResult, TrendChange
from registry.analysis.run import MODELS, VRU_START, run_model
from registry.analysis.trends import TrendReport, trend_report
from registry.cli import Context, cli, pass_ctx
from registry.cli_types import MEASURE, MONTH, period
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
    click.echo(
        f"  change {d['change_pct']:+.1f}% (95% exact interval {d['ci_low']:+.1f}% to "
        f"{d['ci_high']:+.1f}%; p = {change.p_value:.3g})"
    )


def _print_sensitivity(report: TrendReport) -> None:
    if report.boroughs is not None:
        changed = report.boroughs[report.boroughs["significant"]]
        names = ", ".join(f"{r.borough} ({100 * r.change:+.1f}%)" for r in changed.itertuples())
        tested = int(report.boroughs["tested"].sum())
        click.echo(
            f"Boroughs whose change is significant after Holm's correction for "
            f"{tested} tests: {names or 'none'}"
        )
        untested = report.boroughs.loc[~report.boroughs["tested"], "borough"]
        if len(untested):
            click.echo(f"Not tested, a window only partly stored: {', '.join(untested)}.")
    table = report.sensitivity
    if table.empty:
        return
    click.echo("Baseline sensitivity (the same current window against other baselines):")
    for row in table.itertuples():
        click.echo(
            f"  {row.window_months:>2} months to {format_month(row.current_end)} vs "
            f"{format_month(row.baseline_start)} to {format_month(row.baseline_end)}: "
            f"{row.current_count:,} vs {row.baseline_count:,}, {100 * row.change:+.1f}% "
            f"({100 * row.ci_low:+.1f}% to {100 * row.ci_high:+.1f}%)"
        )


@cli.command("trend")
@click.option("--measure", required=True, type=MEASURE, help="Outcome measure code, e.g. homicide.")
@click.option("--end", required=True, type=MONTH, help="Last month of the current window.")
@click.option(
    "--baseline-end", required=True, type=MONTH, help="Last month of the baseline window."
)
@click.option("--window", default=12, show_default=True, type=click.IntRange(1, 240))
@click.option("--borough", metavar="B", help="One borough (name or GSS code); default London.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
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


def _print_model(result: ModelResult) -> None:
    click.echo(
        f"{result.model} model of {result.outcome}: {result.term} = {result.estimate:.4g} "
        f"(95% CI {result.ci_low:.4g} to {result.ci_high:.4g}; SE {result.std_error:.3g}; "
        f"p = {result.p_value:.3g})"
    )
    click.echo(
        f"  {result.n_obs:,} observations, {result.n_areas} boroughs, {result.n_periods} periods"
    )
    extra = result.extra
    if "irr" in extra:
        click.echo(
            f"  incidence rate ratio per extra opportunity per 1,000 young people: "
            f"{extra['irr']:.4f} ({extra['irr_ci_low']:.4f} to {extra['irr_ci_high']:.4f})"
        )
    _print_dispersion(result.diagnostics)
    if "slope_change" in extra:
        click.echo(
            f"  slope change per period: {extra['slope_change']:.4g} "
            f"({extra['slope_change_ci_low']:.4g} to {extra['slope_change_ci_high']:.4g}) "
            f"at {format_month(extra['interruption'])}"
        )
    if "permutation_p_value" in extra:
        click.echo(
            f"  permutation p = {extra['permutation_p_value']:.3g} "
            f"({extra['permutations']} shuffles)"
        )
    if "lead_placebo" in extra:
        placebo = extra["lead_placebo"]
        click.echo(
            f"  lead placebo {placebo['estimate']:.4g} "
            f"({placebo['ci_low']:.4g} to {placebo['ci_high']:.4g})"
        )
    for key in ("permutation", "lead_placebo"):
        if key in result.diagnostics:
            click.echo(f"  {result.diagnostics[key]}")
    if "coefficients" in extra:
        click.echo(f"  pre-trend p = {extra['pre_trend_p_value']:.3g}; by period from delivery:")
        for c in extra["coefficients"]:
            click.echo(
                f"    {c['relative_period']:>4}: {c['estimate']:9.4g} "
                f"({c['ci_low']:.4g} to {c['ci_high']:.4g})"
            )
    click.echo("Caveats:")
    for caveat in result.caveats:
        click.echo(f"  - {caveat}")


@cli.command("analyse")
@click.option("--outcome", required=True, type=MEASURE, help="Outcome measure code.")
@click.option("--model", "model", required=True, type=click.Choice(MODELS))
@click.option("--lag", default=1, show_default=True, type=click.IntRange(0, 60))
@click.option("--from", "start", type=MONTH, help="First month of outcomes to use.")
@click.option("--to", "end", type=MONTH, help="Last month of outcomes to use.")
@click.option("--programme", metavar="P", help="Only this programme's delivery (event: required).")
@click.option(
    "--at",
    type=MONTH,
    default=format_month(VRU_START),
    show_default=True,
    help="Interruption month for --model its.",
)
@click.option(
    "--by",
    "frequency",
    type=period("month", "quarter"),
    default="month",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (numbers at full precision).")
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
    frequency: str,
    as_json: bool,
) -> None:
    """Relate delivery to an outcome with a statsmodels model; prints estimates and caveats."""
    with obj.session() as (session, principal):
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
            frequency=frequency,
        )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _print_model(result)
