"""Compare parsed counts with the stored ones and write them in one transaction.

Each count is *unchanged* (same value: nothing written), *new* (inserted) or *revised* (a newer
release changed it: the stored value is replaced and the earlier one kept in ``outcome_revision``
with both releases' batches). The newest import wins. Re-importing a file already imported with
the same figures writes nothing at all, not even a batch.
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
from registry.errors import RegistryError
from registry.models import (
    Borough,
    ImportBatch,
    OutcomeCount,
    OutcomeMeasure,
    OutcomeRevision,
    Population,
    UnallocatedCount,
)
from registry.outcomes import long as long_format
from registry.outcomes import mps_borough, mps_dashboard, police_uk
from registry.outcomes import population as population_format
from registry.outcomes.common import (
    ParsedCrime,
    ParsedPopulation,
    Progress,
    Source,
    no_progress,
    refuse,
)
from registry.outcomes.mapping import Mapper, mapper_for
from registry.outcomes.measures import measure_ids
from registry.periods import format_month
from registry.untrusted import FileRefused, Limits, run_limited

T = TypeVar("T")

CRIME_FORMATS = ("mps-borough", "mps-dashboard", "police-uk", "long")
POPULATION_FORMATS = ("ons-single-year", "long")
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
    if fmt not in CRIME_FORMATS:
        raise RegistryError(
            f"Unknown crime format {fmt!r}; choose one of {', '.join(CRIME_FORMATS)}."
        )
    if not sources:
        raise RegistryError("No files to import.")
    mapper = mapper_for(session, fmt) if fmt != "long" else None
    measures = set(measure_ids(session))
    return _limited(_parse_crime, list(sources), fmt, mapper, measures, progress=progress)


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
    sources: list[Source],
    fmt: str,
    mapper: Mapper | None,
    measures: set[str],
    progress: Progress = no_progress,
) -> list[ParsedCrime]:
    """The reading half of :func:`parse_crime`, run in the child process."""
    if fmt == "police-uk":
        assert mapper is not None
        return [police_uk.parse(sources, mapper, progress)]
    results = []
    for i, source in enumerate(sources):

        def step(fraction: float, message: str, i: int = i) -> None:
            progress((i + fraction) / len(sources), message)

        if fmt == "mps-borough":
            assert mapper is not None
            results.append(mps_borough.parse(source, mapper, step))
        elif fmt == "mps-dashboard":
            assert mapper is not None
            results.append(mps_dashboard.parse(source, mapper, step))
        else:
            results.append(long_format.parse(source, measures, step))
    return results


@write_action("outcomes.import")
def import_crime(
    session: Session,
    *,
    principal: Principal,
    sources: Sequence[Source],
    fmt: str,
    release: str | None = None,
    dry_run: bool = False,
    progress: Progress = no_progress,
) -> list[ImportReport]:
    """Validate every file, then store all of them in this one transaction (or, dry, nothing)."""
    release = (release or "").strip() or None
    if release is not None and len(release) > RELEASE_MAX:
        raise RegistryError(f"A release label has at most {RELEASE_MAX} characters.")
    parsed = parse_crime(session, sources, fmt, progress)
    return [
        _store_crime(session, p, principal=principal, release=release, dry_run=dry_run)
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


def _existing_batch(session: Session, kind: str, sha256: str) -> int | None:
    return session.scalar(
        select(ImportBatch.id)
        .where(ImportBatch.kind == kind, ImportBatch.sha256 == sha256)
        .order_by(ImportBatch.id.desc())
        .limit(1)
    )


def _diff(
    incoming: dict[tuple[int, Any, dt.date], int],
    stored: dict[tuple[int, Any, dt.date], tuple[int, int, int]],
) -> tuple[list[tuple[Any, int]], list[tuple[Any, int, tuple[int, int, int]]], int]:
    new, revised, unchanged = [], [], 0
    for key, count in incoming.items():
        old = stored.get(key)
        if old is None:
            new.append((key, count))
        elif old[1] == count:
            unchanged += 1
        else:
            revised.append((key, count, old))
    return new, revised, unchanged


def _store_crime(
    session: Session,
    parsed: ParsedCrime,
    *,
    principal: Principal,
    release: str | None,
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
    borough_id = boroughs.borough_ids(session)
    code_of = {v: k for k, v in ids.items()}
    name_of = dict(session.execute(select(Borough.id, Borough.name)).tuples().all())
    incoming = {(ids[m], borough_id[g], month): n for (m, g, month), n in parsed.counts.items()}
    incoming_u = {(ids[m], a, month): n for (m, a, month), n in parsed.unallocated.items()}
    months = [k[2] for k in incoming] + [k[2] for k in incoming_u]
    wanted = {k[0] for k in incoming} | {k[0] for k in incoming_u}
    stored: dict[tuple[int, Any, dt.date], tuple[int, int, int]] = {}
    stored_u: dict[tuple[int, Any, dt.date], tuple[int, int, int]] = {}
    if months:
        lo, hi = min(months), max(months)
        for row in session.execute(
            select(
                OutcomeCount.id,
                OutcomeCount.measure_id,
                OutcomeCount.borough_id,
                OutcomeCount.month,
                OutcomeCount.count,
                OutcomeCount.import_batch_id,
            ).where(
                OutcomeCount.measure_id.in_(wanted),
                OutcomeCount.month >= lo,
                OutcomeCount.month <= hi,
            )
        ):
            stored[(row.measure_id, row.borough_id, row.month)] = (
                row.id,
                row.count,
                row.import_batch_id,
            )
        for row in session.execute(
            select(
                UnallocatedCount.id,
                UnallocatedCount.measure_id,
                UnallocatedCount.source_area,
                UnallocatedCount.month,
                UnallocatedCount.count,
                UnallocatedCount.import_batch_id,
            ).where(
                UnallocatedCount.measure_id.in_(wanted),
                UnallocatedCount.month >= lo,
                UnallocatedCount.month <= hi,
            )
        ):
            stored_u[(row.measure_id, row.source_area, row.month)] = (
                row.id,
                row.count,
                row.import_batch_id,
            )
    new, revised, unchanged = _diff(incoming, stored)
    new_u, revised_u, unchanged_u = _diff(incoming_u, stored_u)

    def label(key: tuple[int, Any, dt.date], unallocated: bool) -> dict[str, Any]:
        area = f"London (unallocated: {key[1]})" if unallocated else name_of[key[1]]
        return {"measure": code_of[key[0]], "area": area, "month": format_month(key[2])}

    changes = [
        label(k, False) | {"old": o[1], "new": n, "change": "revised"} for k, n, o in revised
    ] + [label(k, True) | {"old": o[1], "new": n, "change": "revised"} for k, n, o in revised_u]
    changes += [label(k, False) | {"old": None, "new": n, "change": "new"} for k, n in new]
    changes += [label(k, True) | {"old": None, "new": n, "change": "new"} for k, n in new_u]
    report = ImportReport(
        batch=None,
        rows_read=parsed.rows_read,
        counts_written=len(new) + len(new_u) + len(revised) + len(revised_u),
        unchanged=unchanged + unchanged_u,
        revised=len(revised) + len(revised_u),
        unallocated=dict(sorted(parsed.unallocated_rows.items())),
        skipped=dict(sorted((k, v) for k, v in parsed.skipped.items() if v)),
        unmapped=sorted(parsed.unmapped),
        file_name=parsed.file_name,
        format=parsed.format,
        layout=parsed.layout,
        dry_run=dry_run,
        changes=changes[:PREVIEW_ROWS],
    )
    if _nothing_to_write(session, report, "crime", parsed.sha256, dry_run):
        return report

    batch = ImportBatch(
        kind="crime",
        format=parsed.format,
        file_name=parsed.file_name,
        sha256=parsed.sha256,
        release_label=release,
        rows_read=parsed.rows_read,
        rows_accepted=parsed.borough_rows + sum(parsed.unallocated_rows.values()),
        created_by=principal.username,
        details={
            "layout": parsed.layout,
            "files": parsed.files,
            **report.as_json(),
        },
    )
    session.add(batch)
    session.flush()
    report.batch = batch.id
    batch.details = {**(batch.details or {}), "batch": batch.id}
    if new:
        session.execute(
            insert(OutcomeCount),
            [
                {
                    "measure_id": m,
                    "borough_id": b,
                    "month": t,
                    "count": n,
                    "import_batch_id": batch.id,
                }
                for (m, b, t), n in new
            ],
        )
    if new_u:
        session.execute(
            insert(UnallocatedCount),
            [
                {
                    "measure_id": m,
                    "source_area": a,
                    "month": t,
                    "count": n,
                    "import_batch_id": batch.id,
                }
                for (m, a, t), n in new_u
            ],
        )
    if revised:
        session.execute(
            update(OutcomeCount),
            [{"id": o[0], "count": n, "import_batch_id": batch.id} for _k, n, o in revised],
        )
    if revised_u:
        session.execute(
            update(UnallocatedCount),
            [{"id": o[0], "count": n, "import_batch_id": batch.id} for _k, n, o in revised_u],
        )
    history = [
        {
            "measure_id": m,
            "borough_id": b,
            "source_area": None,
            "month": t,
            "old_count": o[1],
            "new_count": n,
            "old_batch_id": o[2],
            "new_batch_id": batch.id,
        }
        for (m, b, t), n, o in revised
    ] + [
        {
            "measure_id": m,
            "borough_id": None,
            "source_area": a,
            "month": t,
            "old_count": o[1],
            "new_count": n,
            "old_batch_id": o[2],
            "new_batch_id": batch.id,
        }
        for (m, a, t), n, o in revised_u
    ]
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


# --- population --------------------------------------------------------------------------------


def parse_population(source: Source, fmt: str, year: int | None = None) -> ParsedPopulation:
    """Read a population file (in a child process, within the limits) without writing."""
    if fmt in POPULATION_FORMATS:
        return _limited(_parse_population, [source], fmt, year, progress=None)
    raise RegistryError(
        f"Unknown population format {fmt!r}; choose one of {', '.join(POPULATION_FORMATS)}."
    )


def _parse_population(sources: list[Source], fmt: str, year: int | None) -> ParsedPopulation:
    source = sources[0]
    if fmt == "ons-single-year":
        return population_format.parse_ons(source, year)
    if fmt == "long":
        if year is not None:
            raise RegistryError("--year is for the ONS file; a long file has a year column.")
        return population_format.parse_long(source)
    raise RegistryError(
        f"Unknown population format {fmt!r}; choose one of {', '.join(POPULATION_FORMATS)}."
    )


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
    parsed = parse_population(source, fmt, year)
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
    new, revised, unchanged = _diff(incoming, stored)  # type: ignore[arg-type]
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
    batch = ImportBatch(
        kind="population",
        format=parsed.format,
        file_name=parsed.file_name,
        sha256=parsed.sha256,
        rows_read=parsed.rows_read,
        rows_accepted=parsed.rows_read - sum(parsed.skipped.values()),
        created_by=principal.username,
        details=report.as_json(),
    )
    session.add(batch)
    session.flush()
    report.batch = batch.id
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
    """Counts a newer release changed: the earlier value with its release, and the new one."""
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
            "area": name or f"London (unallocated: {r.source_area})",
            "month": format_month(r.month),
            "old_count": r.old_count,
            "old_release": ob.release_label or ob.file_name or f"batch {ob.id}",
            "old_batch": ob.id,
            "new_count": r.new_count,
            "new_release": nb.release_label or nb.file_name or f"batch {nb.id}",
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
) -> pd.DataFrame:
    """Stored counts as ``measure,borough,month,count`` (the long import format)."""
    require(principal, "outcomes.read")
    if measure is not None and measure not in measure_ids(session):
        from registry.outcomes.measures import get_measure

        get_measure(session, measure)
    stmt = (
        select(OutcomeMeasure.code, Borough.name, OutcomeCount.month, OutcomeCount.count)
        .join(OutcomeMeasure, OutcomeCount.measure_id == OutcomeMeasure.id)
        .join(Borough, OutcomeCount.borough_id == Borough.id)
    )
    if measure:
        stmt = stmt.where(OutcomeMeasure.code == measure)
    rows = [tuple(r) for r in session.execute(stmt).tuples()]
    if include_unallocated:
        ustmt = select(
            OutcomeMeasure.code,
            UnallocatedCount.source_area,
            UnallocatedCount.month,
            UnallocatedCount.count,
        ).join(OutcomeMeasure, UnallocatedCount.measure_id == OutcomeMeasure.id)
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
