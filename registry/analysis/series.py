"""Monthly outcome series summed by the database, rolling totals and window totals.

The data side of :mod:`registry.analysis.trends`, kept free of statsmodels and scipy so that
pages needing only figures (Overview, Explore) do not pay about 0.7 s to import them.
Definitions are stated in :mod:`registry.analysis.trends`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.analysis.panel import borough_codes
from registry.analysis.result import WindowTotal
from registry.auth import Principal, require
from registry.outcomes.measures import get_measure
from registry.outcomes.sources import of_record
from registry.periods import as_date, month_range, rolling_window
from registry.schema import Borough, OutcomeCount, UnallocatedCount

LONDON = "London"


def _month_frame(rows: Sequence[Sequence[object]], name: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "month": [as_date(m) for m, _ in rows],
            name: np.array([int(str(c)) for _, c in rows], dtype=np.int64),
        }
    ).set_index("month")


def monthly_series(
    session: Session,
    *,
    principal: Principal,
    measure: str,
    borough: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pd.DataFrame:
    """Monthly totals of ``measure`` for London (default) or one borough, summed by the database.

    Columns ``month``, ``boroughs``, ``unallocated`` and ``count`` (London: boroughs plus
    unallocated; a borough: its own counts, unallocated 0). Only months with a stored count appear.
    """
    require(principal, "outcomes.read")
    outcome = get_measure(session, measure)
    flt = [of_record(session, OutcomeCount, outcome.id)]
    if start is not None:
        flt.append(OutcomeCount.month >= start)
    if end is not None:
        flt.append(OutcomeCount.month <= end)
    stmt = select(OutcomeCount.month, func.sum(OutcomeCount.count)).where(*flt)
    if borough is not None:
        code = borough_codes([borough])[0]
        stmt = stmt.join(Borough, Borough.id == OutcomeCount.borough_id).where(
            Borough.gss_code == code
        )
    rows = session.execute(stmt.group_by(OutcomeCount.month)).all()
    frame = _month_frame(rows, "boroughs")
    if borough is None:
        uflt = [of_record(session, UnallocatedCount, outcome.id)]
        if start is not None:
            uflt.append(UnallocatedCount.month >= start)
        if end is not None:
            uflt.append(UnallocatedCount.month <= end)
        urows = session.execute(
            select(UnallocatedCount.month, func.sum(UnallocatedCount.count))
            .where(*uflt)
            .group_by(UnallocatedCount.month)
        ).all()
        frame = frame.join(_month_frame(urows, "unallocated"), how="outer")
    else:
        frame["unallocated"] = 0
    frame = frame.fillna(0).astype(int).sort_index()
    frame["count"] = frame["boroughs"] + frame["unallocated"]
    return frame.reset_index()


def borough_series(
    session: Session,
    *,
    principal: Principal,
    measure: str,
    start: dt.date | None = None,
    end: dt.date,
) -> dict[str, pd.DataFrame]:
    """Every borough's :func:`monthly_series` from ``start`` (default: the first stored) to
    ``end``, keyed by GSS code, from one grouped query (a borough with no stored count is
    absent)."""
    require(principal, "outcomes.read")
    outcome = get_measure(session, measure)
    flt = [of_record(session, OutcomeCount, outcome.id), OutcomeCount.month <= end]
    if start is not None:
        flt.append(OutcomeCount.month >= start)
    rows = session.execute(
        select(Borough.gss_code, OutcomeCount.month, func.sum(OutcomeCount.count))
        .join(Borough, Borough.id == OutcomeCount.borough_id)
        .where(*flt)
        .group_by(Borough.gss_code, OutcomeCount.month)
        .order_by(Borough.gss_code, OutcomeCount.month)
    ).all()
    frame = pd.DataFrame(
        {
            "area": [code for code, _, _ in rows],
            "month": [as_date(m) for _, m, _ in rows],
            "boroughs": np.array([int(c) for _, _, c in rows], dtype=np.int64),
        }
    )
    frame["unallocated"] = 0
    frame["count"] = frame["boroughs"]
    return {
        code: part.drop(columns="area").reset_index(drop=True)
        for code, part in frame.groupby(frame["area"], sort=False)
    }


def rolling_totals(series: pd.DataFrame, months: int = 12) -> pd.DataFrame:
    """Rolling ``months``-month totals, given only where all ``months`` months have data.

    ``series`` has ``month`` and ``count``; missing months are not treated as zero.
    """
    if series.empty:
        return pd.DataFrame(columns=["month", "count", f"rolling_{months}"])
    full = month_range(series["month"].min(), series["month"].max())
    counts = series.set_index("month")["count"].reindex(full)
    rolled = counts.rolling(months, min_periods=months).sum()
    return pd.DataFrame(
        {"month": full, "count": counts.to_numpy(), f"rolling_{months}": rolled.to_numpy()}
    )


def window_total(series: pd.DataFrame, end: dt.date, months: int) -> WindowTotal:
    """Total of the ``months`` whole months ending with ``end``."""
    window = rolling_window(end, months)
    # On the columns' arrays, not by filtering the frame: a borough comparison asks for several
    # hundred windows, and a frame filter costs a millisecond each.
    month = series["month"].to_numpy()
    inside = (month >= window.start) & (month <= window.end)
    return WindowTotal(
        start=window.start,
        end=window.end,
        count=int(series["count"].to_numpy()[inside].sum()),
        unallocated=(
            int(series["unallocated"].to_numpy()[inside].sum()) if "unallocated" in series else 0
        ),
        months_with_data=len(set(month[inside])),
    )
