"""Shared set-up for the data-entry tests: two programmes and a dump of every table."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, MetaData, select
from sqlalchemy.orm import Session

from registry import programmes
from tests.conftest import ADMIN

OPEN = "Youth Mentoring"
CLOSED = "Closed Project"


def add_programmes(session: Session) -> None:
    programmes.add_funding_stream(session, principal=ADMIN, name="Test Fund", funder="City Hall")
    programmes.add_programme(
        session,
        principal=ADMIN,
        name=OPEN,
        funding_stream="Test Fund",
        start=dt.date(2020, 1, 1),
    )
    programmes.add_programme(
        session,
        principal=ADMIN,
        name=CLOSED,
        funding_stream="Test Fund",
        start=dt.date(2020, 1, 1),
        end=dt.date(2021, 6, 30),
    )
    session.commit()


def dump(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every table, in primary-key order: equal dumps mean an unchanged database."""
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {
            name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
            for name, t in sorted(meta.tables.items())
        }
