"""Where counts come from: sources kept apart, each measure's source of record, releases.

Every stored count carries its *source*, the family of file it came from (``mps-borough``,
``mps-dashboard``, ``police-uk``, ``long`` or the ``demo`` data), and the release of the import
batch that set it. Counts from different sources are stored side by side; a police.uk file of one
force is never a borough's full count, so it must not replace the Met's.

Each measure ships an order of preference over the sources (``outcome_measure.source_order``).
The measure's *source of record* is the first source in that order that holds any counts for it,
so a registry whose only counts came in ``long`` format (or the demo data) keeps working.
Everything users see (pages, trends, models, exports, funder summaries) reads the counts of
record through :func:`of_record`; the other sources are kept, listed and comparable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, and_, false, func, select, text, tuple_
from sqlalchemy.orm import Session

from registry import audit
from registry.auth import Principal, require, write_action
from registry.errors import RegistryError
from registry.outcomes.formats import of_kind
from registry.outcomes.measures import get_measure
from registry.periods import add_months, as_date, format_month
from registry.schema import (
    Borough,
    ImportBatch,
    OutcomeCount,
    OutcomeMeasure,
    UnallocatedCount,
)

MET_SOURCES = ("mps-borough", "mps-dashboard")
# Every crime format of registry.outcomes.formats, and the demo data.
SOURCES = (*MET_SOURCES, "long", "demo", "police-uk")
# The orders shipped with the measures (0008_outcome_sources writes the same into the database).
BOROUGH_FILE_FIRST = ["mps-borough", "mps-dashboard", "long", "demo", "police-uk"]
DASHBOARD_FIRST = ["mps-dashboard", "mps-borough", "long", "demo", "police-uk"]
PROBES_PER_QUERY = 200  # SQLite allows at most 500 SELECTs in one UNION ALL
DASHBOARD_MEASURES = ("knife_crime_injury_u25", "gun_crime")


def default_order(code: str) -> list[str]:
    """The source order a measure ships with."""
    return list(DASHBOARD_FIRST if code in DASHBOARD_MEASURES else BOROUGH_FILE_FIRST)


def source_of_batch(kind: str, fmt: str | None) -> str:
    """The source of the counts an import batch stored: its format, or ``demo`` for the seed."""
    if kind == "seed":
        return "demo"
    return fmt if fmt in SOURCES else "long"


def check_order(order: Sequence[str]) -> list[str]:
    """An order of sources as given, refused if a name is unknown or repeated, or if police.uk
    comes before a Met source (one force's street file is never a borough's full count)."""
    order = [s.strip() for s in order]
    if not order:
        raise RegistryError("Name at least one source, most preferred first.")
    unknown = [s for s in order if s not in SOURCES]
    if unknown:
        raise RegistryError(
            f"Unknown source(s) {', '.join(repr(s) for s in unknown)}; the sources are "
            f"{', '.join(SOURCES)}."
        )
    repeated = sorted({s for s in order if order.count(s) > 1})
    if repeated:
        raise RegistryError(f"Source(s) named twice: {', '.join(repeated)}.")
    if "police-uk" in order:
        police = order.index("police-uk")
        after = [s for s in MET_SOURCES if s in order and order.index(s) > police]
        if after:
            raise RegistryError(
                "police-uk cannot come before a Met source "
                f"({', '.join(after)}): one force's street file is never a borough's full count."
            )
    return order


# --- the source of record ----------------------------------------------------------------------


def record_sources(session: Session) -> dict[int, str]:
    """Each measure's source of record (measure id -> source): the first source in its order
    holding any counts (borough or London unallocated). A measure none of whose ordered sources
    holds counts has none.

    One probe per measure and ordered source, each an index seek on the unique key (which starts
    with ``measure_id, source``), so the cost does not grow with the number of counts stored.
    """
    orders = session.execute(select(OutcomeMeasure.id, OutcomeMeasure.source_order)).all()
    pairs = [(mid, source) for mid, order in orders for source in order or []]
    held: set[tuple[int, str]] = set()
    # Plain SQL: building this many SQLAlchemy expressions costs more than running them.
    for start in range(0, len(pairs), PROBES_PER_QUERY):
        chunk = pairs[start : start + PROBES_PER_QUERY]
        sql = " UNION ALL ".join(
            f"SELECT {i} AS probe WHERE EXISTS (SELECT 1 FROM outcome_count WHERE "
            f"measure_id = :m{i} AND source = :s{i}) OR EXISTS (SELECT 1 FROM "
            f"unallocated_count WHERE measure_id = :m{i} AND source = :s{i})"
            for i in range(len(chunk))
        )
        params = {f"m{i}": mid for i, (mid, _s) in enumerate(chunk)}
        params |= {f"s{i}": source for i, (_m, source) in enumerate(chunk)}
        held.update(chunk[i] for i in session.execute(text(sql), params).scalars())
    record = {}
    for mid, order in orders:
        first = next((s for s in order or [] if (mid, s) in held), None)
        if first is not None:
            record[mid] = first
    return record


def of_record(
    session: Session,
    table: type[OutcomeCount | UnallocatedCount],
    measure_id: int | None = None,
) -> ColumnElement[bool]:
    """The filter every reader of stored counts uses: rows of their measure's source of record.

    ``table`` is :class:`OutcomeCount` or :class:`UnallocatedCount` (London unallocated counts
    follow the same source of record). Add it to any query on those tables; a reader of one
    measure passes its id, which also restricts the rows to that measure (and lets the database
    seek straight to that measure's source of record).
    """
    record = record_sources(session)
    if measure_id is not None:
        if measure_id not in record:
            return false()
        return and_(table.measure_id == measure_id, table.source == record[measure_id])
    if not record:
        return false()
    return tuple_(table.measure_id, table.source).in_(sorted(record.items()))


def months_of_record(
    session: Session, measure_id: int | None = None
) -> tuple[dt.date | None, dt.date | None]:
    """The first and last month with a count of record (of every measure, or of
    ``measure_id``'s), ``(None, None)`` when there is none."""
    first, last = session.execute(
        select(func.min(OutcomeCount.month), func.max(OutcomeCount.month)).where(
            of_record(session, OutcomeCount, measure_id)
        )
    ).one()
    return (
        None if first is None else as_date(first),
        None if last is None else as_date(last),
    )


# --- admin: the order ---------------------------------------------------------------------------


@write_action("measures.manage")
def set_source_order(
    session: Session, *, principal: Principal, code: str, order: Sequence[str]
) -> dict[str, Any]:
    """Set a measure's source order (most preferred first); sources not named are never of
    record for it. Returns the order and the source of record it gives."""
    measure = get_measure(session, code)
    new = check_order(order)
    before = list(measure.source_order or [])
    measure.source_order = new
    session.flush()
    record = record_sources(session).get(measure.id)
    audit.record(
        session,
        actor=principal,
        action="amend",
        entity="outcome_measure",
        entity_id=measure.id,
        before={"code": code, "source_order": before},
        after={"code": code, "source_order": new, "source_of_record": record},
        detail=f"Source order of {code} set to {', '.join(new)}.",
    )
    return {"measure": code, "source_order": new, "source_of_record": record}


# --- listing and comparing ---------------------------------------------------------------------


def list_sources(
    session: Session, *, principal: Principal, measure: str | None = None
) -> list[dict[str, Any]]:
    """Every measure and source holding counts: months held, latest release, of record or not."""
    require(principal, "outcomes.read")
    record = record_sources(session)
    orders = dict(
        session.execute(select(OutcomeMeasure.id, OutcomeMeasure.source_order)).tuples().all()
    )
    stmt = (
        select(
            OutcomeMeasure.id,
            OutcomeMeasure.code,
            OutcomeCount.source,
            func.count(),
            func.min(OutcomeCount.month),
            func.max(OutcomeCount.month),
            func.max(ImportBatch.release_date),
        )
        .join(OutcomeMeasure, OutcomeMeasure.id == OutcomeCount.measure_id)
        .join(ImportBatch, ImportBatch.id == OutcomeCount.import_batch_id)
        .group_by(OutcomeMeasure.id, OutcomeMeasure.code, OutcomeCount.source)
    )
    if measure is not None:
        stmt = stmt.where(OutcomeMeasure.id == get_measure(session, measure).id)
    rows = []
    for mid, code, source, n, first, last, release in session.execute(stmt):
        order = orders.get(mid) or []
        rows.append(
            {
                "measure": code,
                "source": source,
                "of_record": record.get(mid) == source,
                "rank": order.index(source) + 1 if source in order else None,
                "counts": int(n),
                "first_month": format_month(first),
                "last_month": format_month(last),
                "latest_release": release.isoformat() if release is not None else "",
            }
        )
    rows.sort(key=lambda r: (r["measure"], r["rank"] is None, r["rank"] or 0))
    return rows


def compare_sources(
    session: Session,
    *,
    principal: Principal,
    measure: str,
    first: str,
    second: str,
    include_missing: bool = False,
) -> pd.DataFrame:
    """The borough-months both sources hold where their counts of ``measure`` differ; with
    ``include_missing`` also those only one holds (the other's count empty).

    Columns ``borough``, ``month``, the two sources' counts and ``difference`` (second - first).
    """
    require(principal, "outcomes.read")
    outcome = get_measure(session, measure)
    for s in (first, second):
        check_order([s])
    if first == second:
        raise RegistryError("Name two different sources to compare.")
    stmt = (
        select(Borough.name, OutcomeCount.month, OutcomeCount.source, OutcomeCount.count)
        .join(Borough, Borough.id == OutcomeCount.borough_id)
        .where(OutcomeCount.measure_id == outcome.id, OutcomeCount.source.in_([first, second]))
    )
    frame = pd.DataFrame(
        session.execute(stmt).tuples().all(), columns=["borough", "month", "source", "count"]
    )
    columns = ["borough", "month", first, second, "difference"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    wide = frame.pivot_table(
        index=["borough", "month"], columns="source", values="count", aggfunc="sum"
    )
    wide = wide.reindex(columns=[first, second])
    missing = wide[first].isna() | wide[second].isna()
    differ = (wide[first].ne(wide[second]) & ~missing) | (missing & include_missing)
    wide = wide[differ].reset_index()
    wide["difference"] = wide[second] - wide[first]
    wide["month"] = [format_month(m) for m in wide["month"]]
    for col in (first, second, "difference"):
        wide[col] = wide[col].astype("Int64")
    return wide[columns].sort_values(["month", "borough"], ignore_index=True)


# --- releases ----------------------------------------------------------------------------------


def infer_release(fmt: str, file_name: str, last_month: dt.date | None) -> dt.date | None:
    """A file's release date when the user gives none: the first day of its release month.

    The Met publishes its borough file as a pair (FORMATS.md): the "most recent 24 months" file
    ends with the release's month, the "Historical" file exactly 24 months before it. Every other
    file is taken to be released in the last month it holds.
    """
    if last_month is None:
        return None
    month = last_month.replace(day=1)
    if fmt == "mps-borough" and "histor" in file_name.casefold():
        return add_months(month, 24)
    return month


def where_to_load(session: Session, *, principal: Principal) -> list[dict[str, str]]:
    """For each measure with no counts, the file that supplies them and the format to load it
    with (the first file source in its order): knife crime with injury and gun crime come from
    the Met's crime dashboard, not the borough file a newcomer loads first."""
    require(principal, "outcomes.read")
    record = record_sources(session)
    # The file each source's counts are loaded from (the demo data is no file to look for).
    files = {f.code: f.description for f in of_kind("crime")}
    hints = []
    for measure in session.scalars(select(OutcomeMeasure).order_by(OutcomeMeasure.id)):
        if measure.id in record:
            continue
        source = next((s for s in measure.source_order or [] if s in files), None)
        if source is None:
            continue
        hints.append(
            {
                "measure": measure.code,
                "label": measure.label,
                "format": source,
                "sentence": f"{measure.label}: no counts loaded. They come from "
                f"{files[source]}; load it on the Outcome data page with format "
                f"{source}, or with `vru import crime FILE --format {source}`.",
            }
        )
    return hints
