"""``vru programmes``, ``vru funding-streams``, ``vru import deliveries``, ``vru export
deliveries`` and ``vru months``: staff data entry from the command line.

The ``import`` and ``export`` groups are shared with other areas (outcome imports attach their
commands to the same groups), so each is created here only if no other module created it first.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from registry import deliveries, programmes
from registry.cli import Context, cli, echo_rows, echo_table, pass_ctx, shared_group
from registry.cli.params import MONTH, dry_run_option, json_option
from registry.files import write_table
from registry.numbers import count
from registry.uploads import template_frame

import_group = shared_group("import", "Load data files into the registry (validated first).")
export_group = shared_group("export", "Write registry data to CSV or XLSX files.")


def _date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date in the form YYYY-MM-DD.") from None


# --- funding streams and programmes ------------------------------------------------------------


@cli.group("funding-streams")
def funding_streams_group() -> None:
    """Funding streams (who pays for programmes)."""


@funding_streams_group.command("add")
@click.argument("name")
@click.option("--funder", required=True, help="Who provides the money.")
@pass_ctx
def funding_streams_add(obj: Context, name: str, funder: str) -> None:
    """Add a funding stream NAME paid for by --funder."""
    with obj.session() as (session, principal):
        stream = programmes.add_funding_stream(
            session, principal=principal, name=name, funder=funder
        )
        added = f"Added funding stream {stream.name} ({stream.funder})."
    click.echo(added)  # after the commit: "Added" is said only once it is true


@funding_streams_group.command("list")
@json_option()
@pass_ctx
def funding_streams_list(obj: Context, as_json: bool) -> None:
    """List funding streams with their funder and number of programmes."""
    with obj.session() as (session, principal):
        rows = programmes.list_funding_streams(session, principal=principal)
    echo_rows(
        rows,
        {"name": "Funding stream", "funder": "Funder", "programmes": "Programmes"},
        as_json=as_json,
        empty="No funding streams to list.",
    )


@cli.group("programmes")
def programmes_group() -> None:
    """Programmes: add, list, close."""


@programmes_group.command("add")
@click.argument("name")
@click.option("--funding-stream", required=True, metavar="NAME", help="Its funding stream.")
@click.option("--partner", help="The delivery partner.")
@click.option("--start", metavar="YYYY-MM-DD", help="Start date (default: today).")
@click.option("--end", metavar="YYYY-MM-DD", help="End date, if known.")
@click.option("--intervention-type", help="For example mentoring, sport, A&E navigators.")
@click.option("--age-min", type=click.IntRange(0, 120), help="Youngest age served.")
@click.option("--age-max", type=click.IntRange(0, 120), help="Oldest age served.")
@pass_ctx
def programmes_add(
    obj: Context,
    name: str,
    funding_stream: str,
    partner: str | None,
    start: str | None,
    end: str | None,
    intervention_type: str | None,
    age_min: int | None,
    age_max: int | None,
) -> None:
    """Add a programme NAME (names are unique)."""
    with obj.session() as (session, principal):
        programme = programmes.add_programme(
            session,
            principal=principal,
            name=name,
            funding_stream=funding_stream,
            partner=partner,
            start=_date(start),
            end=_date(end),
            intervention_type=intervention_type,
            age_min=age_min,
            age_max=age_max,
        )
        added = f"Added programme {programme.name} (from {programme.start_date})."
    click.echo(added)


@programmes_group.command("close")
@click.argument("name")
@click.option("--end", required=True, metavar="YYYY-MM-DD", help="Its last day.")
@pass_ctx
def programmes_close(obj: Context, name: str, end: str) -> None:
    """Close programme NAME: it accepts no deliveries after --end."""
    end_date = _date(end)
    assert end_date is not None
    with obj.session() as (session, principal):
        programme = programmes.close_programme(
            session, principal=principal, name=name, end=end_date
        )
        click.echo(f"{programme.name} closes on {programme.end_date}.")


@programmes_group.command("list")
@json_option()
@pass_ctx
def programmes_list(obj: Context, as_json: bool) -> None:
    """List programmes with their funding stream, dates and status."""
    with obj.session() as (session, principal):
        rows = programmes.list_programmes(session, principal=principal)
    echo_rows(
        rows,
        {
            "name": "Programme",
            "funding_stream": "Funding stream",
            "dates": "Dates",
            "status": "Status",
        },
        as_json=as_json,
        empty="No programmes to list.",
        shown=[r | {"dates": f"{r['start_date']} to {r['end_date'] or 'open'}"} for r in rows],
    )


# --- deliveries --------------------------------------------------------------------------------


@import_group.command("deliveries")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@dry_run_option
@json_option("Print the summary as one JSON object.")
@click.option(
    "--template",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Write the upload template to PATH (.csv or .xlsx) and stop.",
)
@click.option(
    "--received-on",
    metavar="YYYY-MM-DD",
    callback=lambda _c, _p, v: _date(v),
    help="The day these returns reached the VRU (default today); later than due is late.",
)
@click.option(
    "--backfill",
    is_flag=True,
    help="Past figures loaded as history, not returns: never counted as late.",
)
@pass_ctx
def import_deliveries(
    obj: Context,
    file: Path | None,
    dry_run: bool,
    as_json: bool,
    template: Path | None,
    received_on: dt.date | None,
    backfill: bool,
) -> None:
    """Validate a CSV or XLSX of deliveries and, if every row is valid, save it in one go.

    Exits 1, writing nothing, when any row is rejected.
    """
    if template is not None:
        write_table(template_frame(), template)
        click.echo(f"Wrote the upload template to {template}.")
        return
    if file is None:
        raise click.UsageError("Give the FILE to import (or --template PATH).")
    content = file.read_bytes()
    with obj.session() as (session, principal):
        result = deliveries.import_file(
            session,
            principal=principal,
            content=content,
            file_name=file.name,
            dry_run=dry_run,
            received_on=received_on,
            backfill=backfill,
        )
    # The keys, plus "refused": the file itself was refused, so no row was read.
    summary = result.summary() | {"refused": result.refused}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        _echo_import_summary(result, summary, dry_run)
    if not result.ok:
        raise SystemExit(1)


def _echo_import_summary(
    result: deliveries.Preview, summary: dict[str, Any], dry_run: bool
) -> None:
    added, amended, unchanged = summary["added"], summary["amended"], summary["unchanged"]
    if result.refused:
        click.echo("File refused:", err=True)
    elif not result.ok:
        click.echo(
            f"Would add {added}, amend {amended}, leave {unchanged} unchanged; "
            f"{summary['rejected']} row(s) rejected."
        )
    elif not added and not amended:
        click.echo("Nothing to change.")
    elif dry_run:
        click.echo(f"Would add {added}, amend {amended}, leave {unchanged} unchanged.")
    else:
        click.echo(f"Added {added}, amended {amended}, left {unchanged} unchanged.")
    for p in result.problems:
        where = f"row {p.row}" if p.row is not None else "file"
        column = f", {p.column}" if p.column else ""
        value = f" {p.value!r}" if p.value else ""
        click.echo(f"  {where}{column}:{value} {p.reason}", err=True)
    for w in result.warnings:
        click.echo(f"  warning, row {w.row}: {w.reason}")
    if not result.ok:
        click.echo("Nothing was written.", err=True)


@export_group.command("deliveries")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_ctx
def export_deliveries(obj: Context, file: Path) -> None:
    """Write every delivery to FILE (.csv or .xlsx) in the upload template's columns."""
    with obj.session() as (session, principal):
        frame = deliveries.export_frame(session, principal=principal)
    write_table(frame, file)
    click.echo(f"Wrote {len(frame):,} deliveries to {file}.")


