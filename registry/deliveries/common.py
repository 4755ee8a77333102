"""Limits, names and helpers every step of recording deliveries shares."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import db
from registry.periods import index_month, month_index
from registry.schema import Delivery, MonthSignOff

MAX_COUNT = 1_000_000
MAX_SPEND = Decimal("999999999999.99")
# Plausibility: compare with the median of up to this many earlier months, needing at least
# PLAUSIBILITY_MIN_MONTHS of them, and warn when the figure is this improbable under Poisson.
PLAUSIBILITY_MONTHS = 6
PLAUSIBILITY_MIN_MONTHS = 3
PLAUSIBILITY_P = 0.001
PLAUSIBILITY_MIN_RATE = 1.0
DUE_DAY = 15  # a month's return is due by this day of the following month
FIELDS = ("opportunities", "participants", "spend_gbp")
KEY = ["programme_id", "borough_id", "mi"]  # a delivery row's identity: programme × borough × month


def current_mi() -> int:
    """This month's index (:func:`registry.periods.month_index`)."""
    return month_index(dt.date.today())


def existing_rows(
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


def _key(frame: pd.DataFrame) -> np.ndarray:
    """Each row's (programme, borough, month) as one int64: matching on it is several times
    faster than a join on three columns. Month indexes stay below 2**20 (the year 87,000) and
    borough ids below 2**12 (there are 33 boroughs), so the parts cannot overlap."""
    return (
        (frame["programme_id"].to_numpy(dtype=np.int64) << 32)
        | (frame["borough_id"].to_numpy(dtype=np.int64) << 20)
        | frame["mi"].to_numpy(dtype=np.int64)
    )


def attach(rows: pd.DataFrame, existing: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """``rows`` with the matching ``existing`` row's columns, prefixed; a row with no match gets
    ``live`` False, ``version`` 0 and missing values. ``existing`` has each key once (the
    table's unique constraint)."""
    at = pd.Index(_key(existing)).get_indexer(pd.Index(_key(rows)))
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


def signed_off(session: Session) -> set[int]:
    """The month indexes an admin has signed off."""
    return {month_index(m) for m in session.scalars(select(MonthSignOff.month))}


def signed_off_locked(session: Session) -> set[int]:
    """The signed-off months, read under the sign-off lock held until this write commits.

    Writers share the lock; signing off or reopening takes it alone. So a month cannot be signed
    off between this check and the commit of the change it lets through (on PostgreSQL, where
    transactions run side by side; SQLite has one writer at a time).
    """
    db.advisory_lock(session, db.SIGN_OFF_LOCK, shared=True)
    signed = signed_off(session)
    db.fault_pause("sign_off_checked")
    return signed


def json_figures(opportunities: float, participants: float, spend: float) -> dict[str, Any]:
    """Figures as an audit event stores them: whole counts, spend as text to the penny, None for a
    blank (NaN)."""
    return {
        "opportunities": None if np.isnan(opportunities) else int(opportunities),
        "participants": None if np.isnan(participants) else int(participants),
        "spend_gbp": None if np.isnan(spend) else f"{spend:.2f}",
    }
