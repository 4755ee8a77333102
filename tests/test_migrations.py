"""Migrations: the stairway up and down on each backend, and models equal to the migrated schema."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select

from registry import db
from registry.schema import Base, Borough, OutcomeMeasure

# Slow lane: every migration up and down; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow


def _revisions() -> list[str]:
    script = ScriptDirectory.from_config(db.alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def test_single_head() -> None:
    script = ScriptDirectory.from_config(db.alembic_config())
    assert len(script.get_heads()) == 1


def test_stairway_up_and_down_every_revision(empty_db_url: str) -> None:
    engine = db.make_engine(empty_db_url)
    revisions = _revisions()
    assert revisions[0] == "0001"
    for i, revision in enumerate(revisions):
        db.upgrade(engine, revision)
        assert db.current_revision(engine) == revision
        db.downgrade(engine, revisions[i - 1] if i else "base")
        db.upgrade(engine, revision)
    db.downgrade(engine, "base")
    assert db.current_revision(engine) is None
    assert not db.has_schema(engine)
    db.upgrade(engine)
    assert db.is_up_to_date(engine)
    engine.dispose()


def test_models_match_migrated_schema(engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []


def test_reference_data_after_migration(session) -> None:
    codes = session.scalars(select(Borough.gss_code).order_by(Borough.gss_code)).all()
    assert codes == [f"E09{n:06d}" for n in range(1, 34)]
    names = set(session.scalars(select(Borough.name)))
    assert {"City of London", "Westminster", "Kensington and Chelsea"} <= names
    measures = set(session.scalars(select(OutcomeMeasure.code)))
    assert {"homicide", "knife_crime_injury_u25", "gun_crime"} <= measures
    inner = session.scalar(select(func.count()).where(Borough.inner_london.is_(True)))
    assert inner == 14


def test_every_table_has_named_constraints(engine) -> None:
    insp = inspect(engine)
    for table in Base.metadata.sorted_tables:
        for uq in insp.get_unique_constraints(table.name):
            assert uq["name"] and uq["name"].startswith("uq_"), (table.name, uq)


def test_returns_received_migration_keeps_arrival_days_and_marks_demo_rows(empty_db_url) -> None:
    """0007: rows take the day they were recorded as the day they arrived; demo rows (loaded by
    a seed batch) become backfills, so they are never counted late."""
    engine = db.make_engine(empty_db_url)
    db.upgrade(engine, "0005")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO funding_stream (id, name, funder, created_at) "
            "VALUES (1, 'F', 'City Hall', '2024-01-01 00:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO programme (id, name, funding_stream_id, start_date, created_at) "
            "VALUES (1, 'P', 1, '2020-01-01', '2024-01-01 00:00:00')"
        )
        for batch, kind in ((1, "seed"), (2, "deliveries")):
            conn.exec_driver_sql(
                "INSERT INTO import_batch (id, kind, rows_read, rows_accepted, synthetic, "
                f"created_by, created_at) VALUES ({batch}, '{kind}', 1, 1, false, 'x', "
                "'2024-05-20 10:00:00')"
            )
        for row, batch in ((1, 1), (2, 2)):
            conn.exec_driver_sql(
                "INSERT INTO delivery (id, programme_id, borough_id, month, opportunities, "
                "version, import_batch_id, created_at, updated_at, updated_by) VALUES "
                f"({row}, 1, {row}, '2024-01-01', 5, 1, {batch}, '2024-03-20 10:00:00', "
                "'2024-03-20 10:00:00', 'x')"
            )
    db.upgrade(engine)
    with engine.connect() as conn:
        got = conn.exec_driver_sql(
            "SELECT id, received_on, backfill FROM delivery ORDER BY id"
        ).all()
    assert [(r[0], str(r[1]), bool(r[2])) for r in got] == [
        (1, "2024-03-20", True),
        (2, "2024-03-20", False),
    ]
    db.downgrade(engine, "0005")
    engine.dispose()
