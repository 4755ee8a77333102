"""The audit trail: who did what, when, with the record before and after.

Every write function in the registry calls :func:`record` inside the same transaction as its
change, so the change and its audit event are stored together or not at all. Audit events are
append-only: the application has no function that edits or deletes them, and database triggers
refuse an UPDATE or DELETE on the table (migration 0003).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.files import neutralise
from registry.models import AuditEvent

if TYPE_CHECKING:
    from registry.auth import Principal

ACTIONS = (
    "create",
    "amend",
    "delete",
    "import",
    "role_change",
    "disable",
    "enable",
    "password_reset",
    "sign_in",
    "sign_in_failed",
    "sign_out",
    "sign_off",
    "reopen",
    "seed",
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def record(
    session: Session,
    *,
    actor: Principal | str,
    action: str,
    entity: str,
    entity_id: object = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    detail: str | None = None,
) -> AuditEvent:
    """Add an audit event to ``session``'s transaction and return it."""
    if action not in ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}.")
    event = AuditEvent(
        actor=actor if isinstance(actor, str) else actor.username,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
        detail=detail,
    )
    session.add(event)
    session.flush()
    return event


def data_version(session: Session) -> int:
    """A number that grows with every change to the registry's data.

    Every write leaves an audit event in the same transaction, so the newest event's id names
    the state of the data. Events about accounts (users added, sign-ins, sign-in failures) change
    no figure, so they are left out: signing in must not change a report's data version or empty
    the pages' caches. Caches key on it; reports print it so a figure can be traced.
    """
    stmt = select(func.coalesce(func.max(AuditEvent.id), 0)).where(AuditEvent.entity != "app_user")
    return int(session.scalar(stmt) or 0)


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    entity: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int | None = 1000


def _query(flt: AuditFilter) -> Any:
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc())
    if flt.actor:
        stmt = stmt.where(AuditEvent.actor == flt.actor)
    if flt.action:
        stmt = stmt.where(AuditEvent.action == flt.action)
    if flt.entity:
        stmt = stmt.where(AuditEvent.entity == flt.entity)
    if flt.since:
        stmt = stmt.where(AuditEvent.occurred_at >= flt.since)
    if flt.until:
        stmt = stmt.where(AuditEvent.occurred_at < flt.until)
    if flt.limit:
        stmt = stmt.limit(flt.limit)
    return stmt


AUDIT_COLUMNS = (
    "id",
    "occurred_at",
    "actor",
    "action",
    "entity",
    "entity_id",
    "before",
    "after",
    "detail",
)


def event_row(event: AuditEvent) -> dict[str, Any]:
    occurred = event.occurred_at
    if occurred.tzinfo is None:  # SQLite returns naive datetimes; they were stored as UTC.
        occurred = occurred.replace(tzinfo=dt.UTC)
    return {
        "id": event.id,
        "occurred_at": occurred.isoformat(timespec="seconds"),
        "actor": event.actor,
        "action": event.action,
        "entity": event.entity,
        "entity_id": event.entity_id,
        "before": json.dumps(event.before, sort_keys=True) if event.before is not None else "",
        "after": json.dumps(event.after, sort_keys=True) if event.after is not None else "",
        "detail": event.detail or "",
    }


def list_events(
    session: Session, *, principal: Principal, flt: AuditFilter | None = None
) -> list[dict[str, Any]]:
    """Audit events, newest first, as plain rows. Only admins may read the trail."""
    from registry.auth import require

    require(principal, "audit.read")
    return [event_row(e) for e in session.scalars(_query(flt or AuditFilter()))]


def events_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=AUDIT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: neutralise(v) for k, v in row.items()})
    return buffer.getvalue()
