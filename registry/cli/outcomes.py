"""`vru import crime|population`, `vru outcomes ...`, `vru population export`, `vru measures ...`.

Each command parses its arguments and calls one function in :mod:`registry.outcomes`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click
import pandas as pd

from registry.cli import Context, cli, echo_rows, echo_table, pass_ctx, shared_group
from registry.cli.params import MEASURE, MONTH, dry_run_option, json_option
from registry.denominators import rate_unit
from registry.files import csv_bytes
from registry.outcomes import formats, mapping, measures, sources, store
from registry.outcomes.common import Source

import_group = shared_group(
    "import", "Load files into the registry (each validated first, then one transaction)."
)


def _sources(
    paths: tuple[Path, ...], rule: formats.FolderRule | None
) -> tuple[list[Source], list[str]]:
    """Files as given, and the names of files a folder held that were left out.

    A folder stands for the CSV and XLSX files in it, in name order; for a format with a folder
    rule (police-uk: ``*-street.csv``) only those the rule takes.
    """
    files: list[Path] = []
    ignored: list[str] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in {".csv", ".xlsx"}
            )
            if rule is not None:
                ignored += [p.name for p in found if not rule.takes(p.name)]
                found = [p for p in found if rule.takes(p.name)]
                if not found:
                    raise click.UsageError(f"{path} holds no {rule.files}.")
            if not found:
                raise click.UsageError(f"{path} holds no .csv or .xlsx files.")
            files += found
        else:
            files.append(path)
    return [Source.from_path(p) for p in files], ignored


def _release(report: store.ImportReport) -> str:
    """The release date as the preview shows it, saying whether it was inferred."""
    if report.release_date is None:
        return "none (the file holds no counts)"
    how = (
        " (inferred from the file; give --release-date if wrong)" if report.release_inferred else ""
    )
    return f"{report.release_date.isoformat()}{how}"


def _print_report(
    report: store.ImportReport, as_json: bool, ignored: list[str] | None = None, taken: str = ""
) -> None:
    """``ignored``: files a folder held that the format's folder rule (files ``taken``) left."""
    if as_json:
        shown = report.as_json()
        if ignored:
            ignored_key = f"files in the folder that are not {taken} (ignored)"
            shown["skipped"] = shown["skipped"] | {ignored_key: len(ignored)}
        click.echo(json.dumps(shown))
        return
    if ignored:
        click.echo(f"Ignored {len(ignored)} file(s) that are not {taken}: {', '.join(ignored)}")
    verb = "Would write" if report.dry_run else "Wrote"
    where = f" (layout: {report.layout})" if report.layout else ""
    if report.already_imported:
        click.echo(
            f"{report.file_name}: already imported as batch {report.batch} with the same "
            f"figures; nothing changed ({report.unchanged:,} counts unchanged)."
        )
        return
    batch = f"batch {report.batch}: " if report.batch else ""
    click.echo(
        f"{batch}{report.file_name}{where}: {report.rows_read:,} rows read; {verb.lower()} "
        f"{report.counts_written:,} counts ({report.revised:,} revised), "
        f"{report.unchanged:,} unchanged."
    )
    if report.source:
        click.echo(f"  source: {report.source}; release: {_release(report)}")
    if report.kept_newer:
        click.echo(
            f"  kept {report.kept_newer:,} counts from a newer {report.source} release (this "
            "file's older values are kept as history: `vru outcomes revisions`)"
        )
    for area, n in report.unallocated.items():
        click.echo(f"  London unallocated ({area}): {n:,} rows")
    for reason, n in report.skipped.items():
        click.echo(f"  skipped ({reason}): {n:,} rows")
    if report.unmapped:
        click.echo(
            "  unmapped categories (skipped; map them with `vru measures mapping set`): "
            + "; ".join(report.unmapped)
        )
    if report.dry_run:
        click.echo("Dry run: nothing was written.")


