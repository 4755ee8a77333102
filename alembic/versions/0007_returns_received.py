"""Delivery returns: the day each arrived, and which rows were backfilled as history.

A return is late when it arrived after its due date. Until now "arrived" was the day the row was
recorded, so past figures loaded in bulk (the demo data, a programme's earlier records) all read
as late. Existing rows take the day they were recorded; rows loaded as demo data are backfills.

Revision ID: 0007_returns_received
Revises: 0006_audit_chain
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_returns_received"
down_revision: str | None = "0006_audit_chain"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

delivery = sa.table(
    "delivery",
    sa.column("import_batch_id", sa.Integer()),
    sa.column("backfill", sa.Boolean()),
)
import_batch = sa.table(
    "import_batch", sa.column("id", sa.Integer()), sa.column("kind", sa.String())
)


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "received_on", sa.Date(), server_default=sa.text("CURRENT_DATE"), nullable=False
            )
        )
        batch_op.add_column(
            sa.Column("backfill", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    recorded = (
        "date(created_at)" if op.get_bind().dialect.name == "sqlite" else "CAST(created_at AS DATE)"
    )
    op.execute(f"UPDATE delivery SET received_on = {recorded}")
    seeded = sa.select(import_batch.c.id).where(import_batch.c.kind == "seed")
    op.execute(
        delivery.update().where(delivery.c.import_batch_id.in_(seeded)).values(backfill=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_column("backfill")
        batch_op.drop_column("received_on")
