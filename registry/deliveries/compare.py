"""Step 2: valid rows compared with what the registry holds: added, amended or unchanged, with
plausibility warnings."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import db
from registry.auth import Principal, require
from registry.deliveries.common import (
    _KEY,
    PLAUSIBILITY_MIN_MONTHS,
    PLAUSIBILITY_MIN_RATE,
    PLAUSIBILITY_MONTHS,
    PLAUSIBILITY_P,
)
from registry.deliveries.validate import Checked, check_rows
from registry.models import (
    Delivery,
    MonthSignOff,
)
from registry.periods import format_month, index_month, month_index
from registry.uploads import Problem, Sheet, read_upload

STATUSES = ("added", "amended", "unchanged")


@dataclass(frozen=True)
class Preview:
    """What a save would do. ``rows`` carries each valid row's status and the values it was
    compared with (``was_*``), which :func:`commit` checks again before writing."""

    rows: pd.DataFrame
    problems: list[Problem]
    warnings: list[Problem]
    rows_read: int
    rejected: int
    file_name: str | None = None
    sha256: str | None = None
    format: str | None = None
    kind: str = "upload"
    #: True when the file itself was refused (unreadable, empty, wrong header): no row was read.
    refused: bool = False

    def count(self, status: str) -> int:
        return int((self.rows["status"] == status).sum()) if len(self.rows) else 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> dict[str, Any]:
        return {
            "added": self.count("added"),
            "amended": self.count("amended"),
            "unchanged": self.count("unchanged"),
            "rejected": self.rejected,
            "errors": [p.as_dict() for p in self.problems],
        }

    def table(self) -> pd.DataFrame:
        """The rows as a person reads them: status, figures, what they replace, warnings."""
        if not len(self.rows):
            return pd.DataFrame(columns=["row", "status", "programme", "borough", "month"])
        r = self.rows
        return pd.DataFrame(
            {
                "row": r["row"],
                "status": r["status"],
                "programme": r["programme"],
                "borough": r["borough"],
                "month": [format_month(index_month(int(m))) for m in r["mi"]],
                "opportunities": r["opportunities"],
                "participants": r["participants"].astype("Int64"),
                "spend_gbp": r["spend_gbp"],
                "was": [_was_text(row) for row in r.itertuples()],
                "warning": r["warning"],
            }
        )


def _was_text(row: Any) -> str:
    if row.status != "amended" or not row.was_live:
        return ""
    parts = [f"opportunities {int(row.was_opportunities)}"]
    if not np.isnan(row.was_participants):
        parts.append(f"participants {int(row.was_participants)}")
    if not np.isnan(row.was_spend_gbp):
        parts.append(f"spend £{row.was_spend_gbp:,.2f}")
    return ", ".join(parts)


def _existing(
    session: Session, programme_ids: Sequence[int], lo_mi: int, hi_mi: int, lock: bool = False
) -> pd.DataFrame:
    """Deliveries (live or deleted) of these programmes between two month indexes."""
    t = Delivery.__table__
    stmt = select(
        t.c.id,
        t.c.programme_id,
        t.c.borough_id,
        t.c.month,
        t.c.opportunities,
        t.c.participants,
        t.c.spend_gbp,
        t.c.version,
        t.c.deleted_at,
        t.c.updated_by,
    ).where(
        t.c.programme_id.in_([int(p) for p in programme_ids]),
        t.c.month.between(index_month(lo_mi), index_month(hi_mi)),
    )
    if lock:
        # Rows are locked in one order (by id) in every transaction, so two saves that touch
        # the same rows wait for each other instead of deadlocking.
        stmt = stmt.order_by(t.c.id).with_for_update()
    got = session.execute(stmt).all()
    frame = pd.DataFrame(
        got,
        columns=[
            "id",
            "programme_id",
            "borough_id",
            "month",
            "opportunities",
            "participants",
            "spend_gbp",
            "version",
            "deleted_at",
            "updated_by",
        ],
    )
    frame["mi"] = [month_index(m) for m in frame["month"]]
    frame["live"] = frame["deleted_at"].isna()
    frame["participants"] = pd.to_numeric(frame["participants"]).astype(float)
    frame["spend_gbp"] = pd.to_numeric(frame["spend_gbp"].astype(object)).astype(float)
    frame["opportunities"] = pd.to_numeric(frame["opportunities"]).astype(float)
    return frame.drop(columns=["month", "deleted_at"])


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality where two missing values count as equal."""
    av, bv = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
    return (av == bv) | (np.isnan(av) & np.isnan(bv))


