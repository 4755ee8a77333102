"""The form, the grid and the export: one delivery or a programme's rows at a time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from registry import audit, boroughs, db
from registry.auth import Principal, require, write_action
from registry.deliveries.common import (
    FIELDS,
    KEY,
    attach,
    existing_rows,
    json_figures,
    signed_off_locked,
)
from registry.deliveries.compare import Preview, preview
from registry.deliveries.validate import Checked, check_rows
from registry.deliveries.write import SaveResult, commit
from registry.errors import ConflictError, NotFoundError, RegistryError
from registry.periods import format_month, index_month, month_index, parse_month
from registry.problems import Problem, sheet_row
from registry.programmes import get_programme
from registry.schema import (
    Borough,
    Delivery,
    Programme,
    utcnow,
)
from registry.uploads import TEMPLATE_COLUMNS


def _figures_frame(
    programme: str, rows: Sequence[Mapping[str, Any]], first_row: int = sheet_row(0)
) -> pd.DataFrame:
    def text(value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, dt.date):
            return format_month(value)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    frame = pd.DataFrame(
        [
            {"programme": programme} | {c: text(r.get(c)) for c in TEMPLATE_COLUMNS[1:]}
            for r in rows
        ],
        columns=list(TEMPLATE_COLUMNS),
    )
    frame.insert(0, "row", range(first_row, first_row + len(frame)))
    return frame


def _read_frame(
    session: Session, programme_id: int, read: Sequence[Mapping[str, Any]]
) -> pd.DataFrame:
    """What the user loaded (form or grid) as a reference frame for :func:`preview`."""
    ids = boroughs.borough_ids(session)
    records = []
    for r in read:
        info = boroughs.find(str(r["borough"]))
        month = r["month"] if isinstance(r["month"], dt.date) else parse_month(str(r["month"]))
        if info is None:
            continue
        records.append(
            {
                "programme_id": programme_id,
                "borough_id": ids[info.gss_code],
                "mi": month_index(month),
                "id": None,
                "version": int(r["version"]),
                "live": True,
                "opportunities": float(r["opportunities"]),
                "participants": _float(r.get("participants")),
                "spend_gbp": _float(r.get("spend_gbp")),
                "updated_by": "",
            }
        )
    return pd.DataFrame(
        records,
        columns=[
            *KEY,
            "id",
            "version",
            "live",
            "opportunities",
            "participants",
            "spend_gbp",
            "updated_by",
        ],
    )


def _float(value: Any) -> float:
    if value is None or value == "" or (isinstance(value, float) and np.isnan(value)):
        return float("nan")
    return float(value)


def _raise_problems(problems: list[Problem]) -> None:
    if problems:
        raise RegistryError(
            "Nothing was saved: "
            + "; ".join(f"{p.column} {p.value!r}: {p.reason}" for p in problems[:10])
        )


def _live_delivery(
    session: Session, programme: Programme, gss_code: str, month: dt.date, *, lock: bool = False
) -> Delivery | None:
    """The live (not deleted) delivery of ``programme`` in a borough and month; ``lock``: held
    for update until the transaction ends."""
    stmt = (
        select(Delivery)
        .join(Borough)
        .where(
            Delivery.programme_id == programme.id,
            Borough.gss_code == gss_code,
            Delivery.month == month,
            Delivery.deleted_at.is_(None),
        )
    )
    return session.scalar(stmt.with_for_update() if lock else stmt)


def get_delivery(
    session: Session, *, principal: Principal, programme: str, borough: str, month: dt.date
) -> dict[str, Any] | None:
    """The live figures for one programme × borough × month (with their version), or None."""
    require(principal, "deliveries.read")
    prog = get_programme(session, programme)
    info = boroughs.lookup(borough)
    row = _live_delivery(session, prog, info.gss_code, month.replace(day=1))
    if row is None:
        return None
    return {
        "programme": prog.name,
        "borough": info.name,
        "month": row.month,
        "opportunities": row.opportunities,
        "participants": row.participants,
        "spend_gbp": row.spend_gbp,
        "version": row.version,
        "updated_by": row.updated_by,
        "updated_at": row.updated_at,
    }


@write_action("deliveries.write")
def save_delivery(
    session: Session,
    *,
    principal: Principal,
    programme: str,
    borough: str,
    month: dt.date | str,
    opportunities: Any,
    participants: Any = None,
    spend_gbp: Any = None,
    read: Mapping[str, Any] | None = None,
) -> SaveResult:
    """Record or amend one programme × borough × month.

    ``read`` is the row as the user loaded it (from :func:`get_delivery`, with its version), or
    ``None`` when they saw no figures; if the registry's row differs from it now, the save is
    refused with a message naming what changed.
    """
    prog = get_programme(session, programme)
    figures = {
        "borough": borough,
        "month": month,
        "opportunities": opportunities,
        "participants": participants,
        "spend_gbp": spend_gbp,
    }
    checked = check_rows(session, _figures_frame(prog.name, [figures]))
    _raise_problems(checked.problems)
    reference = _read_frame(session, prog.id, [read] if read else [])
    result = preview(session, checked, read=reference, kind="form")
    _raise_problems(result.problems)
    return commit(session, principal=principal, preview=result)


GRID_COLUMNS = ("borough", "month", "opportunities", "participants", "spend_gbp", "version")


def programme_grid(
    session: Session,
    *,
    principal: Principal,
    programme: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pd.DataFrame:
    """A programme's live figures from ``start`` to ``end`` (months; either may be open), one
    row per borough and month, newest month first, for the grid editor."""
    require(principal, "deliveries.read")
    prog = get_programme(session, programme)
    stmt = (
        select(
            Borough.name,
            Delivery.month,
            Delivery.opportunities,
            Delivery.participants,
            Delivery.spend_gbp,
            Delivery.version,
        )
        .join(Borough)
        .where(Delivery.programme_id == prog.id, Delivery.deleted_at.is_(None))
        .order_by(Delivery.month.desc(), Borough.name)
    )
    if start:
        stmt = stmt.where(Delivery.month >= start.replace(day=1))
    if end:
        stmt = stmt.where(Delivery.month <= end)
    frame = pd.DataFrame(session.execute(stmt).all(), columns=list(GRID_COLUMNS))
    # Text even when empty, so rows added in the editor keep the months typed into them.
    frame["month"] = pd.Series([format_month(m) for m in frame["month"]], dtype=object)
    frame["participants"] = pd.to_numeric(frame["participants"]).astype("Int64")
    frame["spend_gbp"] = pd.to_numeric(frame["spend_gbp"].astype(object)).astype(float)
    frame["opportunities"] = frame["opportunities"].astype("Int64")
    frame["version"] = frame["version"].astype("Int64")
    return frame


def _grid_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(k): (None if pd.isna(v) else v) for k, v in rec.items()}
        for rec in frame.to_dict(orient="records")
    ]


def _preview_grid(
    session: Session, programme: str, original: pd.DataFrame, edited: pd.DataFrame
) -> Preview:
    prog = get_programme(session, programme)
    before = {(str(r["borough"]), str(r["month"])): r for r in _grid_records(original)}
    rows = _grid_records(edited)
    changed_positions = []
    for position, rec in enumerate(rows):
        if all(_cell(rec.get(c)) == "" for c in GRID_COLUMNS[:-1]):
            continue  # a row added to the grid and left blank is not a row
        old = before.get((str(rec.get("borough")), str(rec.get("month"))))
        if old is None or any(_cell(old.get(c)) != _cell(rec.get(c)) for c in FIELDS):
            changed_positions.append(position)
    frame = _figures_frame(prog.name, [rows[p] for p in changed_positions], first_row=1)
    frame["row"] = [p + 1 for p in changed_positions]
    checked = _not_shown(session, check_rows(session, frame), original)
    read = [r for r in _grid_records(original) if r.get("version") is not None]
    return preview(session, checked, read=_read_frame(session, prog.id, read), kind="grid")


def _not_shown(session: Session, checked: Checked, original: pd.DataFrame) -> Checked:
    """Refuse grid rows that would record figures the registry already holds but the grid did
    not show (a month outside its range, or recorded since it was loaded): saving them would
    overwrite figures nobody on this screen has seen."""
    rows = checked.rows
    if not len(rows):
        return checked
    shown = {(str(b), str(m)) for b, m in zip(original["borough"], original["month"], strict=True)}
    lo, hi = int(rows["mi"].min()), int(rows["mi"].max())
    existing = existing_rows(session, rows["programme_id"].unique().tolist(), lo, hi)
    live = attach(rows, existing[existing["live"]], "now_")
    hidden = live["now_live"].to_numpy() & np.array(
        [
            (b, format_month(index_month(int(m)))) not in shown
            for b, m in zip(rows["borough"], rows["mi"], strict=True)
        ],
        dtype=bool,
    )
    if not hidden.any():
        return checked
    problems = list(checked.problems)
    for r in live[hidden].itertuples():
        month = format_month(index_month(int(r.mi)))
        problems.append(
            Problem(
                reason=f"{r.borough} already has figures for {month} (opportunities "
                f"{int(r.now_opportunities)}, recorded by {r.now_updated_by}) that the grid does "
                "not show; show that month in the grid to change them.",
                row=int(r.row),
                column="month",
                value=month,
            )
        )
    problems.sort(key=lambda p: p.row or 0)
    return Checked(
        rows[~hidden].reset_index(drop=True),
        problems,
        checked.rows_read,
        checked.rejected + int(hidden.sum()),
    )


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float | Decimal) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def preview_grid(
    session: Session,
    *,
    principal: Principal,
    programme: str,
    original: pd.DataFrame,
    edited: pd.DataFrame,
) -> Preview:
    """What saving the edited grid would do (grid rows are numbered from 1)."""
    require(principal, "deliveries.write")
    return _preview_grid(session, programme, original, edited)


@write_action("deliveries.write")
def save_grid(
    session: Session,
    *,
    principal: Principal,
    programme: str,
    original: pd.DataFrame,
    edited: pd.DataFrame,
) -> SaveResult:
    """Save the rows of ``edited`` that differ from ``original`` (the grid as loaded).

    Rows whose registry figures changed since the grid was loaded are refused, naming the change.
    """
    result = _preview_grid(session, programme, original, edited)
    if result.problems:
        raise RegistryError(
            "Nothing was saved: "
            + "; ".join(
                f"grid row {p.row}, {p.column} {p.value!r}: {p.reason}"
                for p in result.problems[:10]
            )
        )
    return commit(session, principal=principal, preview=result)


@write_action("deliveries.write")
def delete_delivery(
    session: Session,
    *,
    principal: Principal,
    programme: str,
    borough: str,
    month: dt.date,
    reason: str,
    version: int | None = None,
) -> None:
    """Soft-delete one delivery: it stays in the database with when and why, and is audited."""
    if not (reason or "").strip():
        raise RegistryError("Give a reason for deleting these figures.")
    prog = get_programme(session, programme)
    info = boroughs.lookup(borough)
    month = month.replace(day=1)
    row = _live_delivery(session, prog, info.gss_code, month, lock=True)
    if row is None:
        raise NotFoundError(
            f"{prog.name} has no figures for {info.name} in {format_month(month)} to delete."
        )
    if month_index(month) in signed_off_locked(session):
        raise ConflictError(
            f"{format_month(month)} is signed off: an admin must reopen it before it can change."
        )
    if version is not None and row.version != version:
        raise ConflictError(
            f"These figures were changed by {row.updated_by} since you read them (now "
            f"opportunities {row.opportunities}); nothing was deleted. Reload and try again."
        )
    before = json_figures(
        float(row.opportunities), _float(row.participants), _float(row.spend_gbp)
    ) | {"version": row.version}
    now = utcnow()
    stmt = (
        update(Delivery.__table__)
        .where(Delivery.__table__.c.id == row.id, Delivery.__table__.c.version == row.version)
        .values(
            deleted_at=now,
            deleted_reason=reason.strip(),
            version=row.version + 1,
            updated_at=now,
            updated_by=principal.username,
        )
    )
    if db.rowcount(session.execute(stmt)) != 1:
        raise ConflictError("These figures changed while deleting; reload and try again.")
    audit.record(
        session,
        actor=principal,
        action="delete",
        entity="delivery",
        entity_id=row.id,
        before=before,
        after={"deleted_reason": reason.strip(), "version": row.version + 1},
        detail=f"{prog.name}, {info.name}, {format_month(month)}",
    )
    session.expire(row)


# --- export ----------------------------------------------------------------------------------


def export_frame(session: Session, *, principal: Principal) -> pd.DataFrame:
    """Every live delivery in the upload template's columns (re-importing it changes nothing)."""
    require(principal, "deliveries.read")
    stmt = (
        select(
            Programme.name,
            Borough.name,
            Delivery.month,
            Delivery.opportunities,
            Delivery.participants,
            Delivery.spend_gbp,
        )
        .join(Programme, Delivery.programme_id == Programme.id)
        .join(Borough, Delivery.borough_id == Borough.id)
        .where(Delivery.deleted_at.is_(None))
        .order_by(Programme.name, Delivery.month, Borough.name)
    )
    frame = pd.DataFrame(session.execute(stmt).all(), columns=list(TEMPLATE_COLUMNS))
    frame["month"] = [format_month(m) for m in frame["month"]]
    frame["participants"] = pd.to_numeric(frame["participants"]).astype("Int64")
    frame["spend_gbp"] = [
        "" if v is None else f"{Decimal(v):.2f}" for v in frame["spend_gbp"].tolist()
    ]
    return frame
