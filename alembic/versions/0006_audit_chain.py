"""Audit events are hash-chained, and SQLite refuses an INSERT OR REPLACE of an existing event.

Adds ``prev_hash`` and ``hash`` to ``audit_event`` and chains the events already there, in id
order, with the registry's own hash (``registry.audit.event_hash``). SQLite's ``INSERT OR
REPLACE`` deletes the row it replaces without firing the DELETE trigger of 0003, so a BEFORE
INSERT trigger refuses an insert whose id is already taken.

Revision ID: 0006_audit_chain
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registry.audit import GENESIS, event_hash

revision: str = "0006_audit_chain"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "audit_event is append-only: an audit event cannot be replaced"
UPDATE_TRIGGER = (  # as migration 0003 created it
    "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event BEGIN SELECT "
    "RAISE(ABORT, 'audit_event is append-only: audit events cannot be edited or deleted'); END"
)
CHAINED = ("occurred_at", "actor", "action", "entity", "entity_id", "before", "after", "detail")


def _chain_existing(bind: sa.Connection) -> None:
    table = sa.table(
        "audit_event",
        sa.column("id", sa.Integer),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
        *(sa.column(c, sa.String) for c in ("actor", "action", "entity", "entity_id", "detail")),
        sa.column("before", sa.JSON),
        sa.column("after", sa.JSON),
        sa.column("prev_hash", sa.String),
        sa.column("hash", sa.String),
    )
    rows = bind.execute(
        sa.select(table.c.id, *(table.c[c] for c in CHAINED)).order_by(table.c.id)
    ).all()
    previous = GENESIS
    for row in rows:
        digest = event_hash(previous, row._mapping)
        bind.execute(
            table.update().where(table.c.id == row.id).values(prev_hash=previous, hash=digest)
        )
        previous = digest


def upgrade() -> None:
    op.add_column("audit_event", sa.Column("prev_hash", sa.String(64), nullable=True))
    op.add_column("audit_event", sa.Column("hash", sa.String(64), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        _chain_existing(bind)
        op.execute(UPDATE_TRIGGER)
        op.execute(
            "CREATE TRIGGER audit_event_no_replace BEFORE INSERT ON audit_event "
            "WHEN EXISTS (SELECT 1 FROM audit_event WHERE id = NEW.id) "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )
        return
    op.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
    _chain_existing(bind)
    op.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_replace")
        # Plain ALTER TABLE (SQLite 3.35+): a batch copy of the table would drop 0003's triggers.
        op.execute("ALTER TABLE audit_event DROP COLUMN hash")
        op.execute("ALTER TABLE audit_event DROP COLUMN prev_hash")
        return
    op.drop_column("audit_event", "hash")
    op.drop_column("audit_event", "prev_hash")
