"""Initial schema: every table of the first data model, with its constraints.

Revision ID: 0001
Revises:
Create Date: 2026-11-27 04:54:56.350586
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("funder", sa.String(length=200), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('admin', 'staff', 'commissioner', 'funder')",
            name=op.f("ck_app_user_role_known"),
        ),
        sa.CheckConstraint(
            "failed_logins >= 0", name=op.f("ck_app_user_failed_logins_non_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("email", name=op.f("uq_app_user_email")),
        sa.UniqueConstraint("username", name=op.f("uq_app_user_username")),
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_actor"), ["actor"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_entity"), ["entity"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_event_occurred_at"), ["occurred_at"], unique=False
        )

    op.create_table(
        "borough",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gss_code", sa.String(length=9), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("inner_london", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_borough")),
        sa.UniqueConstraint("gss_code", name=op.f("uq_borough_gss_code")),
        sa.UniqueConstraint("name", name=op.f("uq_borough_name")),
    )
    op.create_table(
        "funding_stream",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("funder", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funding_stream")),
        sa.UniqueConstraint("name", name=op.f("uq_funding_stream_name")),
    )
    op.create_table(
        "import_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("release_label", sa.String(length=100), nullable=True),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_accepted", sa.Integer(), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "rows_accepted >= 0", name=op.f("ck_import_batch_rows_accepted_non_negative")
        ),
        sa.CheckConstraint("rows_read >= 0", name=op.f("ck_import_batch_rows_read_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_batch")),
    )
    with op.batch_alter_table("import_batch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_import_batch_sha256"), ["sha256"], unique=False)

    op.create_table(
        "outcome_measure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("unit", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcome_measure")),
        sa.UniqueConstraint("code", name=op.f("uq_outcome_measure_code")),
    )
    op.create_table(
        "outcome_count",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("measure_id", sa.Integer(), nullable=False),
        sa.Column("borough_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("import_batch_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("count >= 0", name=op.f("ck_outcome_count_count_non_negative")),
        sa.ForeignKeyConstraint(
            ["borough_id"], ["borough.id"], name=op.f("fk_outcome_count_borough_id_borough")
        ),
        sa.ForeignKeyConstraint(
            ["import_batch_id"],
            ["import_batch.id"],
            name=op.f("fk_outcome_count_import_batch_id_import_batch"),
        ),
        sa.ForeignKeyConstraint(
            ["measure_id"],
            ["outcome_measure.id"],
            name=op.f("fk_outcome_count_measure_id_outcome_measure"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcome_count")),
        sa.UniqueConstraint(
            "measure_id",
            "borough_id",
            "month",
            name=op.f("uq_outcome_count_measure_id_borough_id_month"),
        ),
    )
    with op.batch_alter_table("outcome_count", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outcome_count_borough_id"), ["borough_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_outcome_count_import_batch_id"), ["import_batch_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_outcome_count_month"), ["month"], unique=False)

    op.create_table(
        "population",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("borough_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("age_band", sa.String(length=16), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("import_batch_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("people >= 0", name=op.f("ck_population_people_non_negative")),
        sa.CheckConstraint("year BETWEEN 1900 AND 2200", name=op.f("ck_population_year_plausible")),
        sa.ForeignKeyConstraint(
            ["borough_id"], ["borough.id"], name=op.f("fk_population_borough_id_borough")
        ),
        sa.ForeignKeyConstraint(
            ["import_batch_id"],
            ["import_batch.id"],
            name=op.f("fk_population_import_batch_id_import_batch"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_population")),
        sa.UniqueConstraint(
            "borough_id", "year", "age_band", name=op.f("uq_population_borough_id_year_age_band")
        ),
    )
    with op.batch_alter_table("population", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_population_import_batch_id"), ["import_batch_id"], unique=False
        )

    op.create_table(
        "programme",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("partner", sa.String(length=200), nullable=True),
        sa.Column("funding_stream_id", sa.Integer(), nullable=False),
        sa.Column("intervention_type", sa.String(length=100), nullable=True),
        sa.Column("age_min", sa.Integer(), nullable=True),
        sa.Column("age_max", sa.Integer(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "age_min IS NULL OR age_max IS NULL OR age_min <= age_max",
            name=op.f("ck_programme_ages_ordered"),
        ),
        sa.CheckConstraint(
            "age_min IS NULL OR age_min >= 0", name=op.f("ck_programme_age_min_non_negative")
        ),
        sa.CheckConstraint(
            "end_date IS NULL OR end_date >= start_date", name=op.f("ck_programme_dates_ordered")
        ),
        sa.ForeignKeyConstraint(
            ["funding_stream_id"],
            ["funding_stream.id"],
            name=op.f("fk_programme_funding_stream_id_funding_stream"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme")),
        sa.UniqueConstraint("name", name=op.f("uq_programme_name")),
    )
    with op.batch_alter_table("programme", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_programme_funding_stream_id"), ["funding_stream_id"], unique=False
        )

    op.create_table(
        "unallocated_count",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("measure_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("source_area", sa.String(length=100), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("import_batch_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("count >= 0", name=op.f("ck_unallocated_count_count_non_negative")),
        sa.ForeignKeyConstraint(
            ["import_batch_id"],
            ["import_batch.id"],
            name=op.f("fk_unallocated_count_import_batch_id_import_batch"),
        ),
        sa.ForeignKeyConstraint(
            ["measure_id"],
            ["outcome_measure.id"],
            name=op.f("fk_unallocated_count_measure_id_outcome_measure"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unallocated_count")),
        sa.UniqueConstraint(
            "measure_id",
            "month",
            "source_area",
            name=op.f("uq_unallocated_count_measure_id_month_source_area"),
        ),
    )
    with op.batch_alter_table("unallocated_count", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_unallocated_count_import_batch_id"), ["import_batch_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_unallocated_count_month"), ["month"], unique=False)

    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.Integer(), nullable=False),
        sa.Column("borough_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("opportunities", sa.Integer(), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=True),
        sa.Column("spend_gbp", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_reason", sa.Text(), nullable=True),
        sa.Column("import_batch_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "opportunities >= 0", name=op.f("ck_delivery_opportunities_non_negative")
        ),
        sa.CheckConstraint(
            "participants IS NULL OR participants <= opportunities",
            name=op.f("ck_delivery_participants_within_opportunities"),
        ),
        sa.CheckConstraint(
            "participants IS NULL OR participants >= 0",
            name=op.f("ck_delivery_participants_non_negative"),
        ),
        sa.CheckConstraint(
            "spend_gbp IS NULL OR spend_gbp >= 0", name=op.f("ck_delivery_spend_non_negative")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_delivery_version_positive")),
        sa.ForeignKeyConstraint(
            ["borough_id"], ["borough.id"], name=op.f("fk_delivery_borough_id_borough")
        ),
        sa.ForeignKeyConstraint(
            ["import_batch_id"],
            ["import_batch.id"],
            name=op.f("fk_delivery_import_batch_id_import_batch"),
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programme.id"], name=op.f("fk_delivery_programme_id_programme")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery")),
        sa.UniqueConstraint(
            "programme_id",
            "borough_id",
            "month",
            name=op.f("uq_delivery_programme_id_borough_id_month"),
        ),
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_borough_id"), ["borough_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_delivery_import_batch_id"), ["import_batch_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_delivery_month"), ["month"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_month"))
        batch_op.drop_index(batch_op.f("ix_delivery_import_batch_id"))
        batch_op.drop_index(batch_op.f("ix_delivery_borough_id"))

    op.drop_table("delivery")
    with op.batch_alter_table("unallocated_count", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unallocated_count_month"))
        batch_op.drop_index(batch_op.f("ix_unallocated_count_import_batch_id"))

    op.drop_table("unallocated_count")
    with op.batch_alter_table("programme", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_programme_funding_stream_id"))

    op.drop_table("programme")
    with op.batch_alter_table("population", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_population_import_batch_id"))

    op.drop_table("population")
    with op.batch_alter_table("outcome_count", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outcome_count_month"))
        batch_op.drop_index(batch_op.f("ix_outcome_count_import_batch_id"))
        batch_op.drop_index(batch_op.f("ix_outcome_count_borough_id"))

    op.drop_table("outcome_count")
    op.drop_table("outcome_measure")
    with op.batch_alter_table("import_batch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_import_batch_sha256"))

    op.drop_table("import_batch")
    op.drop_table("funding_stream")
    op.drop_table("borough")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_audit_event_entity"))
        batch_op.drop_index(batch_op.f("ix_audit_event_actor"))
        batch_op.drop_index(batch_op.f("ix_audit_event_action"))

    op.drop_table("audit_event")
    op.drop_table("app_user")
