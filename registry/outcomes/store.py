"""Compare parsed counts with the stored ones and write them in one transaction.

Counts are compared only with stored counts of the same source (registry.outcomes.sources):
a police.uk file never touches the Met's counts. Each count is *unchanged* (same value),
*new* (inserted), *revised* (a newer release changed it: the stored value is replaced and the
earlier one kept in ``outcome_revision`` with both releases' batches) or *kept* (the file is an
older release than the stored count's: the stored value stays and the older one is kept as
history). Releases are ordered by their release date, never by import order; of two imports of
the same release the later wins. Re-importing a file already imported with the same figures
writes nothing at all, not even a batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, aliased

from registry import audit, boroughs
from registry.auth import Principal, require, write_action
from registry.denominators import bands_needed
from registry.errors import RegistryError
from registry.outcomes.common import (
    ParsedCrime,
    ParsedPopulation,
    Progress,
    Source,
    header_of,
    no_progress,
    refuse,
)
from registry.outcomes.detect import describe, detect_columns
from registry.outcomes.formats import (
    POPULATION_FORMATS,
    ReadOptions,
    crime_format,
    of_kind,
    or_list,
    population_format,
)
from registry.outcomes.mapping import mapper_for
from registry.outcomes.measures import get_measure, measure_ids
from registry.outcomes.sources import check_order, infer_release, of_record, source_of_batch
from registry.periods import format_month
from registry.schema import (
    Borough,
    ImportBatch,
    OutcomeCount,
    OutcomeMeasure,
    OutcomeRevision,
    Population,
    UnallocatedCount,
)
from registry.untrusted import FileRefused, Limits, run_limited

T = TypeVar("T")

AUDIT_SAMPLE = 200
PREVIEW_ROWS = 500
RELEASE_MAX = 100


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    batch: int | None
    rows_read: int
    counts_written: int
    unchanged: int
    revised: int
    unallocated: dict[str, int]
    skipped: dict[str, int]
    unmapped: list[str]
    kept_newer: int = 0  # counts left as a newer release of the same source has them
    source: str | None = None
    release_date: dt.date | None = None
    release_inferred: bool = False
    file_name: str = ""
    format: str = ""
    layout: str | None = None
    dry_run: bool = False
    already_imported: bool = False
    changes: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The object ``--json`` prints, exactly as documented."""
        return {
            "batch": self.batch,
            "rows_read": self.rows_read,
            "counts_written": self.counts_written,
            "unchanged": self.unchanged,
            "revised": self.revised,
            "kept_newer": self.kept_newer,
            "source": self.source,
            "release_date": self.release_date.isoformat() if self.release_date else None,
            "unallocated": self.unallocated,
            "skipped": self.skipped,
            "unmapped": self.unmapped,
        }


def parse_crime(
    session: Session, sources: Sequence[Source], fmt: str, progress: Progress = no_progress
) -> list[ParsedCrime]:
    """Read crime files without writing anything; refuses the lot if any file is wrong.

    police.uk files are aggregated together (one force's LSOAs over the border add to another
    file's borough counts); the other formats give one result per file, in the order given.
    The files are read in a child process within the limits of :mod:`registry.untrusted`.
    """
    family = crime_format(fmt).mapping
    if not sources:
        raise RegistryError("No files to import.")
    options = ReadOptions(
        mapper=mapper_for(session, family) if family else None,
        measures=frozenset(measure_ids(session)),
    )
    return _limited(_parse_crime, list(sources), fmt, options, progress=progress)


def _limited(
    fn: Callable[..., T], sources: list[Source], *args: Any, progress: Progress | None
) -> T:
    names = ", ".join(s.name for s in sources)
    try:
        return run_limited(
            fn, sources, *args, limits=Limits.from_settings(), what=names, progress=progress
        )
    except FileRefused as exc:
        raise refuse(names, str(exc).rstrip(".")) from None


def _parse_crime(
    sources: list[Source], fmt: str, options: ReadOptions, progress: Progress = no_progress
) -> list[ParsedCrime]:
    """The reading half of :func:`parse_crime`, run in the child process (the format goes by
    its code: the table's readers are not picklable)."""
    return crime_format(fmt).parse(sources, options, progress)


