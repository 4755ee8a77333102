"""A small registry with hand-computable figures, for the analysis tests.

Camden counts equal the month number (January 1 ... December 12), Hackney counts are 2, London
unallocated (``Unknown``) is 1 a month; March 2022 has no stored count at all. Programme P1
(stream S1) delivers 10 a month in Camden from January 2021; P2 (stream S2) 5 a month in Hackney
from June 2021; a deleted P1 row in Hackney must never count. Population aged 10-24: Camden 50,000
(2021) and 52,000 (2022), Hackney 40,000 both years; all ages (homicide's band): Camden 250,000
and 260,000, Hackney 280,000; aged 1-24 (knife crime's band): Camden 80,000, Hackney 70,000; 2023 is
missing. Gun crime counts are all 0.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from registry import db
from registry.periods import month_range
from registry.schema import (
    Borough,
    Delivery,
    FundingStream,
    ImportBatch,
    OutcomeCount,
    OutcomeMeasure,
    Population,
    Programme,
    UnallocatedCount,
)

FIRST = dt.date(2021, 1, 1)
LAST = dt.date(2023, 6, 1)
MISSING = dt.date(2022, 3, 1)
CAMDEN, HACKNEY = "E09000007", "E09000012"


def load_small(url: str) -> None:
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        ids = dict(s.execute(select(Borough.gss_code, Borough.id)).tuples().all())
        measures = dict(s.execute(select(OutcomeMeasure.code, OutcomeMeasure.id)).tuples().all())
        batch = ImportBatch(kind="test", created_by="test")
        s1, s2 = FundingStream(name="S1", funder="F1"), FundingStream(name="S2", funder="F2")
        s.add_all([batch, s1, s2])
        s.flush()
        p1 = Programme(name="P1", funding_stream_id=s1.id, start_date=FIRST)
        p2 = Programme(name="P2", funding_stream_id=s2.id, start_date=FIRST)
        s.add_all([p1, p2])
        s.flush()
        rows: list[object] = []
        for month in month_range(FIRST, LAST):
            rows.append(
                Delivery(
                    programme_id=p1.id,
                    borough_id=ids[CAMDEN],
                    month=month,
                    opportunities=10,
                    updated_by="t",
                )
            )
            rows.append(
                Delivery(
                    programme_id=p1.id,
                    borough_id=ids[HACKNEY],
                    month=month,
                    opportunities=1000,
                    updated_by="t",
                    deleted_at=dt.datetime(2023, 7, 1, tzinfo=dt.UTC),
                )
            )
            if month >= dt.date(2021, 6, 1):
                rows.append(
                    Delivery(
                        programme_id=p2.id,
                        borough_id=ids[HACKNEY],
                        month=month,
                        opportunities=5,
                        updated_by="t",
                    )
                )
            if month == MISSING:
                continue
            for code, count in ((CAMDEN, month.month), (HACKNEY, 2)):
                for measure, value in (("homicide", count), ("gun_crime", 0)):
                    rows.append(
                        OutcomeCount(
                            measure_id=measures[measure],
                            source="long",
                            borough_id=ids[code],
                            month=month,
                            count=value,
                            import_batch_id=batch.id,
                        )
                    )
            rows.append(
                UnallocatedCount(
                    measure_id=measures["homicide"],
                    source="long",
                    month=month,
                    source_area="Unknown",
                    count=1,
                    import_batch_id=batch.id,
                )
            )
        for code, year, band, people in (
            (CAMDEN, 2021, "10-24", 50_000),
            (CAMDEN, 2022, "10-24", 52_000),
            (HACKNEY, 2021, "10-24", 40_000),
            (HACKNEY, 2022, "10-24", 40_000),
            (CAMDEN, 2021, "all ages", 250_000),
            (CAMDEN, 2022, "all ages", 260_000),
            (HACKNEY, 2021, "all ages", 280_000),
            (HACKNEY, 2022, "all ages", 280_000),
            (CAMDEN, 2021, "1-24", 80_000),
            (CAMDEN, 2022, "1-24", 80_000),
            (HACKNEY, 2021, "1-24", 70_000),
            (HACKNEY, 2022, "1-24", 70_000),
        ):
            rows.append(
                Population(
                    borough_id=ids[code],
                    year=year,
                    age_band=band,
                    people=people,
                    import_batch_id=batch.id,
                )
            )
        s.add_all(rows)
    engine.dispose()
