"""Server-side sign-in sessions: the cookie names a row here, hashed at rest.

Revision ID: 0010_sessions
Revises: 0009_population_bands
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_sessions"
down_revision: str | None = "0009_population_bands"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_session",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_hash", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_app_session_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_session")),
    )
    op.create_index(op.f("ix_app_session_user_id"), "app_session", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_app_session_user_id"), table_name="app_session")
    op.drop_table("app_session")