@write_action("outcomes.import")
def import_crime(
    session: Session,
    *,
    principal: Principal,
    sources: Sequence[Source],
    fmt: str,
    release: str | None = None,
    release_date: dt.date | None = None,
    dry_run: bool = False,
    progress: Progress = no_progress,
) -> list[ImportReport]:
    """Validate every file, then store all of them in this one transaction (or, dry, nothing).

    ``release_date`` is the publisher's release the files belong to; without it each file's is
    inferred (:func:`registry.outcomes.sources.infer_release`).
    """
    release = (release or "").strip() or None
    if release is not None and len(release) > RELEASE_MAX:
        raise RegistryError(f"A release label has at most {RELEASE_MAX} characters.")
    if release_date is not None and release_date > dt.date.today():
        raise RegistryError(
            f"The release date {release_date.isoformat()} is in the future; give the day the "
            "publisher released the file."
        )
    parsed = parse_crime(session, sources, fmt, progress)
    return [
        _store_crime(
            session,
            p,
            principal=principal,
            release=release,
            release_date=release_date,
            dry_run=dry_run,
        )
        for p in parsed
    ]


def _nothing_to_write(
    session: Session, report: ImportReport, kind: str, sha256: str, dry_run: bool
) -> bool:
    """True when the import stops before writing: a dry run, or a file already imported.

    A re-import that changes nothing points the report at the earlier batch and writes no new one.
    """
    if dry_run:
        return True
    if report.counts_written == 0:
        earlier = _existing_batch(session, kind, sha256)
        if earlier is not None:
            report.batch = earlier
            report.already_imported = True
            return True
    return False


def _add_batch(
    session: Session,
    report: ImportReport,
    parsed: ParsedCrime | ParsedPopulation,
    *,
    kind: str,
    principal: Principal,
    rows_accepted: int,
    details: dict[str, Any],
    release_label: str | None = None,
    release_date: dt.date | None = None,
) -> ImportBatch:
    """Record the imported file as a new batch (its id set) and point ``report`` at it."""
    batch = ImportBatch(
        kind=kind,
        format=parsed.format,
        file_name=parsed.file_name,
        sha256=parsed.sha256,
        release_label=release_label,
        release_date=release_date,
        rows_read=parsed.rows_read,
        rows_accepted=rows_accepted,
        created_by=principal.username,
        details=details,
    )
    session.add(batch)
    session.flush()
    report.batch = batch.id
    return batch


def _existing_batch(session: Session, kind: str, sha256: str) -> int | None:
    return session.scalar(
        select(ImportBatch.id)
        .where(ImportBatch.kind == kind, ImportBatch.sha256 == sha256)
        .order_by(ImportBatch.id.desc())
        .limit(1)
    )


Key = TypeVar("Key", bound=tuple[Any, ...])


def _diff(
    incoming: dict[Key, int], stored: dict[Key, tuple[int, int, int]]
) -> tuple[list[tuple[Key, int]], list[tuple[Key, int, tuple[int, int, int]]], int]:
    """Incoming counts against stored (id, count, batch) by key: new, revised, and how many are
    unchanged."""
    new: list[tuple[Key, int]] = []
    revised: list[tuple[Key, int, tuple[int, int, int]]] = []
    unchanged = 0
    for key, count in incoming.items():
        old = stored.get(key)
        if old is None:
            new.append((key, count))
        elif old[1] == count:
            unchanged += 1
        else:
            revised.append((key, count, old))
    return new, revised, unchanged


Stored = dict[tuple[int, Any, dt.date], tuple[int, int, int, dt.date | None]]


@dataclass
class _CrimeDiff:
    """How incoming counts of one source compare with the stored ones (see the module doc)."""

    new: list[tuple[Any, int]] = field(default_factory=list)
    revised: list[tuple[Any, int, tuple[int, int, int, dt.date | None]]] = field(
        default_factory=list
    )
    kept: list[tuple[Any, int, tuple[int, int, int, dt.date | None]]] = field(default_factory=list)
    confirmed: list[int] = field(default_factory=list)  # same value, newer release: re-pointed
    unchanged: int = 0


def _diff_releases(
    incoming: dict[tuple[int, Any, dt.date], int], stored: Stored, release: dt.date | None
) -> _CrimeDiff:
    diff = _CrimeDiff()
    for key, count in incoming.items():
        old = stored.get(key)
        if old is None:
            diff.new.append((key, count))
            continue
        newer_stored = old[3] is not None and release is not None and old[3] > release
        if old[1] == count:
            diff.unchanged += 1
            if not newer_stored and old[3] != release:
                diff.confirmed.append(old[0])
        elif newer_stored:
            diff.kept.append((key, count, old))
        else:
            diff.revised.append((key, count, old))
    return diff


