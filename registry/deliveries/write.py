"""Step 3: added and amended rows written in one transaction, refusing rows changed since read."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, bindparam, case, column, insert, table, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry import audit
from registry.auth import Principal, write_action
from registry.deliveries.common import (
    FIELDS,
    attach,
    existing_rows,
    json_figures,
    signed_off_locked,
)
from registry.deliveries.compare import STATUSES, Preview, preview_upload
from registry.errors import ConflictError, RegistryError
from registry.periods import format_month, index_month
from registry.problems import Problem
from registry.schema import (
    Delivery,
    ImportBatch,
    utcnow,
)


@dataclass(frozen=True)
class SaveResult:
    added: int
    amended: int
    unchanged: int
    import_batch_id: int | None = None
    warnings: list[Problem] = field(default_factory=list)


def _value_text(value: float, money: bool = False) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "(blank)"
    return f"{value:.2f}" if money else f"{int(value)}"


def _conflict_message(conflicts: pd.DataFrame) -> str:
    lines = []
    for r in conflicts.head(5).to_dict(orient="records"):
        where = f"{r['programme']}, {r['borough']}, {format_month(index_month(int(r['mi'])))}"
        if r["kind"] == "upload" and r["row"]:
            where = f"row {int(r['row'])} ({where})"
        if not r["now_live"] and r["was_live"]:
            lines.append(f"{where} was deleted by {r['now_updated_by']} since you read it")
            continue
        if r["now_live"] and not r["was_live"]:
            recorded = ", ".join(
                f"{f}: (none) → {_value_text(r[f'now_{f}'], f == 'spend_gbp')}" for f in FIELDS
            )
            lines.append(
                f"{where} was recorded by {r['now_updated_by']} since you read it ({recorded})"
            )
            continue
        changes = [
            f"{f}: {_value_text(r[f'was_{f}'], f == 'spend_gbp')} → "
            f"{_value_text(r[f'now_{f}'], f == 'spend_gbp')}"
            for f in FIELDS
            if _value_text(r[f"was_{f}"], f == "spend_gbp")
            != _value_text(r[f"now_{f}"], f == "spend_gbp")
        ]
        detail = "; ".join(changes) if changes else "saved again with the same figures"
        lines.append(f"{where} was changed by {r['now_updated_by']} since you read it ({detail})")
    more = f" (and {len(conflicts) - 5} more)" if len(conflicts) > 5 else ""
    return (
        "Someone else changed these figures since you read them, so nothing was saved: "
        + "; ".join(lines)
        + more
        + ". Reload to see the current figures, then make your change again."
    )


def _spend_param(value: float) -> Decimal | None:
    return None if np.isnan(value) else Decimal(f"{value:.2f}")


def _count_param(value: float) -> int | None:
    return None if np.isnan(value) else int(value)


@write_action("deliveries.write")
def commit(
    session: Session,
    *,
    principal: Principal,
    preview: Preview,
    received_on: dt.date | None = None,
    backfill: bool = False,
) -> SaveResult:
    """Write a preview's added and amended rows in the caller's transaction, or nothing.

    Each row to be written is read again (locked, on PostgreSQL) and compared with what the
    preview saw; if any changed in between, a :class:`ConflictError` names what changed and
    nothing is written (not even the import batch).

    New rows record ``received_on`` (default today) as the day their return arrived, and
    ``backfill`` marks them as past figures loaded as history rather than returns; an amendment
    keeps the day its return first arrived.
    """
    if preview.problems:
        raise RegistryError(
            f"The data has {len(preview.problems)} problem(s); fix them first. Nothing was saved."
        )
    rows = preview.rows
    changes = rows[rows["status"] != "unchanged"] if len(rows) else rows
    batch_id: int | None = None
    if not len(changes):
        # Saving figures the registry already holds changes nothing: no batch, no event, so the
        # data version stays the same.
        return SaveResult(0, 0, preview.count("unchanged"), None, preview.warnings)
    received = _received_on(received_on, int(changes["mi"].min()))
    merged = _fresh_changes(session, changes, preview.kind)
    if preview.kind == "upload":
        batch = ImportBatch(
            kind="deliveries",
            format=preview.format,
            file_name=preview.file_name,
            sha256=preview.sha256,
            rows_read=preview.rows_read,
            rows_accepted=len(rows),
            created_by=principal.username,
            # The programmes the file carried: a summary of one programme must not name a file
            # that also held others' figures (registry.reports.build._shared_uploads).
            details={s: preview.count(s) for s in STATUSES}
            | {
                "programmes": sorted(int(p) for p in rows["programme_id"].unique()),
                "backfill": backfill,
            },
        )
        session.add(batch)
        session.flush()
        batch_id = batch.id
    _write_changes(session, principal, merged, batch_id, preview.kind, received, backfill)
    counts = {s: preview.count(s) for s in STATUSES}
    if preview.kind == "upload":
        audit.record(
            session,
            actor=principal,
            action="import",
            entity="import_batch",
            entity_id=batch_id,
            after=counts,
            detail=f"Deliveries from {preview.file_name} (SHA-256 {preview.sha256}).",
        )
    elif counts["added"]:
        # Amendments have an event each (written with them); new rows from the form or grid are
        # recorded here with their figures.
        added = changes[~changes["was_live"].to_numpy(dtype=bool)]
        audit.record(
            session,
            actor=principal,
            action="create",
            entity="delivery",
            after={
                "rows": [
                    {
                        "programme": r["programme"],
                        "borough": r["borough"],
                        "month": format_month(index_month(int(r["mi"]))),
                    }
                    | json_figures(float(r["opportunities"]), r["participants"], r["spend_gbp"])
                    for r in added.to_dict(orient="records")
                ]
            },
            detail=f"{counts['added']} delivery row(s) recorded from the {preview.kind}.",
        )
    return SaveResult(
        counts["added"], counts["amended"], counts["unchanged"], batch_id, preview.warnings
    )


def _received_on(received_on: dt.date | None, first_mi: int) -> dt.date:
    """The day the returns arrived: today unless given; never in the future, nor before the
    first month they report on began."""
    today = dt.date.today()
    if received_on is None:
        return today
    if received_on > today:
        raise RegistryError(
            f"The returns cannot have arrived on {received_on:%d %B %Y}: that is in the future."
        )
    first = index_month(first_mi)
    if received_on < first:
        raise RegistryError(
            f"The returns cannot have arrived on {received_on:%d %B %Y}, before "
            f"{format_month(first)}, the first month they report on, began."
        )
    return received_on


def _fresh_changes(session: Session, changes: pd.DataFrame, kind: str) -> pd.DataFrame:
    """``changes`` with the rows as they are now (locked), after checking none changed since
    they were read and no month was signed off meanwhile; raises :class:`ConflictError`."""
    lo, hi = int(changes["mi"].min()), int(changes["mi"].max())
    now_rows = existing_rows(session, changes["programme_id"].unique().tolist(), lo, hi, lock=True)
    merged = attach(
        changes.drop(columns=changes.columns[changes.columns.str.startswith("now_")]),
        now_rows,
        "now_",
    )
    stale = (merged["now_live"].to_numpy() != merged["was_live"].to_numpy()) | (
        merged["was_live"].to_numpy() & (merged["now_version"] != merged["was_version"]).to_numpy()
    )
    if stale.any():
        raise ConflictError(_conflict_message(merged[stale].assign(kind=kind)))
    signed = signed_off_locked(session)
    if signed and merged["mi"].isin(signed).any():
        raise ConflictError(
            "A month in these changes was signed off meanwhile; an admin must reopen it first."
        )
    return merged


def _write_changes(
    session: Session,
    principal: Principal,
    merged: pd.DataFrame,
    batch_id: int | None,
    kind: str,
    received_on: dt.date,
    backfill: bool,
) -> None:
    """Insert and update the rows of ``merged`` (from :func:`_fresh_changes`), with an audit
    event per amendment."""
    now = utcnow()
    t = Delivery.__table__
    opp = merged["opportunities"].to_numpy(dtype=np.int64)
    par = merged["participants"].to_numpy(dtype=float)
    spe = merged["spend_gbp"].to_numpy(dtype=float)
    pid = merged["programme_id"].to_numpy(dtype=np.int64)
    bid = merged["borough_id"].to_numpy(dtype=np.int64)
    mis = merged["mi"].to_numpy(dtype=np.int64)
    months = {int(m): index_month(int(m)) for m in np.unique(mis)}
    new = np.flatnonzero(merged["now_id"].isna().to_numpy())
    if len(new):
        _insert_new(
            session,
            principal,
            batch_id,
            now,
            pid[new],
            bid[new],
            [months[int(m)] for m in mis[new]],
            opp[new],
            par[new],
            spe[new],
            received_on,
            backfill,
        )
    old = np.flatnonzero(merged["now_id"].notna().to_numpy())
    if not len(old):
        return
    ids = merged["now_id"].to_numpy()
    versions = merged["now_version"].to_numpy(dtype=np.int64)
    params = [
        {
            "b_id": int(ids[i]),
            "b_version": int(versions[i]),
            "b_new_version": int(versions[i]) + 1,
            "b_opportunities": int(opp[i]),
            "b_participants": _count_param(par[i]),
            "b_spend": _spend_param(spe[i]),
            "b_batch": batch_id,
            "b_received": received_on,
            "b_backfill": backfill,
        }
        for i in old
    ]
    # A live row's return arrived when it was first recorded; a deleted row recorded again is a
    # new return. (SET expressions read the row as it was before the update.)
    live = t.c.deleted_at.is_(None)
    stmt = (
        update(t)
        .where(and_(t.c.id == bindparam("b_id"), t.c.version == bindparam("b_version")))
        .values(
            opportunities=bindparam("b_opportunities"),
            participants=bindparam("b_participants"),
            spend_gbp=bindparam("b_spend"),
            version=bindparam("b_new_version"),
            import_batch_id=bindparam("b_batch"),
            received_on=case((live, t.c.received_on), else_=bindparam("b_received")),
            backfill=case((live, t.c.backfill), else_=bindparam("b_backfill")),
            deleted_at=None,
            deleted_reason=None,
            updated_at=now,
            updated_by=principal.username,
        )
    )
    result = session.connection().execute(stmt, params)
    if session.get_bind().dialect.supports_sane_multi_rowcount and result.rowcount != len(params):
        raise ConflictError(
            "Someone else changed some of these figures while saving; nothing was saved. "
            "Reload and try again."
        )
    now_opp = merged["now_opportunities"].to_numpy(dtype=float)
    now_par = merged["now_participants"].to_numpy(dtype=float)
    now_spe = merged["now_spend_gbp"].to_numpy(dtype=float)
    now_live = merged["now_live"].to_numpy()
    programmes = merged["programme"].to_numpy()
    names = merged["borough"].to_numpy()
    audit.record_many(
        session,
        [
            {
                "occurred_at": now,
                "actor": principal.username,
                "action": "amend",
                "entity": "delivery",
                "entity_id": str(int(ids[i])),
                "before": (
                    json_figures(now_opp[i], now_par[i], now_spe[i])
                    | {"version": int(versions[i]), "deleted": not bool(now_live[i])}
                ),
                "after": json_figures(float(opp[i]), par[i], spe[i])
                | {"version": int(versions[i]) + 1},
                "detail": (
                    f"{programmes[i]}, {names[i]}, {format_month(months[int(mis[i])])}"
                    + (f"; import batch {batch_id}" if batch_id else f"; from the {kind}")
                ),
            }
            for i in old
        ],
    )


_BULK_COLUMNS = (
    "programme_id",
    "borough_id",
    "month",
    "opportunities",
    "participants",
    "spend_gbp",
    "version",
    "import_batch_id",
    "created_at",
    "updated_at",
    "updated_by",
    "received_on",
    "backfill",
)


def _insert_new(
    session: Session,
    principal: Principal,
    batch_id: int | None,
    now: dt.datetime,
    pid: np.ndarray,
    bid: np.ndarray,
    months: list[dt.date],
    opp: np.ndarray,
    par: np.ndarray,
    spe: np.ndarray,
    received_on: dt.date,
    backfill: bool,
) -> None:
    """Insert new deliveries with one executemany.

    Values are converted to the driver's form once per distinct value (a month, the timestamp)
    with the column types' own bind processors, and the statement uses untyped columns, so
    SQLAlchemy does no per-row type processing: the cost is the database's own.
    """
    t = Delivery.__table__
    dialect = session.get_bind().dialect

    def processor(name: str) -> Any:
        proc = t.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        return proc if proc is not None else (lambda v: v)

    month_values = {m: processor("month")(m) for m in set(months)}
    stamp = processor("created_at")(now)
    rounded = np.round(spe, 2).tolist()
    if dialect.supports_native_decimal:
        spends = [None if v != v else Decimal(f"{v:.2f}") for v in rounded]
    else:  # SQLite keeps NUMERIC as a float anyway
        spends = [None if v != v else v for v in rounded]
    participants = [None if v != v else int(v) for v in par.tolist()]
    compiled = insert(table("delivery", *(column(n) for n in _BULK_COLUMNS))).compile(
        dialect=dialect
    )
    by_name = {
        "programme_id": pid.tolist(),
        "borough_id": bid.tolist(),
        "month": [month_values[m] for m in months],
        "opportunities": opp.tolist(),
        "participants": participants,
        "spend_gbp": spends,
        "version": itertools.repeat(1),
        "import_batch_id": itertools.repeat(batch_id),
        "created_at": itertools.repeat(stamp),
        "updated_at": itertools.repeat(stamp),
        "updated_by": itertools.repeat(principal.username),
        "received_on": itertools.repeat(processor("received_on")(received_on)),
        "backfill": itertools.repeat(processor("backfill")(backfill)),
    }
    params: list[Any]
    if compiled.positiontup is not None:
        params = list(zip(*(by_name[name] for name in compiled.positiontup), strict=False))
    else:
        params = [
            dict(zip(_BULK_COLUMNS, r, strict=False))
            for r in zip(*(by_name[name] for name in _BULK_COLUMNS), strict=False)
        ]
    try:
        session.connection().exec_driver_sql(compiled.string, params)
    except IntegrityError:
        raise ConflictError(
            "Someone else recorded figures for some of these programmes, boroughs and months "
            "while you were saving, so nothing was saved. Reload and try again."
        ) from None


@write_action("deliveries.write")
def import_file(
    session: Session,
    *,
    principal: Principal,
    content: bytes,
    file_name: str,
    dry_run: bool = False,
    received_on: dt.date | None = None,
    backfill: bool = False,
) -> Preview:
    """Validate a file and, unless ``dry_run`` or any row is rejected, commit it; returns the
    preview either way (its ``ok`` says whether anything was written). ``received_on`` and
    ``backfill`` are as for :func:`commit`."""
    result = preview_upload(session, principal=principal, content=content, file_name=file_name)
    if received_on is not None and len(result.rows):
        _received_on(received_on, int(result.rows["mi"].min()))  # refused even on a dry run
    if result.ok and not dry_run:
        commit(
            session,
            principal=principal,
            preview=result,
            received_on=received_on,
            backfill=backfill,
        )
    return result
