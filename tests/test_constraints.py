"""The database itself refuses negative counts and second rows for the same natural key."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from registry.schema import (
    AppUser,
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

MONTH = dt.date(2023, 4, 1)


@pytest.fixture
def refs(session):
    stream = FundingStream(name="Fund", funder="City Hall")
    session.add(stream)
    session.flush()
    programme = Programme(
        name="Mentors", funding_stream_id=stream.id, start_date=dt.date(2020, 1, 1)
    )
    batch = ImportBatch(kind="test", created_by="tester")
    session.add_all([programme, batch])
    session.flush()
    borough = session.scalar(select(Borough).where(Borough.gss_code == "E09000007"))
    measure = session.scalar(select(OutcomeMeasure).where(OutcomeMeasure.code == "homicide"))
    session.commit()
    return {
        "programme": programme.id,
        "borough": borough.id,
        "measure": measure.id,
        "batch": batch.id,
    }


def _delivery(refs, **over):
    row = {
        "programme_id": refs["programme"],
        "borough_id": refs["borough"],
        "month": MONTH,
        "opportunities": 10,
        "participants": 5,
        "updated_by": "t",
    }
    return row | over


def _refused(session, model, row) -> None:
    with pytest.raises(IntegrityError):
        session.execute(insert(model), [row])
        session.flush()
    session.rollback()


@pytest.mark.parametrize(
    "field,value",
    [
        ("opportunities", -1),
        ("participants", -1),
        ("spend_gbp", -5),
        ("participants", 11),
        ("version", 0),
    ],
)
def test_delivery_refuses_bad_counts(session, refs, field, value) -> None:
    _refused(session, Delivery, _delivery(refs, **{field: value}))


def test_delivery_refuses_duplicate_triple(session, refs) -> None:
    session.execute(insert(Delivery), [_delivery(refs)])
    session.commit()
    _refused(session, Delivery, _delivery(refs, opportunities=99))


def test_delivery_refuses_unknown_programme(session, refs) -> None:
    _refused(session, Delivery, _delivery(refs, programme_id=9999))


def test_outcome_and_population_refuse_negatives_and_duplicates(session, refs) -> None:
    count = {
        "measure_id": refs["measure"],
        "source": "long",
        "borough_id": refs["borough"],
        "month": MONTH,
        "count": 3,
        "import_batch_id": refs["batch"],
    }
    _refused(session, OutcomeCount, count | {"count": -1})
    session.execute(insert(OutcomeCount), [count])
    session.commit()
    _refused(session, OutcomeCount, count | {"count": 4})
    people = {
        "borough_id": refs["borough"],
        "year": 2020,
        "age_band": "10-24",
        "people": 100,
        "import_batch_id": refs["batch"],
    }
    _refused(session, Population, people | {"people": -1})
    session.execute(insert(Population), [people])
    session.commit()
    _refused(session, Population, people)
    unallocated = {
        "measure_id": refs["measure"],
        "source": "long",
        "month": MONTH,
        "source_area": "Unknown",
        "count": 1,
        "import_batch_id": refs["batch"],
    }
    _refused(session, UnallocatedCount, unallocated | {"count": -2})
    session.execute(insert(UnallocatedCount), [unallocated])
    session.commit()
    _refused(session, UnallocatedCount, unallocated)


def test_unique_names(session, refs) -> None:
    _refused(
        session,
        Programme,
        {"name": "Mentors", "funding_stream_id": 1, "start_date": dt.date(2021, 1, 1)},
    )
    _refused(
        session,
        FundingStream,
        {"name": "Fund", "funder": "Other", "created_at": dt.datetime.now(dt.UTC)},
    )
    _refused(session, Borough, {"gss_code": "E09000007", "name": "Camden 2", "inner_london": True})


def test_programme_dates_and_user_role_checked(session, refs) -> None:
    _refused(
        session,
        Programme,
        {
            "name": "Backwards",
            "funding_stream_id": 1,
            "start_date": dt.date(2021, 1, 1),
            "end_date": dt.date(2020, 1, 1),
        },
    )
    now = dt.datetime.now(dt.UTC)
    _refused(
        session,
        AppUser,
        {
            "username": "x",
            "role": "superuser",
            "disabled": False,
            "failed_logins": 0,
            "created_at": now,
        },
    )
