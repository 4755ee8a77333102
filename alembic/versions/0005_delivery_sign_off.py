"""Delivery returns: when each row was first recorded, and signed-off months.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "month_sign_off",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("signed_off_by", sa.String(length=100), nullable=False),
        sa.Column("signed_off_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_month_sign_off")),
        sa.UniqueConstraint("month", name=op.f("uq_month_sign_off_month")),
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE delivery SET created_at = updated_at")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.alter_column(
            "created_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        # Unused by every query, and it slows bulk imports (see BENCHMARKS.md, issue #4).
        batch_op.drop_index(batch_op.f("ix_delivery_borough_id"))


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_borough_id"), ["borough_id"], unique=False)
        batch_op.drop_column("created_at")
    op.drop_table("month_sign_off")
