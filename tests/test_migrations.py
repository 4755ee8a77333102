"""Migrations: the stairway up and down on each backend, and models equal to the migrated schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select

from registry import db
from registry.models import Base, Borough, OutcomeMeasure


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