def _key(frame: pd.DataFrame) -> np.ndarray:
    """Each row's (programme, borough, month) as one int64: matching on it is several times
    faster than a join on three columns. Month indexes stay below 2**20 (the year 87,000) and
    borough ids below 2**12 (there are 33 boroughs), so the parts cannot overlap."""
    return (
        (frame["programme_id"].to_numpy(dtype=np.int64) << 32)
        | (frame["borough_id"].to_numpy(dtype=np.int64) << 20)
        | frame["mi"].to_numpy(dtype=np.int64)
    )


def _attach(rows: pd.DataFrame, existing: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """``rows`` with the matching ``existing`` row's columns, prefixed; a row with no match gets
    ``live`` False, ``version`` 0 and missing values. ``existing`` has each key once (the
    table's unique constraint)."""
    at = pd.Index(_key(existing)).get_indexer(_key(rows))
    found = at >= 0
    source = at[found]

    def column(name: str, missing: Any, dtype: Any) -> np.ndarray:
        out = np.full(len(rows), missing, dtype=dtype)
        out[found] = existing[name].to_numpy(dtype=dtype)[source]
        return out

    return rows.assign(
        **{
            f"{prefix}id": column("id", np.nan, float),
            f"{prefix}version": column("version", 0, np.int64),
            f"{prefix}live": column("live", False, bool),
            f"{prefix}opportunities": column("opportunities", np.nan, float),
            f"{prefix}participants": column("participants", np.nan, float),
            f"{prefix}spend_gbp": column("spend_gbp", np.nan, float),
            f"{prefix}updated_by": column("updated_by", np.nan, object),
        }
    )


def _signed_off(session: Session) -> set[int]:
    return {month_index(m) for m in session.scalars(select(MonthSignOff.month))}


def _signed_off_locked(session: Session) -> set[int]:
    """The signed-off months, read under the sign-off lock held until this write commits.

    Writers share the lock; signing off or reopening takes it alone. So a month cannot be signed
    off between this check and the commit of the change it lets through (on PostgreSQL, where
    transactions run side by side; SQLite has one writer at a time).
    """
    db.advisory_lock(session, db.SIGN_OFF_LOCK, shared=True)
    signed = _signed_off(session)
    db.fault_pause("sign_off_checked")
    return signed


def _plausibility(history: pd.DataFrame, rows: pd.DataFrame) -> list[str]:
    """A reason in words for each row whose opportunities are far from its recent months.

    The reference is the median of the programme's figures in that borough over the previous
    six months (at least three of them recorded), used as the rate of a Poisson count; a figure
    with a one-sided tail probability below 0.001 is flagged. Counts are not normal, so this is
    not a z-score; the median keeps one odd month from moving the reference.
    """
    if not len(rows):
        return []
    live = history[history["live"]]
    lookup = live.set_index(_KEY)["opportunities"]
    earlier = np.full((len(rows), PLAUSIBILITY_MONTHS), np.nan)
    if len(lookup):
        for k in range(1, PLAUSIBILITY_MONTHS + 1):
            index = pd.MultiIndex.from_arrays(
                [rows["programme_id"], rows["borough_id"], rows["mi"] - k]
            )
            earlier[:, k - 1] = lookup.reindex(index).to_numpy(dtype=float)
    known = (~np.isnan(earlier)).sum(axis=1)
    # Only rows with enough history can be flagged, so only they need a median and a test.
    enough = np.flatnonzero(known >= PLAUSIBILITY_MIN_MONTHS)
    median = np.nanmedian(earlier[enough], axis=1)
    rate = np.maximum(median, PLAUSIBILITY_MIN_RATE)
    x = rows["opportunities"].to_numpy(dtype=float)[enough]
    high = stats.poisson.sf(x - 1, rate)
    low = stats.poisson.cdf(x, rate)
    out = [""] * len(rows)
    for j in np.flatnonzero((high < PLAUSIBILITY_P) | (low < PLAUSIBILITY_P)):
        direction = "far above" if high[j] < PLAUSIBILITY_P else "far below"
        out[enough[j]] = (
            f"{int(x[j]):,} opportunities is {direction} this programme's recent figures in "
            f"this borough (median {median[j]:g} over the previous {int(known[enough[j]])} "
            f"recorded months; a chance below 1 in 1,000 if nothing changed). Check it is right."
        )
    return out


def preview(
    session: Session,
    checked: Checked,
    *,
    read: pd.DataFrame | None = None,
    file_name: str | None = None,
    sha256: str | None = None,
    fmt: str | None = None,
    kind: str = "upload",
) -> Preview:
    """Classify checked rows against the registry (or against ``read``, what the user saw).

    ``read`` (from the form or grid) has the key columns and ``version``, ``live`` and the
    figures as the user loaded them; without it the registry's current rows are the reference.
    """
    rows = checked.rows
    problems = list(checked.problems)
    if not len(rows):
        empty = rows.assign(status=pd.Series(dtype=str), warning=pd.Series(dtype=str))
        return Preview(
            empty, problems, [], checked.rows_read, checked.rejected, file_name, sha256, fmt, kind
        )
    lo, hi = int(rows["mi"].min()), int(rows["mi"].max())
    existing = _existing(
        session, rows["programme_id"].unique().tolist(), lo - PLAUSIBILITY_MONTHS, hi
    )
    reference = existing if read is None else read
    rows = _attach(rows, reference, "was_")
    same = (
        _same(rows["opportunities"], rows["was_opportunities"])
        & _same(rows["participants"], rows["was_participants"])
        & _same(rows["spend_gbp"], rows["was_spend_gbp"])
    )
    live = rows["was_live"].to_numpy()
    rows["status"] = np.where(~live, "added", np.where(same, "unchanged", "amended"))
    rejected = checked.rejected
    signed = _signed_off(session)
    if signed:
        blocked = rows["mi"].isin(signed) & (rows["status"] != "unchanged")
        for r in rows[blocked].itertuples():
            problems.append(
                Problem(
                    reason="This month is signed off: an admin must reopen it before it can "
                    "change.",
                    row=int(r.row),
                    column="month",
                    value=format_month(index_month(int(r.mi))),
                )
            )
        rejected += int(blocked.sum())
        rows = rows[~blocked].reset_index(drop=True)
    # Figures already in the registry are not news: only what would change is checked.
    rows["warning"] = (
        np.where(rows["status"] != "unchanged", _plausibility(existing, rows), "")
        if len(rows)
        else []
    )
    warnings = [
        Problem(
            reason=r.warning, row=int(r.row), column="opportunities", value=str(r.opportunities)
        )
        for r in rows[rows["warning"] != ""].itertuples()
    ]
    problems.sort(key=lambda p: p.row or 0)
    return Preview(
        rows, problems, warnings, checked.rows_read, rejected, file_name, sha256, fmt, kind
    )


def preview_upload(
    session: Session, *, principal: Principal, content: bytes, file_name: str
) -> Preview:
    """Read, validate and classify an uploaded file; nothing is written."""
    require(principal, "deliveries.write")
    sheet: Sheet = read_upload(content, file_name)
    digest = hashlib.sha256(content).hexdigest()
    if sheet.problems:
        return Preview(
            _empty_rows(),
            sheet.problems,
            [],
            0,
            0,
            file_name,
            digest,
            sheet.format or None,
            refused=True,
        )
    checked = check_rows(session, sheet.frame)
    return preview(session, checked, file_name=file_name, sha256=digest, fmt=sheet.format)


def _empty_rows() -> pd.DataFrame:
    return pd.DataFrame(columns=["row", *_KEY, "status", "warning"])
