"""Headline figures for the home page: what the registry holds and how fresh it is.

The database does the adding up; this module returns small plain objects.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.auth import Principal, require
from registry.outcomes.sources import months_of_record, of_record
from registry.periods import Window, as_date, rolling_window
from registry.schema import (
    Delivery,
    ImportBatch,
    OutcomeCount,
    OutcomeMeasure,
    Programme,
    UnallocatedCount,
)
from registry.windows import is_whole, stored_words


@dataclass(frozen=True)
class MeasureTotal:
    code: str
    label: str
    unit: str
    window: Window | None
    total: int
    unallocated: int
    months_with_data: int = 0  # of the window's 12: fewer means the total is part of a year

    @property
    def stored_note(self) -> str:
        """Empty when the window is whole, else how many of its months are stored."""
        if self.window is None or is_whole(
            self.window.start, self.window.end, self.months_with_data
        ):
            return ""
        words = stored_words(self.window.start, self.window.end, self.months_with_data)
        return f"{words[0].upper()}{words[1:]}, so this is part of a year."


@dataclass(frozen=True)
class HomeFigures:
    opportunities_to_date: int
    programmes: int
    first_delivery_month: dt.date | None
    last_delivery_month: dt.date | None
    measures: list[MeasureTotal]
    last_import_at: dt.datetime | None


def measure_last_12_months(session: Session, measure: OutcomeMeasure) -> MeasureTotal:
    """London total for the 12 months ending with the newest month holding data for ``measure``
    (its source of record's counts).

    London means boroughs plus London unallocated, so the total matches the publisher's; the
    unallocated part is reported beside it.
    """
    _, latest = months_of_record(session, measure.id)
    if latest is None:
        return MeasureTotal(measure.code, measure.label, measure.unit, None, 0, 0)
    record = of_record(session, OutcomeCount, measure.id)
    record_u = of_record(session, UnallocatedCount, measure.id)
    window = rolling_window(latest, 12)
    boroughs, months = session.execute(
        select(
            func.coalesce(func.sum(OutcomeCount.count), 0),
            func.count(func.distinct(OutcomeCount.month)),
        ).where(
            OutcomeCount.measure_id == measure.id,
            OutcomeCount.month.between(window.start, window.end),
            record,
        )
    ).one()
    unallocated = session.scalar(
        select(func.coalesce(func.sum(UnallocatedCount.count), 0)).where(
            UnallocatedCount.measure_id == measure.id,
            UnallocatedCount.month.between(window.start, window.end),
            record_u,
        )
    )
    return MeasureTotal(
        measure.code,
        measure.label,
        measure.unit,
        window,
        int(boroughs or 0) + int(unallocated or 0),
        int(unallocated or 0),
        int(months),
    )


def home_figures(session: Session, *, principal: Principal) -> HomeFigures:
    require(principal, "outcomes.read")
    live = Delivery.deleted_at.is_(None)
    opportunities, first, last = session.execute(
        select(
            func.coalesce(func.sum(Delivery.opportunities), 0),
            func.min(Delivery.month),
            func.max(Delivery.month),
        ).where(live)
    ).one()
    measures = session.scalars(select(OutcomeMeasure).order_by(OutcomeMeasure.id)).all()
    return HomeFigures(
        opportunities_to_date=int(opportunities or 0),
        programmes=int(session.scalar(select(func.count()).select_from(Programme)) or 0),
        first_delivery_month=None if first is None else as_date(first),
        last_delivery_month=None if last is None else as_date(last),
        measures=[measure_last_12_months(session, m) for m in measures],
        last_import_at=session.scalar(select(func.max(ImportBatch.created_at))),
    )