# --- months ------------------------------------------------------------------------------------


@cli.group("months")
def months_group() -> None:
    """Sign delivery months off (admins) and see which returns are missing or late."""


@months_group.command("sign-off")
@click.argument("month", type=MONTH)
@click.option("--note", help="A note kept with the sign-off.")
@pass_ctx
def months_sign_off(obj: Context, month: dt.date, note: str | None) -> None:
    """Sign MONTH (YYYY-MM) off: its figures then change only after it is reopened."""
    with obj.session() as (session, principal):
        counts = deliveries.month_returns(session, principal=principal, month=month)
        deliveries.sign_off_month(session, principal=principal, month=month, note=note)
    missing = counts["missing"] + counts["not yet due"]
    expected = sum(counts.values())
    click.echo(
        f"{month:%Y-%m} is signed off"
        + (
            f" with {count(missing)} of {count(expected)} expected returns missing."
            if missing
            else "."
        )
    )


@months_group.command("reopen")
@click.argument("month", type=MONTH)
@click.option("--reason", required=True, help="Why it is reopened (kept in the audit trail).")
@pass_ctx
def months_reopen(obj: Context, month: dt.date, reason: str) -> None:
    """Reopen a signed-off MONTH (YYYY-MM) so its figures can change."""
    with obj.session() as (session, principal):
        deliveries.reopen_month(session, principal=principal, month=month, reason=reason)
    click.echo(f"{month:%Y-%m} is open again.")


@months_group.command("missing")
@click.option("--from", "start", required=True, type=MONTH)
@click.option("--to", "end", required=True, type=MONTH)
@pass_ctx
def months_missing(obj: Context, start: dt.date, end: dt.date) -> None:
    """List delivery returns that are missing or late between two months (YYYY-MM)."""
    with obj.session() as (session, principal):
        frame = deliveries.completeness(session, principal=principal, start=start, end=end)
        silent = deliveries.never_reported(session, principal=principal, start=start, end=end)
    gaps = frame[frame["status"].isin(["missing", "late"])]
    if len(gaps):
        echo_table(
            gaps.to_dict(orient="records"),
            {
                "month": "Month",
                "programme": "Programme",
                "borough": "Borough",
                "status": "Status",
                "due": "Due",
                "received": "Received",
            },
            empty="",
        )
    click.echo(
        f"{count((gaps['status'] == 'missing').sum())} missing, "
        f"{count((gaps['status'] == 'late').sum())} late."
    )
    if silent:
        click.echo(
            f"Not counted: {', '.join(silent)} ran in this period but never reported a delivery, "
            "so no borough's return is expected of them yet."
        )