@import_group.command("crime")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(formats.CRIME_FORMATS),
    help=f"{formats.choices_help('crime')}.",
)
@click.option("--release", metavar="LABEL", help="The publisher's release, e.g. 'MPS 2025-01'.")
@click.option(
    "--release-date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="The day the publisher released the files. Default: inferred (a Met Historical "
    "borough file's last month plus 24; otherwise the last month the file holds).",
)
@dry_run_option
@json_option("Print the report as JSON.")
@pass_ctx
def import_crime(
    obj: Context,
    files: tuple[Path, ...],
    fmt: str,
    release: str | None,
    release_date: dt.datetime | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Import crime counts (admins). A refused file writes nothing and exits 1.

    Counts are stored under their source (the format); a count from an older release never
    replaces one from a newer release of the same source, whatever the import order.
    """
    rule = formats.crime_format(fmt).folder
    files_in, ignored = _sources(files, rule)
    with obj.session() as (session, principal):
        reports = store.import_crime(
            session,
            principal=principal,
            sources=files_in,
            fmt=fmt,
            release=release,
            release_date=release_date.date() if release_date else None,
            dry_run=dry_run,
        )
    for report in reports:
        _print_report(report, as_json, ignored, rule.pattern if rule else "")


@import_group.command("population")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(formats.POPULATION_FORMATS),
    help=f"{formats.choices_help('population')}; recognised from the header when left out.",
)
@click.option(
    "--year",
    type=click.IntRange(1900, 2200),
    help="Year of an ONS file (needed unless the file name holds it, as in ONS2020_...).",
)
@dry_run_option
@json_option("Print the report as JSON.")
@pass_ctx
def import_population(
    obj: Context, file: Path, fmt: str | None, year: int | None, dry_run: bool, as_json: bool
) -> None:
    """Import population by borough, year and age band (admins)."""
    fmt = fmt or store.detect_population_format(Source.from_path(file))
    with obj.session() as (session, principal):
        report = store.import_population(
            session,
            principal=principal,
            source=Source.from_path(file),
            fmt=fmt,
            year=year,
            dry_run=dry_run,
        )
    _print_report(report, as_json)


# --- outcomes and population -------------------------------------------------------------------


@cli.group("outcomes")
def outcomes_group() -> None:
    """Stored crime outcome counts, their imports and revisions."""


@outcomes_group.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--measure", type=MEASURE, help="Only this measure (see `vru measures list`).")
@click.option(
    "--include-unallocated",
    is_flag=True,
    help="Add London unallocated rows, with borough 'London (unallocated: <name>)'.",
)
@click.option(
    "--source",
    type=click.Choice(sources.SOURCES),
    help="Write this source's counts instead of each measure's source of record.",
)
@pass_ctx
def outcomes_export(
    obj: Context, file: Path, measure: str | None, include_unallocated: bool, source: str | None
) -> None:
    """Write stored borough counts as CSV: measure,borough,month,count.

    Each measure's source of record (see `vru outcomes sources`) unless --source is given.
    """
    with obj.session() as (session, principal):
        frame = store.export_outcomes(
            session,
            principal=principal,
            measure=measure,
            include_unallocated=include_unallocated,
            source=source,
        )
    file.write_bytes(csv_bytes(frame))
    which = f"{source} counts" if source else "counts of record"
    click.echo(f"Wrote {len(frame):,} {which} to {file}.")


@outcomes_group.command("sources")
@click.option("--measure", type=MEASURE, help="Only this measure (see `vru measures list`).")
@json_option()
@pass_ctx
def outcomes_sources(obj: Context, measure: str | None, as_json: bool) -> None:
    """List the sources holding counts for each measure, marking its source of record."""
    with obj.session() as (session, principal):
        rows = sources.list_sources(session, principal=principal, measure=measure)
    echo_rows(
        rows,
        {
            "measure": "Measure",
            "source": "Source",
            "record": "Of record",
            "rank": "Order",
            "counts": "Counts",
            "first_month": "From",
            "last_month": "To",
            "latest_release": "Latest release",
        },
        as_json=as_json,
        empty="No outcome counts are stored.",
        shown=[r | {"record": "yes" if r["of_record"] else ""} for r in rows],
    )


@outcomes_group.command("compare")
@click.option("--measure", required=True, type=MEASURE, help="The measure to compare.")
@click.option(
    "--source",
    "compared",
    required=True,
    multiple=True,
    type=click.Choice(sources.SOURCES),
    help="A source; give exactly two.",
)
@click.option(
    "--include-missing", is_flag=True, help="Also list borough-months only one source holds."
)
@json_option()
@pass_ctx
def outcomes_compare(
    obj: Context, measure: str, compared: tuple[str, ...], include_missing: bool, as_json: bool
) -> None:
    """List the borough-months where two sources' counts of a measure differ."""
    if len(compared) != 2:
        raise click.UsageError(
            "Give --source exactly twice, e.g. --source mps-borough --source police-uk."
        )
    first, second = compared
    with obj.session() as (session, principal):
        frame = sources.compare_sources(
            session,
            principal=principal,
            measure=measure,
            first=first,
            second=second,
            include_missing=include_missing,
        )
    rows = [
        {k: (None if pd.isna(v) else v) for k, v in r.items()} for r in frame.to_dict("records")
    ]
    if as_json:
        click.echo(json.dumps(rows, default=int, indent=2))
        return
    echo_table(
        rows,
        {c: c for c in frame.columns},
        empty=f"{first} and {second} agree on every borough-month of {measure} both hold "
        "(or they hold none in common).",
    )
    if rows:
        click.echo(f"{len(rows):,} borough-months differ.")


@outcomes_group.command("batches")
@click.option("--kind", type=click.Choice(["crime", "population", "seed"]), help="Only this kind.")
@json_option()
@pass_ctx
def outcomes_batches(obj: Context, kind: str | None, as_json: bool) -> None:
    """List imports of outcome and population data, newest first."""
    with obj.session() as (session, principal):
        rows = store.list_batches(session, principal=principal, kind=kind)
    echo_rows(
        rows,
        {
            "batch": "Batch",
            "created_at": "Loaded",
            "kind": "Kind",
            "format": "Format",
            "release": "Release",
            "release_date": "Release date",
            "file_name": "File",
            "rows_read": "Rows read",
            "revised": "Revised",
        },
        as_json=as_json,
        empty="No imports of outcome or population data yet.",
    )


@outcomes_group.command("revisions")
@click.option("--batch", type=int, help="Only revisions made by this import batch.")
@json_option()
@pass_ctx
def outcomes_revisions(obj: Context, batch: int | None, as_json: bool) -> None:
    """List counts a newer release changed, with the earlier value and its release."""
    with obj.session() as (session, principal):
        rows = store.list_revisions(session, principal=principal, batch=batch)
    echo_rows(
        rows,
        {
            "measure": "Measure",
            "source": "Source",
            "area": "Area",
            "month": "Month",
            "old_count": "Was",
            "old_release": "Old release",
            "old_release_date": "Released",
            "new_count": "Now",
            "new_release": "New release",
            "new_release_date": "Released",
        },
        as_json=as_json,
        empty="No stored count has been revised by a newer release.",
    )


@cli.group("population")
def population_group() -> None:
    """Stored population by borough, year and age band."""


@population_group.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_ctx
def population_export(obj: Context, file: Path) -> None:
    """Write stored population as CSV: borough_code,borough,year,age_band,people."""
    with obj.session() as (session, principal):
        frame = store.export_population(session, principal=principal)
    file.write_bytes(csv_bytes(frame))
    click.echo(f"Wrote {len(frame):,} rows to {file}.")


# --- measures and mapping ----------------------------------------------------------------------


@cli.group("measures")
def measures_group() -> None:
    """Outcome measures, their series breaks and which source categories feed them."""


@measures_group.command("list")
@json_option()
@pass_ctx
def measures_list(obj: Context, as_json: bool) -> None:
    """List outcome measures with their definitions, series breaks and source order (the source
    of record, the one users see, is the first in the order holding counts)."""
    with obj.session() as (session, principal):
        rows = measures.list_measures(session, principal=principal)
    echo_rows(
        rows,
        {
            "code": "Code",
            "label": "Measure",
            "unit": "Unit",
            "population_band": "Rates per",
            "record": "Source of record",
            "order": "Source order",
            "break_notes": "Series breaks",
        },
        as_json=as_json,
        empty="No outcome measures.",
        shown=[
            m
            | {
                "break_notes": "; ".join(f"{b['month']}: {b['note']}" for b in m["breaks"]),
                "order": ", ".join(m["source_order"]),
                "record": m["source_of_record"] or "",
            }
            for m in rows
        ],
    )


@measures_group.command("add")
@click.argument("code", type=MEASURE)
@click.option("--label", required=True, help="Short name shown on pages.")
@click.option("--definition", required=True, help="What is counted, in words.")
@click.option("--unit", default="offences", show_default=True, help="offences, victims, ...")
@click.option("--source", help="Publisher and dataset.")
@click.option(
    "--population-band",
    default="all ages",
    show_default=True,
    help="Who its rate is per: 'all ages' (residents) or ages such as '1-24'.",
)
@pass_ctx
def measures_add(
    obj: Context,
    code: str,
    label: str,
    definition: str,
    unit: str,
    source: str | None,
    population_band: str,
) -> None:
    """Add an outcome measure (admins)."""
    with obj.session() as (session, principal):
        measures.add_measure(
            session,
            principal=principal,
            code=code,
            label=label,
            definition=definition,
            unit=unit,
            source=source,
            population_band=population_band,
        )
    click.echo(
        f"Added measure {code}; map source categories to it with `vru measures mapping set`."
    )


@measures_group.command("band")
@click.argument("code")
@click.argument("band")
@pass_ctx
def measures_band(obj: Context, code: str, band: str) -> None:
    """Set who CODE's rate is per: 'all ages' or ages such as '1-24' (admins)."""
    with obj.session() as (session, principal):
        measure = measures.set_population_band(session, principal=principal, code=code, band=band)
        unit = rate_unit(measure.population_band)
    click.echo(
        f"{code} rates are now {unit}; if no population file with that band is loaded, "
        "import the single-year-of-age estimates again (`vru import population`)."
    )


@measures_group.command("add-break")
@click.argument("code", type=MEASURE)
@click.argument("month", type=MONTH)
@click.argument("note")
@pass_ctx
def measures_add_break(obj: Context, code: str, month: dt.date, note: str) -> None:
    """Record a dated break in a measure's series (admins)."""
    with obj.session() as (session, principal):
        measures.add_break(session, principal=principal, code=code, month=month, note=note)
    click.echo(f"Recorded a break in {code} from {month:%Y-%m}.")


@measures_group.command("source")
@click.argument("code", metavar="MEASURE")
@click.argument("order", nargs=-1, required=True, metavar="SOURCE...")
@pass_ctx
def measures_source(obj: Context, code: str, order: tuple[str, ...]) -> None:
    """Set MEASURE's source order, most preferred first (admins; audited).

    The first source in the order holding counts is the measure's source of record, the one
    pages, trends, models, exports and funder summaries use. Sources not named are never of
    record for it. police-uk cannot come before a Met source.
    """
    with obj.session() as (session, principal):
        result = sources.set_source_order(session, principal=principal, code=code, order=order)
    record = result["source_of_record"] or "none (no source in the order holds counts)"
    click.echo(f"{code}: source order {', '.join(result['source_order'])}; of record: {record}.")


@measures_group.group("mapping")
def mapping_group() -> None:
    """Which source category feeds which measure (defaults shipped, admin overrides)."""


@mapping_group.command("list")
@click.option(
    "--format", "fmt", type=click.Choice(formats.MAPPED_FORMATS), help="Only this format."
)
@json_option()
@pass_ctx
def mapping_list(obj: Context, fmt: str | None, as_json: bool) -> None:
    """List the category mapping in force (an empty measure means: feeds no measure)."""
    with obj.session() as (session, principal):
        rows = mapping.list_mapping(session, principal=principal, source_format=fmt)
    echo_rows(
        rows,
        {
            "source_format": "Format",
            "source_category": "Source category",
            "measure": "Measure",
            "origin": "Set by",
        },
        as_json=as_json,
        empty="No categories are mapped.",
    )


@mapping_group.command("set")
@click.argument("source_format", type=click.Choice(formats.MAPPED_FORMATS))
@click.argument("category")
@click.argument("measure", type=MEASURE)
@pass_ctx
def mapping_set(obj: Context, source_format: str, category: str, measure: str) -> None:
    """Map CATEGORY of SOURCE_FORMAT files to MEASURE ('none': to no measure) (admins)."""
    target = None if measure.lower() == "none" else measure
    with obj.session() as (session, principal):
        row = mapping.set_mapping(
            session,
            principal=principal,
            source_format=source_format,
            source_category=category,
            measure=target,
        )
    click.echo(
        f"{source_format} {row.source_category!r} now feeds {row.measure or 'no measure'}; "
        "this applies to imports from now on."
    )
