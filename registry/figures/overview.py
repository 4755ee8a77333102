"""Overview: opportunities delivered in a period and each outcome's last 12 months against a
year earlier and against 2019, every comparison only from whole windows (:mod:`registry.windows`).

Outcome totals are London's (boroughs plus unallocated, matching the publisher).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.analysis.panel import stored_measures
from registry.analysis.series import monthly_series, window_total
from registry.auth import Principal, require
from registry.outcomes.measures import SeriesBreak, series_breaks
from registry.periods import add_months, check_period, rolling_window
from registry.schema import Delivery
from registry.windows import is_whole, not_given, whole_only


@dataclass(frozen=True)
class OutcomeTile:
    """One outcome's last 12 months against the same months a year earlier and against 2019."""

    code: str
    label: str
    window_start: dt.date
    window_end: dt.date
    count: int
    year_earlier: int | None
    change_year_pct: float | None
    count_2019: int | None
    change_2019_pct: float | None
    months_with_data: int = 12  # of the 12 in the window; a change needs all 12
    # Breaks in the series from the earliest comparison window's start to this window's end.
    series_breaks: tuple[SeriesBreak, ...] = ()

    @property
    def stored_note(self) -> str:
        """Empty when the window is whole, else why no change is given (registry.windows)."""
        if is_whole(self.window_start, self.window_end, self.months_with_data):
            return ""
        return not_given(self.window_start, self.window_end, self.months_with_data)


@dataclass(frozen=True)
class Overview:
    """Headline tiles for the period chosen."""

    start: dt.date
    end: dt.date
    opportunities: int
    programmes_delivering: int
    outcomes: list[OutcomeTile]


def _pct(now: int, then: int | None) -> float | None:
    if not then:
        return None
    return (now - then) / then * 100.0


def overview(session: Session, *, principal: Principal, start: dt.date, end: dt.date) -> Overview:
    """Opportunities delivered from ``start`` to ``end``; each outcome's 12 months ending ``end``.

    Outcome totals are London's (boroughs plus unallocated, matching the publisher). The
    comparison windows are the same 12 months one year earlier and calendar year 2019; a
    comparison is empty when its window is not fully stored.
    """
    require(principal, "outcomes.read")
    check_period(start, end)
    live = [Delivery.deleted_at.is_(None), Delivery.month.between(start, end)]
    opportunities, programmes = session.execute(
        select(
            func.coalesce(func.sum(Delivery.opportunities), 0),
            func.count(func.distinct(Delivery.programme_id)),
        ).where(*live)
    ).one()
    tiles = []
    for code, label in stored_measures(session):
        series = monthly_series(session, principal=principal, measure=code)
        window = rolling_window(end, 12)
        current = window_total(series, window.end, 12)
        if current.months_with_data == 0:
            continue
        earlier = window_total(series, add_months(window.end, -12), 12)
        y2019 = window_total(series, dt.date(2019, 12, 1), 12)
        year_earlier = earlier.count if earlier.whole else None
        count_2019 = y2019.count if y2019.whole else None
        now = [(current.start, current.end, current.months_with_data)]
        crossed = series_breaks(session, code, min(earlier.start, y2019.start), current.end)
        tiles.append(
            OutcomeTile(
                code,
                label,
                current.start,
                current.end,
                current.count,
                year_earlier,
                whole_only(_pct(current.count, year_earlier), now),
                count_2019,
                whole_only(_pct(current.count, count_2019), now),
                current.months_with_data,
                tuple(crossed),
            )
        )
    return Overview(start, end, int(opportunities or 0), int(programmes or 0), tiles)