def _stored_counts(
    session: Session,
    table: type[OutcomeCount] | type[UnallocatedCount],
    area: Any,
    source: str,
    wanted: set[int],
    lo: dt.date,
    hi: dt.date,
) -> Stored:
    """The stored counts of ``source`` in the months and measures given, with their release."""
    rows = session.execute(
        select(
            table.id,
            table.measure_id,
            area,
            table.month,
            table.count,
            table.import_batch_id,
            ImportBatch.release_date,
        )
        .join(ImportBatch, ImportBatch.id == table.import_batch_id)
        .where(
            table.source == source,
            table.measure_id.in_(wanted),
            table.month >= lo,
            table.month <= hi,
        )
    )
    return {(r[1], r[2], r[3]): (r[0], r[4], r[5], r[6]) for r in rows}


def _store_crime(
    session: Session,
    parsed: ParsedCrime,
    *,
    principal: Principal,
    release: str | None,
    release_date: dt.date | None,
    dry_run: bool,
) -> ImportReport:
    ids = measure_ids(session)
    codes = {k[0] for k in parsed.counts} | {k[0] for k in parsed.unallocated}
    unknown = sorted(codes - set(ids))
    if unknown:
        raise RegistryError(
            f"{parsed.file_name}: the mapping names measure(s) {', '.join(unknown)} that do not "
            "exist; add them with `vru measures add` or change the mapping."
        )
    source = source_of_batch("crime", parsed.format)
    borough_id = boroughs.borough_ids(session)
    code_of = {v: k for k, v in ids.items()}
    name_of = dict(session.execute(select(Borough.id, Borough.name)).tuples().all())
    incoming = {(ids[m], borough_id[g], month): n for (m, g, month), n in parsed.counts.items()}
    incoming_u = {(ids[m], a, month): n for (m, a, month), n in parsed.unallocated.items()}
    months = [k[2] for k in incoming] + [k[2] for k in incoming_u]
    inferred = release_date is None
    if inferred:
        release_date = infer_release(
            parsed.format, parsed.file_name, max(months) if months else None
        )
    wanted = {k[0] for k in incoming} | {k[0] for k in incoming_u}
    stored: Stored = {}
    stored_u: Stored = {}
    if months:
        lo, hi = min(months), max(months)
        stored = _stored_counts(
            session, OutcomeCount, OutcomeCount.borough_id, source, wanted, lo, hi
        )
        stored_u = _stored_counts(
            session, UnallocatedCount, UnallocatedCount.source_area, source, wanted, lo, hi
        )
    diff = _diff_releases(incoming, stored, release_date)
    diff_u = _diff_releases(incoming_u, stored_u, release_date)

    def label(key: tuple[int, Any, dt.date], unallocated: bool) -> dict[str, Any]:
        area = f"London (unallocated: {key[1]})" if unallocated else name_of[key[1]]
        return {"measure": code_of[key[0]], "area": area, "month": format_month(key[2])}

    changes = []
    for d, unalloc in ((diff, False), (diff_u, True)):
        changes += [
            label(k, unalloc) | {"old": o[1], "new": n, "change": "revised"}
            for k, n, o in d.revised
        ]
    for d, unalloc in ((diff, False), (diff_u, True)):
        changes += [
            label(k, unalloc) | {"old": o[1], "new": n, "change": "kept newer release"}
            for k, n, o in d.kept
        ]
    for d, unalloc in ((diff, False), (diff_u, True)):
        changes += [label(k, unalloc) | {"old": None, "new": n, "change": "new"} for k, n in d.new]
    report = ImportReport(
        batch=None,
        rows_read=parsed.rows_read,
        counts_written=len(diff.new) + len(diff_u.new) + len(diff.revised) + len(diff_u.revised),
        unchanged=diff.unchanged + diff_u.unchanged,
        revised=len(diff.revised) + len(diff_u.revised),
        unallocated=dict(sorted(parsed.unallocated_rows.items())),
        skipped=dict(sorted((k, v) for k, v in parsed.skipped.items() if v)),
        unmapped=sorted(parsed.unmapped),
        kept_newer=len(diff.kept) + len(diff_u.kept),
        source=source,
        release_date=release_date,
        release_inferred=inferred and release_date is not None,
        file_name=parsed.file_name,
        format=parsed.format,
        layout=parsed.layout,
        dry_run=dry_run,
        changes=changes[:PREVIEW_ROWS],
    )
    if _nothing_to_write(session, report, "crime", parsed.sha256, dry_run):
        return report

    batch = _add_batch(
        session,
        report,
        parsed,
        kind="crime",
        principal=principal,
        rows_accepted=parsed.borough_rows + sum(parsed.unallocated_rows.values()),
        details={
            "layout": parsed.layout,
            "files": parsed.files,
            "release_inferred": report.release_inferred,
            **report.as_json(),
        },
        release_label=release,
        release_date=release_date,
    )
    batch.details = {**(batch.details or {}), "batch": batch.id}
    _write_counts(session, OutcomeCount, "borough_id", diff, source, batch.id)
    _write_counts(session, UnallocatedCount, "source_area", diff_u, source, batch.id)
    history = _history(diff, "borough_id", source, batch.id) + _history(
        diff_u, "source_area", source, batch.id
    )
    if history:
        session.execute(insert(OutcomeRevision), history)
    audit.record(
        session,
        actor=principal,
        action="import",
        entity="import_batch",
        entity_id=batch.id,
        before={
            "revised": [
                {k: v for k, v in c.items() if k != "change"}
                for c in changes[:AUDIT_SAMPLE]
                if c["change"] == "revised"
            ]
        },
        after={"file_name": parsed.file_name, "sha256": parsed.sha256, "release": release}
        | report.as_json(),
        detail=f"Imported {parsed.format} file {parsed.file_name}.",
    )
    session.flush()
    return report


