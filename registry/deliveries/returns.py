"""Completeness of monthly returns, and signing months off (and reopening them)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import audit, db
from registry.auth import Principal, require, write_action
from registry.deliveries.common import DUE_DAY, current_mi, signed_off
from registry.errors import ConflictError, NotFoundError, RegistryError
from registry.periods import check_period, format_month, index_month, month_index
from registry.schema import (
    Borough,
    Delivery,
    MonthSignOff,
    Programme,
)

RETURN_STATUSES = ("received", "late", "backfilled", "missing", "not yet due")


def completeness(
    session: Session,
    *,
    principal: Principal,
    start: dt.date,
    end: dt.date,
    today: dt.date | None = None,
) -> pd.DataFrame:
    """Each expected return (programme × borough × month) between ``start`` and ``end``.

    A programme is expected to report every month it runs for every borough it has ever reported
    in. A return is due by the 15th of the following month; ``status`` is ``received`` (arrived
    by the due date), ``late`` (arrived after it), ``backfilled`` (past figures loaded as
    history, so no arrival to judge), ``missing`` (due date passed, nothing received) or
    ``not yet due``. ``received`` is the day the return arrived.
    """
    require(principal, "deliveries.read")
    check_period(start, end)
    today = today or dt.date.today()
    first, last = month_index(start), month_index(end)
    pairs = session.execute(
        select(Delivery.programme_id, Delivery.borough_id)
        .where(Delivery.deleted_at.is_(None))
        .distinct()
    ).all()
    programmes = {p.id: p for p in session.scalars(select(Programme))}
    names = dict(session.execute(select(Borough.id, Borough.name)).tuples().all())
    got = session.execute(
        select(
            Delivery.programme_id,
            Delivery.borough_id,
            Delivery.month,
            Delivery.received_on,
            Delivery.backfill,
        ).where(
            Delivery.deleted_at.is_(None),
            Delivery.month.between(index_month(first), index_month(last)),
        )
    ).all()
    received = {(p, b, month_index(m)): (on, back) for p, b, m, on, back in got}
    signed = signed_off(session)
    records = []
    for pid, bid in pairs:
        prog = programmes[pid]
        lo = max(first, month_index(prog.start_date))
        hi = min(last, month_index(prog.end_date) if prog.end_date else last)
        for mi in range(lo, hi + 1):
            month = index_month(mi)
            due = due_date(month)
            arrived, backfill = received.get((pid, bid, mi), (None, False))
            if arrived is None:
                status = "missing" if today > due else "not yet due"
            elif backfill:
                status = "backfilled"
            else:
                status = "late" if arrived > due else "received"
            records.append(
                {
                    "programme": prog.name,
                    "borough": names[bid],
                    "month": format_month(month),
                    "due": due,
                    "status": status,
                    "received": None if arrived is None or backfill else arrived,
                    "signed_off": mi in signed,
                }
            )
    frame = pd.DataFrame(
        records,
        columns=["programme", "borough", "month", "due", "status", "received", "signed_off"],
    )
    return frame.sort_values(["month", "programme", "borough"]).reset_index(drop=True)


def due_date(month: dt.date) -> dt.date:
    """The day a month's return is due: the 15th of the following month."""
    return index_month(month_index(month) + 1).replace(day=DUE_DAY)


def month_returns(
    session: Session, *, principal: Principal, month: dt.date, today: dt.date | None = None
) -> dict[str, int]:
    """How many of ``month``'s expected returns are in each status (see :func:`completeness`),
    every status present with 0 if none; what an admin should know before signing it off."""
    month = month.replace(day=1)
    frame = completeness(session, principal=principal, start=month, end=month, today=today)
    counts = frame["status"].value_counts()
    return {status: int(counts.get(status, 0)) for status in RETURN_STATUSES}


def never_reported(
    session: Session, *, principal: Principal, start: dt.date, end: dt.date
) -> list[str]:
    """Programmes running between ``start`` and ``end`` that have never reported a delivery.

    :func:`completeness` expects returns only for boroughs a programme has reported in, so these
    programmes have no expected return at all; callers name them rather than implying none is due.
    """
    require(principal, "deliveries.read")
    check_period(start, end)
    reported = select(Delivery.programme_id).where(Delivery.deleted_at.is_(None))
    return list(
        session.scalars(
            select(Programme.name)
            .where(
                Programme.id.not_in(reported),
                Programme.start_date <= index_month(month_index(end) + 1) - dt.timedelta(days=1),
                (Programme.end_date.is_(None)) | (Programme.end_date >= start),
            )
            .order_by(Programme.name)
        )
    )


def signed_off_months(session: Session) -> list[dict[str, Any]]:
    return [
        {
            "month": format_month(s.month),
            "signed_off_by": s.signed_off_by,
            "at": s.signed_off_at,
            "note": s.note,
        }
        for s in session.scalars(select(MonthSignOff).order_by(MonthSignOff.month))
    ]


@write_action("months.sign_off")
def sign_off_month(
    session: Session, *, principal: Principal, month: dt.date, note: str | None = None
) -> MonthSignOff:
    """Sign a month's delivery returns off: changes to it then need it reopened."""
    month = month.replace(day=1)
    if month_index(month) > current_mi():
        raise RegistryError(f"{format_month(month)} has not happened yet; it cannot be signed off.")
    db.advisory_lock(session, db.SIGN_OFF_LOCK)  # waits for writes in progress to commit
    if session.scalar(select(MonthSignOff).where(MonthSignOff.month == month)) is not None:
        raise ConflictError(f"{format_month(month)} is already signed off.")
    sign_off = MonthSignOff(month=month, signed_off_by=principal.username, note=note or None)
    session.add(sign_off)
    session.flush()
    audit.record(
        session,
        actor=principal,
        action="sign_off",
        entity="month_sign_off",
        entity_id=format_month(month),
        after={"month": format_month(month), "note": note},
    )
    return sign_off


@write_action("months.sign_off")
def reopen_month(session: Session, *, principal: Principal, month: dt.date, reason: str) -> None:
    """Reopen a signed-off month so its figures can change again; the reason is audited."""
    if not (reason or "").strip():
        raise RegistryError("Give a reason for reopening the month.")
    month = month.replace(day=1)
    db.advisory_lock(session, db.SIGN_OFF_LOCK)
    sign_off = session.scalar(select(MonthSignOff).where(MonthSignOff.month == month))
    if sign_off is None:
        raise NotFoundError(f"{format_month(month)} is not signed off.")
    before = {
        "month": format_month(month),
        "signed_off_by": sign_off.signed_off_by,
        "signed_off_at": sign_off.signed_off_at,
        "note": sign_off.note,
    }
    session.delete(sign_off)
    session.flush()
    audit.record(
        session,
        actor=principal,
        action="reopen",
        entity="month_sign_off",
        entity_id=format_month(month),
        before=before,
        detail=reason.strip(),
    )
