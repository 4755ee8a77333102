"""Audit events indexed by (entity, id): the data version reads each kind's newest event.

``audit.data_version`` leaves some kinds of event out (accounts; deliveries for the figures that
read none). With only an index on ``entity`` it scanned back past every newer event of the kinds
left out; with ``(entity, id)`` it reads each kind's newest event directly. The new index serves
every lookup the old one did, so that one goes.

Revision ID: 0011_audit_entity_index
Revises: 0010_sessions
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011_audit_entity_index"
down_revision: str | None = "0010_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_audit_event_entity", table_name="audit_event")
    op.create_index("ix_audit_event_entity_id", "audit_event", ["entity", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_event_entity_id", table_name="audit_event")
    op.create_index("ix_audit_event_entity", "audit_event", ["entity"], unique=False)