def _write_counts(
    session: Session,
    table: type[OutcomeCount] | type[UnallocatedCount],
    area: str,
    diff: _CrimeDiff,
    source: str,
    batch: int,
) -> None:
    """Insert the new counts, replace the revised ones and re-point the confirmed ones."""
    if diff.new:
        session.execute(
            insert(table),
            [
                {
                    "measure_id": m,
                    "source": source,
                    area: a,
                    "month": t,
                    "count": n,
                    "import_batch_id": batch,
                }
                for (m, a, t), n in diff.new
            ],
        )
    changed = [{"id": o[0], "count": n, "import_batch_id": batch} for _k, n, o in diff.revised]
    # A newer release with the same figure: the count now belongs to that release, so an older
    # release imported later is compared with it, not with an older one.
    changed += [{"id": i, "import_batch_id": batch} for i in diff.confirmed]
    for rows in (
        [r for r in changed if "count" in r],
        [r for r in changed if "count" not in r],
    ):
        if rows:
            session.execute(update(table), rows)


def _history(diff: _CrimeDiff, area: str, source: str, batch: int) -> list[dict[str, Any]]:
    """``outcome_revision`` rows: the older release's value and the newer's, whichever came
    first (a revised count: the stored one was older; a kept count: the incoming one is)."""
    other = "source_area" if area == "borough_id" else "borough_id"
    rows = [
        {
            "measure_id": m,
            "source": source,
            area: a,
            other: None,
            "month": t,
            "old_count": o[1],
            "new_count": n,
            "old_batch_id": o[2],
            "new_batch_id": batch,
        }
        for (m, a, t), n, o in diff.revised
    ]
    rows += [
        {
            "measure_id": m,
            "source": source,
            area: a,
            other: None,
            "month": t,
            "old_count": n,
            "new_count": o[1],
            "old_batch_id": batch,
            "new_batch_id": o[2],
        }
        for (m, a, t), n, o in diff.kept
    ]
    return rows


# --- population --------------------------------------------------------------------------------


def parse_population(
    source: Source, fmt: str, year: int | None = None, bands: Sequence[str] = ()
) -> ParsedPopulation:
    """Read a population file (in a child process, within the limits) without writing.

    ``bands`` are the measures' population bands, derived from single years of age besides the
    delivery bands (:data:`~registry.outcomes.population.BANDS`).
    """
    population_format(fmt)  # an unknown format is refused before a child process starts
    options = ReadOptions(year=year, bands=tuple(bands))
    return _limited(_parse_population, [source], fmt, options, progress=None)


def detect_population_format(source: Source) -> str:
    """The population format ``source``'s header shows, or a refusal asking for ``--format``
    (naming the crime format it shows, if it does)."""
    header = header_of(source)
    found = detect_columns(header)
    if found is not None and found.kind == "population":
        return found.code
    hint = (
        describe(header, command="population", fmt=None)
        if found
        else f"; give --format ({', '.join(POPULATION_FORMATS)})"
    )
    population = or_list(f.called for f in of_kind("population"))
    raise refuse(source.name, f"the header is not that of {population} file{hint}")


