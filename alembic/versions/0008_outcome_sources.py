"""Outcome sources: every count knows its source and release; each measure a source of record.

Counts from different sources (the Met's borough file, its crime dashboard, police.uk street
files, long files, the demo data) are stored side by side: the unique key of ``outcome_count``
and ``unallocated_count`` now includes ``source``. Each measure ships an order of preference
over the sources; the first holding counts is the one users see. Import batches get a release
date, so releases are ordered by publication rather than by import.

Existing rows take their import batch's format as their source (``demo`` for the seed) and
batches the first day of their last month as release date (a Met "Historical" file's last month
plus 24, as FORMATS.md explains). Downgrading keeps only each measure's source of record.

Revision ID: 0008_outcome_sources
Revises: 0007_returns_received
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_outcome_sources"
down_revision: str | None = "0007_returns_received"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = ("mps-borough", "mps-dashboard", "long", "demo", "police-uk")
BOROUGH_FILE_FIRST = ["mps-borough", "mps-dashboard", "long", "demo", "police-uk"]
DASHBOARD_FIRST = ["mps-dashboard", "mps-borough", "long", "demo", "police-uk"]
DASHBOARD_MEASURES = ("knife_crime_injury_u25", "gun_crime")

measure = sa.table(
    "outcome_measure",
    sa.column("id", sa.Integer()),
    sa.column("code", sa.String()),
    sa.column("source_order", sa.JSON()),
)
batch = sa.table(
    "import_batch",
    sa.column("id", sa.Integer()),
    sa.column("kind", sa.String()),
    sa.column("format", sa.String()),
    sa.column("file_name", sa.String()),
    sa.column("created_at", sa.DateTime()),
    sa.column("release_date", sa.Date()),
)
count = sa.table(
    "outcome_count",
    sa.column("id", sa.Integer()),
    sa.column("measure_id", sa.Integer()),
    sa.column("month", sa.Date()),
    sa.column("import_batch_id", sa.Integer()),
    sa.column("source", sa.String()),
)
unallocated = sa.table(
    "unallocated_count",
    sa.column("id", sa.Integer()),
    sa.column("measure_id", sa.Integer()),
    sa.column("month", sa.Date()),
    sa.column("import_batch_id", sa.Integer()),
    sa.column("source", sa.String()),
)
revision_t = sa.table(
    "outcome_revision",
    sa.column("month", sa.Date()),
    sa.column("old_batch_id", sa.Integer()),
    sa.column("new_batch_id", sa.Integer()),
    sa.column("source", sa.String()),
)


def _source(kind: str, fmt: str | None) -> str:
    if kind == "seed":
        return "demo"
    return fmt if fmt in SOURCES else "long"


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _plus_months(month: dt.date, n: int) -> dt.date:
    total = month.year * 12 + month.month - 1 + n
    return dt.date(total // 12, total % 12 + 1, 1)


def upgrade() -> None:
    op.add_column("import_batch", sa.Column("release_date", sa.Date(), nullable=True))
    # Plain ALTER TABLE (no batch copy on SQLite): the tables referring to outcome_measure and
    # import_batch would refuse the copy's DROP TABLE. The default only fills the existing
    # rows, which are given their order at once.
    op.add_column(
        "outcome_measure",
        sa.Column("source_order", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )
    for table in ("outcome_count", "unallocated_count", "outcome_revision"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("source", sa.String(length=32), nullable=True))

    bind = op.get_bind()
    for mid, code in bind.execute(sa.select(measure.c.id, measure.c.code)).all():
        order = DASHBOARD_FIRST if code in DASHBOARD_MEASURES else BOROUGH_FILE_FIRST
        bind.execute(measure.update().where(measure.c.id == mid).values(source_order=order))

    batches = bind.execute(
        sa.select(batch.c.id, batch.c.kind, batch.c.format, batch.c.file_name, batch.c.created_at)
    ).all()
    last: dict[int, dt.date] = {}
    for stmt in (
        sa.select(count.c.import_batch_id, sa.func.max(count.c.month)).group_by(
            count.c.import_batch_id
        ),
        sa.select(unallocated.c.import_batch_id, sa.func.max(unallocated.c.month)).group_by(
            unallocated.c.import_batch_id
        ),
        sa.select(revision_t.c.old_batch_id, sa.func.max(revision_t.c.month)).group_by(
            revision_t.c.old_batch_id
        ),
        sa.select(revision_t.c.new_batch_id, sa.func.max(revision_t.c.month)).group_by(
            revision_t.c.new_batch_id
        ),
    ):
        for bid, month in bind.execute(stmt).all():
            if month is not None:
                last[bid] = max(last.get(bid, dt.date.min), _as_date(month))
    for bid, kind, fmt, file_name, created_at in batches:
        if kind not in ("crime", "seed"):
            continue
        source = _source(kind, fmt)
        for table in (count, unallocated):
            bind.execute(table.update().where(table.c.import_batch_id == bid).values(source=source))
        bind.execute(
            revision_t.update().where(revision_t.c.old_batch_id == bid).values(source=source)
        )
        month = last.get(bid)
        if month is None:
            release = _as_date(created_at)
        elif source == "mps-borough" and "histor" in (file_name or "").casefold():
            release = _plus_months(month.replace(day=1), 24)
        else:
            release = month.replace(day=1)
        bind.execute(batch.update().where(batch.c.id == bid).values(release_date=release))

    if bind.dialect.name != "sqlite":
        op.alter_column("outcome_measure", "source_order", server_default=None)
    with op.batch_alter_table("outcome_revision", schema=None) as batch_op:
        batch_op.alter_column("source", existing_type=sa.String(length=32), nullable=False)
    with op.batch_alter_table("outcome_count", schema=None) as batch_op:
        batch_op.alter_column("source", existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_constraint("uq_outcome_count_measure_id_borough_id_month", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_outcome_count_measure_id_source_borough_id_month"),
            ["measure_id", "source", "borough_id", "month"],
        )
    with op.batch_alter_table("unallocated_count", schema=None) as batch_op:
        batch_op.alter_column("source", existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_constraint(
            "uq_unallocated_count_measure_id_month_source_area", type_="unique"
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_unallocated_count_measure_id_source_month_source_area"),
            ["measure_id", "source", "month", "source_area"],
        )


def downgrade() -> None:
    bind = op.get_bind()
    held: dict[int, set[str]] = {}
    for table in (count, unallocated):
        for mid, source in bind.execute(sa.select(table.c.measure_id, table.c.source).distinct()):
            held.setdefault(mid, set()).add(source)
    for mid, order in bind.execute(sa.select(measure.c.id, measure.c.source_order)).all():
        sources = held.get(mid, set())
        record = next((s for s in order or [] if s in sources), None)
        for table in (count, unallocated):
            stmt = table.delete().where(table.c.measure_id == mid)
            if record is not None:
                stmt = stmt.where(table.c.source != record)
            bind.execute(stmt)

    with op.batch_alter_table("unallocated_count", schema=None) as batch_op:
        batch_op.drop_constraint(
            "uq_unallocated_count_measure_id_source_month_source_area", type_="unique"
        )
        batch_op.create_unique_constraint(
            "uq_unallocated_count_measure_id_month_source_area",
            ["measure_id", "month", "source_area"],
        )
        batch_op.drop_column("source")
    with op.batch_alter_table("outcome_count", schema=None) as batch_op:
        batch_op.drop_constraint(
            "uq_outcome_count_measure_id_source_borough_id_month", type_="unique"
        )
        batch_op.create_unique_constraint(
            "uq_outcome_count_measure_id_borough_id_month", ["measure_id", "borough_id", "month"]
        )
        batch_op.drop_column("source")
    with op.batch_alter_table("outcome_revision", schema=None) as batch_op:
        batch_op.drop_column("source")
    op.drop_column("outcome_measure", "source_order")
    op.drop_column("import_batch", "release_date")
