"""`vru report`: funder outcome summaries as CSV, XLSX or PDF."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from registry.cli import Context, cli, pass_ctx
from registry.cli.params import MONTH, period
from registry.errors import RegistryError
from registry.periods import Window
from registry.reports.build import Scope, build_report
from registry.reports.render import FORMATS, write


@cli.command("report")
@click.option("--funding-stream", help="Summarise this funding stream.")
@click.option("--programme", help="Summarise this programme.")
@click.option("--all", "everything", is_flag=True, help="Summarise every programme.")
@click.option(
    "--from",
    "start",
    type=MONTH,
    help="First month (default: the latest complete financial year).",
)
@click.option("--to", "end", type=MONTH, help="Last month.")
@click.option(
    "--by",
    "granularity",
    type=period("month", "quarter", "financial_year"),
    default="month",
    show_default=True,
    help="Periods of the delivery tables.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="File to write (csv: a folder, or a .zip of the tables).",
)
@click.option(
    "--threshold",
    type=click.IntRange(1, None),
    help="Hide participant counts below this: admins only, and never below the configured "
    "threshold (VRU_SUPPRESSION_THRESHOLD, default 10).",
)
@pass_ctx
def report(
    obj: Context,
    funding_stream: str | None,
    programme: str | None,
    everything: bool,
    start: dt.date | None,
    end: dt.date | None,
    granularity: str,
    fmt: str,
    out: Path,
    threshold: int | None,
) -> None:
    """Build an outcome summary for a funding stream, a programme or the whole VRU."""
    chosen = [s for s in (funding_stream and "fs", programme and "p", everything and "all") if s]
    if len(chosen) != 1:
        raise click.UsageError("Choose exactly one of --funding-stream, --programme or --all.")
    if bool(start) != bool(end):
        raise click.UsageError("Give both --from and --to, or neither.")
    suffix = out.suffix.lower()
    allowed = {"csv": {"", ".zip"}, "xlsx": {".xlsx"}, "pdf": {".pdf"}}[fmt]
    if suffix not in allowed:
        wanted = "a folder name or a .zip file" if fmt == "csv" else f"a .{fmt} file"
        raise click.UsageError(f"--format {fmt} writes {wanted}; --out {out} does not match.")
    if not out.parent.exists():
        raise RegistryError(f"The folder {out.parent} does not exist; create it first.")
    scope = (
        Scope("funding_stream", funding_stream)
        if funding_stream
        else Scope("programme", programme)
        if programme
        else Scope("all")
    )
    window = Window(start, end) if start and end else None
    with obj.session() as (session, principal):
        built = build_report(
            session,
            principal=principal,
            scope=scope,
            window=window,
            granularity=granularity,
            threshold=threshold,
        )
    paths = write(built, fmt, out)
    reached = built.headline["boroughs_reached"]
    click.echo(
        f"{built.scope.title()}, {built.window.label()}: {built.headline['opportunities']:,} "
        f"opportunities in {reached} borough{'' if reached == 1 else 's'}; data version "
        f"{built.data_version}. Wrote {', '.join(str(p) for p in paths)}."
    )