def _parse_population(sources: list[Source], fmt: str, options: ReadOptions) -> ParsedPopulation:
    found = population_format(fmt)
    if options.year is not None and not found.takes_year:
        raise RegistryError(f"--year is for the ONS file; a {fmt} file has a year column.")
    [parsed] = found.parse(sources, options, no_progress)
    return parsed


@write_action("population.import")
def import_population(
    session: Session,
    *,
    principal: Principal,
    source: Source,
    fmt: str,
    year: int | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Validate a population file, then store it in this transaction (newer figures replace)."""
    parsed = parse_population(source, fmt, year, bands_needed(session))
    borough_id = boroughs.borough_ids(session)
    name_of = dict(session.execute(select(Borough.id, Borough.name)).tuples().all())
    years = {k[1] for k in parsed.people}
    stored = {
        (r.borough_id, r.year, r.age_band): (r.id, r.people, r.import_batch_id)
        for r in session.execute(
            select(
                Population.id,
                Population.borough_id,
                Population.year,
                Population.age_band,
                Population.people,
                Population.import_batch_id,
            ).where(Population.year.in_(years))
        )
    }
    incoming = {(borough_id[g], y, band): n for (g, y, band), n in parsed.people.items()}
    new, revised, unchanged = _diff(incoming, stored)
    changes = [
        {
            "borough": name_of[k[0]],
            "year": k[1],
            "age_band": k[2],
            "old": o[1],
            "new": n,
            "change": "revised",
        }
        for k, n, o in revised
    ] + [
        {
            "borough": name_of[k[0]],
            "year": k[1],
            "age_band": k[2],
            "old": None,
            "new": n,
            "change": "new",
        }
        for k, n in new
    ]
    report = ImportReport(
        batch=None,
        rows_read=parsed.rows_read,
        counts_written=len(new) + len(revised),
        unchanged=unchanged,
        revised=len(revised),
        unallocated={},
        skipped=dict(parsed.skipped),
        unmapped=[],
        file_name=parsed.file_name,
        format=parsed.format,
        dry_run=dry_run,
        changes=changes[:PREVIEW_ROWS],
    )
    if _nothing_to_write(session, report, "population", parsed.sha256, dry_run):
        return report
    batch = _add_batch(
        session,
        report,
        parsed,
        kind="population",
        principal=principal,
        rows_accepted=parsed.rows_read - sum(parsed.skipped.values()),
        details=report.as_json(),
    )
    if new:
        session.execute(
            insert(Population),
            [
                {
                    "borough_id": b,
                    "year": y,
                    "age_band": a,
                    "people": n,
                    "import_batch_id": batch.id,
                }
                for (b, y, a), n in new
            ],
        )
    if revised:
        session.execute(
            update(Population),
            [{"id": o[0], "people": n, "import_batch_id": batch.id} for _k, n, o in revised],
        )
    audit.record(
        session,
        actor=principal,
        action="import",
        entity="import_batch",
        entity_id=batch.id,
        before={"revised": [c for c in changes[:AUDIT_SAMPLE] if c["change"] == "revised"]},
        after={"file_name": parsed.file_name, "sha256": parsed.sha256} | report.as_json(),
        detail=f"Imported {parsed.format} population file {parsed.file_name}.",
    )
    return report


# --- reading back ------------------------------------------------------------------------------


def list_batches(
    session: Session, *, principal: Principal, kind: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Imports of outcome and population data, newest first."""
    require(principal, "outcomes.read")
    stmt = select(ImportBatch).order_by(ImportBatch.id.desc()).limit(limit)
    if kind:
        stmt = stmt.where(ImportBatch.kind == kind)
    else:
        stmt = stmt.where(ImportBatch.kind.in_(["crime", "population", "seed"]))
    rows = []
    for b in session.scalars(stmt):
        details = b.details or {}
        rows.append(
            {
                "batch": b.id,
                "kind": b.kind,
                "format": b.format or "",
                "file_name": b.file_name or "",
                "release": b.release_label or "",
                "release_date": b.release_date.isoformat() if b.release_date else "",
                "rows_read": b.rows_read,
                "rows_accepted": b.rows_accepted,
                "counts_written": details.get("counts_written", ""),
                "revised": details.get("revised", ""),
                "sha256": b.sha256 or "",
                "created_by": b.created_by,
                "created_at": b.created_at,
            }
        )
    return rows


def list_revisions(
    session: Session, *, principal: Principal, batch: int | None = None, limit: int = 2000
) -> list[dict[str, Any]]:
    """Counts a newer release of the same source changed (or kept, when the older release was
    imported after it): the older release's value with its release, and the newer one's."""
    require(principal, "outcomes.read")
    old_b, new_b = aliased(ImportBatch), aliased(ImportBatch)
    stmt = (
        select(OutcomeRevision, OutcomeMeasure.code, Borough.name, old_b, new_b)
        .join(OutcomeMeasure, OutcomeRevision.measure_id == OutcomeMeasure.id)
        .outerjoin(Borough, OutcomeRevision.borough_id == Borough.id)
        .join(old_b, OutcomeRevision.old_batch_id == old_b.id)
        .join(new_b, OutcomeRevision.new_batch_id == new_b.id)
        .order_by(OutcomeRevision.id.desc())
        .limit(limit)
    )
    if batch is not None:
        stmt = stmt.where(OutcomeRevision.new_batch_id == batch)
    return [
        {
            "measure": code,
            "source": r.source,
            "area": name or f"London (unallocated: {r.source_area})",
            "month": format_month(r.month),
            "old_count": r.old_count,
            "old_release": ob.release_label or ob.file_name or f"batch {ob.id}",
            "old_release_date": ob.release_date.isoformat() if ob.release_date else "",
            "old_batch": ob.id,
            "new_count": r.new_count,
            "new_release": nb.release_label or nb.file_name or f"batch {nb.id}",
            "new_release_date": nb.release_date.isoformat() if nb.release_date else "",
            "new_batch": nb.id,
        }
        for r, code, name, ob, nb in session.execute(stmt).tuples()
    ]


def export_outcomes(
    session: Session,
    *,
    principal: Principal,
    measure: str | None = None,
    include_unallocated: bool = False,
    source: str | None = None,
) -> pd.DataFrame:
    """Stored counts as ``measure,borough,month,count`` (the long import format): each
    measure's source of record, or the counts of ``source`` when it is given."""
    require(principal, "outcomes.read")
    if measure is not None and measure not in measure_ids(session):
        get_measure(session, measure)
    if source is not None:
        check_order([source])
    stmt = (
        select(OutcomeMeasure.code, Borough.name, OutcomeCount.month, OutcomeCount.count)
        .join(OutcomeMeasure, OutcomeCount.measure_id == OutcomeMeasure.id)
        .join(Borough, OutcomeCount.borough_id == Borough.id)
        .where(
            of_record(session, OutcomeCount) if source is None else OutcomeCount.source == source
        )
    )
    if measure:
        stmt = stmt.where(OutcomeMeasure.code == measure)
    rows = [tuple(r) for r in session.execute(stmt).tuples()]
    if include_unallocated:
        ustmt = (
            select(
                OutcomeMeasure.code,
                UnallocatedCount.source_area,
                UnallocatedCount.month,
                UnallocatedCount.count,
            )
            .join(OutcomeMeasure, UnallocatedCount.measure_id == OutcomeMeasure.id)
            .where(
                of_record(session, UnallocatedCount)
                if source is None
                else UnallocatedCount.source == source
            )
        )
        if measure:
            ustmt = ustmt.where(OutcomeMeasure.code == measure)
        rows += [
            (c, f"London (unallocated: {a})", m, n)
            for c, a, m, n in session.execute(ustmt).tuples()
        ]
    frame = pd.DataFrame(rows, columns=["measure", "borough", "month", "count"])
    frame["month"] = [format_month(m) for m in frame["month"]]
    return frame.sort_values(["measure", "month", "borough"], ignore_index=True)


def export_population(session: Session, *, principal: Principal) -> pd.DataFrame:
    """Stored population as ``borough_code,borough,year,age_band,people``."""
    require(principal, "outcomes.read")
    stmt = select(
        Borough.gss_code, Borough.name, Population.year, Population.age_band, Population.people
    ).join(Borough, Population.borough_id == Borough.id)
    frame = pd.DataFrame(
        [tuple(r) for r in session.execute(stmt).tuples()],
        columns=["borough_code", "borough", "year", "age_band", "people"],
    )
    return frame.sort_values(["borough_code", "year", "age_band"], ignore_index=True)
