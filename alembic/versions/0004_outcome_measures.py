"""Outcome data: more default measures, series breaks, category mappings, revision history.

Revision ID: 0004
Revises: 0003
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

measure = sa.table(
    "outcome_measure",
    sa.column("id", sa.Integer),
    sa.column("code", sa.String),
    sa.column("label", sa.String),
    sa.column("definition", sa.Text),
    sa.column("unit", sa.String),
    sa.column("source", sa.Text),
)
measure_break = sa.table(
    "measure_break",
    sa.column("measure_id", sa.Integer),
    sa.column("month", sa.Date),
    sa.column("note", sa.Text),
)
BOROUGH_FILE = "Metropolitan Police Service, MPS Borough Level Crime (London Datastore)"
NEW_MEASURES = [
    {
        "code": "robbery_personal",
        "label": "Robbery of personal property",
        "definition": "Robbery of personal property recorded by the Metropolitan Police "
        "(Robbery / Robbery of Personal Property).",
        "unit": "offences",
        "source": BOROUGH_FILE,
    },
    {
        "code": "violence_with_injury",
        "label": "Violence with injury",
        "definition": "Violence with injury recorded by the Metropolitan Police "
        "(Violence Against the Person / Violence with Injury).",
        "unit": "offences",
        "source": BOROUGH_FILE,
    },
    {
        "code": "possession_of_weapons",
        "label": "Possession of weapons",
        "definition": "Possession of weapons offences recorded by the Metropolitan Police: "
        "articles with a blade or point, firearms and other weapons.",
        "unit": "offences",
        "source": BOROUGH_FILE,
    },
]
CONNECT_NOTE = (
    "The Metropolitan Police moved to a new crime recording system in February 2024; some "
    "categories' counts before and after are not fully comparable."
)


def upgrade() -> None:
    op.create_table(
        "measure_break",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("measure_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["measure_id"],
            ["outcome_measure.id"],
            name=op.f("fk_measure_break_measure_id_outcome_measure"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measure_break")),
        sa.UniqueConstraint("measure_id", "month", name=op.f("uq_measure_break_measure_id_month")),
    )
    op.create_table(
        "measure_mapping",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_format", sa.String(length=32), nullable=False),
        sa.Column("source_category", sa.String(length=255), nullable=False),
        sa.Column("measure_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["measure_id"],
            ["outcome_measure.id"],
            name=op.f("fk_measure_mapping_measure_id_outcome_measure"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measure_mapping")),
        sa.UniqueConstraint(
            "source_format",
            "source_category",
            name=op.f("uq_measure_mapping_source_format_source_category"),
        ),
    )
    op.create_table(
        "outcome_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("measure_id", sa.Integer(), nullable=False),
        sa.Column("borough_id", sa.Integer(), nullable=True),
        sa.Column("source_area", sa.String(length=100), nullable=True),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("old_count", sa.Integer(), nullable=False),
        sa.Column("new_count", sa.Integer(), nullable=False),
        sa.Column("old_batch_id", sa.Integer(), nullable=False),
        sa.Column("new_batch_id", sa.Integer(), nullable=False),
        sa.Column("revised_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(borough_id IS NULL) <> (source_area IS NULL)",
            name=op.f("ck_outcome_revision_borough_or_source_area"),
        ),
        sa.CheckConstraint(
            "old_count >= 0 AND new_count >= 0",
            name=op.f("ck_outcome_revision_counts_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["borough_id"], ["borough.id"], name=op.f("fk_outcome_revision_borough_id_borough")
        ),
        sa.ForeignKeyConstraint(
            ["measure_id"],
            ["outcome_measure.id"],
            name=op.f("fk_outcome_revision_measure_id_outcome_measure"),
        ),
        sa.ForeignKeyConstraint(
            ["new_batch_id"],
            ["import_batch.id"],
            name=op.f("fk_outcome_revision_new_batch_id_import_batch"),
        ),
        sa.ForeignKeyConstraint(
            ["old_batch_id"],
            ["import_batch.id"],
            name=op.f("fk_outcome_revision_old_batch_id_import_batch"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcome_revision")),
    )
    with op.batch_alter_table("outcome_revision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outcome_revision_measure_id"), ["measure_id"])
        batch_op.create_index(batch_op.f("ix_outcome_revision_new_batch_id"), ["new_batch_id"])
    with op.batch_alter_table("outcome_measure", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))

    op.bulk_insert(measure, NEW_MEASURES)
    bind = op.get_bind()
    ids = (
        bind.execute(sa.select(measure.c.id).where(measure.c.source == BOROUGH_FILE))
        .scalars()
        .all()
    )
    op.bulk_insert(
        measure_break,
        [{"measure_id": i, "month": dt.date(2024, 2, 1), "note": CONNECT_NOTE} for i in ids],
    )


def downgrade() -> None:
    with op.batch_alter_table("outcome_revision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outcome_revision_new_batch_id"))
        batch_op.drop_index(batch_op.f("ix_outcome_revision_measure_id"))
    op.drop_table("outcome_revision")
    op.drop_table("measure_mapping")
    op.drop_table("measure_break")
    op.execute(measure.delete().where(measure.c.code.in_([m["code"] for m in NEW_MEASURES])))
    with op.batch_alter_table("outcome_measure", schema=None) as batch_op:
        batch_op.drop_column("created_at")
