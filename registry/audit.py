"""The audit trail: who did what, when, with the record before and after.

Every write function in the registry calls :func:`record` inside the same transaction as its
change, so the change and its audit event are stored together or not at all. Audit events are
append-only: the application has no function that edits or deletes them, and database triggers
refuse an UPDATE or DELETE on the table (migration 0003) and, on SQLite, an ``INSERT OR REPLACE``
of an existing event (migration 0006). On PostgreSQL the application's role may only insert and
read audit events when the tables belong to a separate migration role (README, "Database roles").

Events are hash-chained: each event stores the SHA-256 of its own content and of the previous
event's hash (:func:`event_hash`), so an event edited or removed by someone who can write to the
database file or server directly breaks the chain, and :func:`verify_chain` (``vru audit verify``)
names where. Appends take a lock on PostgreSQL (one chain, in id order); SQLite has one writer at
a time anyway. A forger who rewrites every later event too is caught by comparing the chain's head
with one noted earlier (``vru audit verify --head ID:HASH``).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    RowMapping,
    bindparam,
    column,
    insert,
    inspect,
    select,
    table,
    text,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from registry import numbers
from registry.db import AUDIT_CHAIN_LOCK, advisory_lock
from registry.files import neutralise
from registry.schema import (
    AppUser,
    AuditEvent,
    Borough,
    Delivery,
    FundingStream,
    ImportBatch,
    Programme,
    utcnow,
)

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
    "migrate",
    "backup",
    "restore",
)
GENESIS = "0" * 64  # the "previous hash" of the first event
_CHAINED = ("occurred_at", "actor", "action", "entity", "entity_id", "before", "after", "detail")


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


def _instant(value: dt.datetime) -> str:
    """A timestamp as the chain hashes it: UTC, microseconds (SQLite returns naive UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(prev_hash: str, event: Mapping[str, Any] | RowMapping) -> str:
    """The SHA-256 of an event's content (the columns in ``_CHAINED``) and the previous hash."""
    content = [prev_hash, *(event[c] for c in _CHAINED)]
    content[1] = _instant(event["occurred_at"])
    payload = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _chain_tail(session: Session) -> str:
    """Lock the chain (PostgreSQL) and return the newest event's hash, or :data:`GENESIS`."""
    advisory_lock(session, AUDIT_CHAIN_LOCK)
    last = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    return last or GENESIS


def record_many(session: Session, events: Iterable[Mapping[str, Any]]) -> None:
    """Append many events (each a dict of the ``_CHAINED`` columns) in one statement, chained."""
    rows = []
    prev = _chain_tail(session)
    for event in events:
        row = dict(event)
        row["prev_hash"] = prev
        row["hash"] = prev = event_hash(prev, row)
        rows.append(row)
    if rows:
        session.execute(insert(AuditEvent.__table__), rows)


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
    fields: dict[str, Any] = {
        "occurred_at": utcnow(),
        "actor": actor if isinstance(actor, str) else actor.username,
        "action": action,
        "entity": entity,
        "entity_id": None if entity_id is None else str(entity_id),
        "before": _jsonable(before) if before is not None else None,
        "after": _jsonable(after) if after is not None else None,
        "detail": detail,
    }
    prev = _chain_tail(session)
    event = AuditEvent(**fields, prev_hash=prev, hash=event_hash(prev, fields))
    session.add(event)
    session.flush()
    return event


# What saving delivery figures and monthly returns writes: nothing else reads these entities, so
# a cache of outcome figures may ignore them (see data_version).
DELIVERY_ENTITIES = ("delivery", "month_sign_off")


def data_version(session: Session, *, ignoring_deliveries: bool = False) -> int:
    """A number that grows with every change to the registry's data.

    Every write leaves an audit event in the same transaction, so the newest event's id names
    the state of the data. Events about accounts (users added, sign-ins, sign-in failures) change
    no figure, so they are left out: signing in must not change a report's data version or empty
    the pages' caches. Caches key on it; reports print it so a figure can be traced.

    ``ignoring_deliveries`` leaves out delivery figures and monthly returns too
    (``DELIVERY_ENTITIES``): the version for figures that read neither (outcome counts,
    population, measures, programmes), so that staff saving deliveries every few seconds do not
    empty those caches. Imports count for both: a batch may hold either.

    It reads the newest event of each kind of entity through the ``(entity, id)`` index, one
    kind after another (a loose index scan), so its cost does not grow with the events left out:
    "the newest event that is not a delivery" scanned back past every newer delivery event, which
    after a 100,000-row upload took 30 times as long (``benchmarks/bench_data_version.py``).
    """
    left_out = ("app_user", *(DELIVERY_ENTITIES if ignoring_deliveries else ()))
    return int(session.scalar(_NEWEST_PER_KIND, {"left_out": left_out}) or 0)


# Each kind of entity in turn (the next one after the last, by the index), then its newest event:
# a few index lookups a kind, however many events of the kinds left out came since. The newest
# event of a kind is asked for as a range on entity ordered by (entity, id), not as
# ``max(id) WHERE entity = …``: for that, PostgreSQL's planner walks the primary key backwards
# expecting a match within a few rows, which after a large upload of another kind reads all of it.
_NEWEST_PER_KIND = text(
    """
    WITH RECURSIVE kinds(entity) AS (
        SELECT min(entity) FROM audit_event
        UNION ALL
        SELECT (SELECT min(a.entity) FROM audit_event a WHERE a.entity > kinds.entity)
        FROM kinds WHERE kinds.entity IS NOT NULL
    )
    SELECT coalesce(max((
        SELECT a.id FROM audit_event a
        WHERE a.entity >= kinds.entity AND a.entity <= kinds.entity
        ORDER BY a.entity DESC, a.id DESC LIMIT 1
    )), 0)
    FROM kinds
    WHERE kinds.entity IS NOT NULL AND kinds.entity NOT IN :left_out
    """
).bindparams(bindparam("left_out", expanding=True))


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
    "about",
    "change",
    "detail",
    "entity",
    "entity_id",
    "before",
    "after",
)
# What a person reads: the raw record (entity, id, JSON) stays in the CSV export.
READABLE_COLUMNS = ("occurred_at", "actor", "action", "about", "change", "detail")
# Fields that say nothing to a reader of the trail.
_HIDDEN = frozenset({"version", "deleted", "sha256", "password_hash"})
_FIELD_NAMES = {"spend_gbp": "spend (£)", "deleted_reason": "reason"}


def event_row(event: AuditEvent, about: str = "") -> dict[str, Any]:
    occurred = event.occurred_at
    if occurred.tzinfo is None:  # SQLite returns naive datetimes; they were stored as UTC.
        occurred = occurred.replace(tzinfo=dt.UTC)
    return {
        "id": event.id,
        "occurred_at": occurred.isoformat(timespec="seconds"),
        "actor": event.actor,
        "action": event.action,
        "about": about or _about_from_record(event),
        "change": describe_change(event.action, event.before, event.after),
        "detail": event.detail or "",
        "entity": event.entity,
        "entity_id": event.entity_id,
        "before": json.dumps(event.before, sort_keys=True) if event.before is not None else "",
        "after": json.dumps(event.after, sort_keys=True) if event.after is not None else "",
    }


def _field(name: str) -> str:
    return _FIELD_NAMES.get(name, name.replace("_", " "))


def _value(value: Any) -> str:
    if value is None or value == "":
        return "(blank)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return numbers.figure(value)
    if isinstance(value, list):
        return f"{numbers.count(len(value))} item(s)"
    if isinstance(value, Mapping):
        return "; ".join(f"{_field(k)} {_value(v)}" for k, v in value.items() if k not in _HIDDEN)
    return str(value)


def describe_change(
    action: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> str:
    """The change an event records, in words: ``opportunities 60 → 61; participants 30 → 31``
    for an amendment, the figures recorded for a creation, what was removed for a deletion."""
    before, after = before or {}, after or {}
    if action in ("import", "seed"):  # a sample of what an import revised is not a "before"
        before = {}
    if action == "delete":
        reason = after.get("deleted_reason")
        was = describe_change("", before, None)
        return f"deleted ({was})" + (f"; reason: {reason}" if reason else "")
    rows = after.get("rows")
    if isinstance(rows, list) and not before:  # deliveries added from the form or the grid
        return " | ".join(
            "; ".join(
                f"{_field(k)} {_value(v)}"
                for k, v in row.items()
                if k not in ("programme", "borough", "month") and v is not None
            )
            for row in rows[:5]
        ) + (f" | and {numbers.count(len(rows) - 5)} more" if len(rows) > 5 else "")
    keys = [k for k in dict.fromkeys([*before, *after]) if k not in _HIDDEN]
    if before and after:
        return "; ".join(
            f"{_field(k)} {_value(before.get(k))} → {_value(after.get(k))}"
            for k in keys
            if before.get(k) != after.get(k)
        )
    shown = after or before
    text = "; ".join(f"{_field(k)} {_value(shown[k])}" for k in keys if k in shown)
    return text if after else f"was {text}" if text else ""


def _about_from_record(event: AuditEvent) -> str:
    """What an event is about, from the event alone (see :func:`_about` for the usual way)."""
    record = event.after or event.before or {}
    rows = record.get("rows") if isinstance(record, Mapping) else None
    if isinstance(rows, list) and rows:
        first = rows[0]
        where = f"{first.get('programme')}, {first.get('borough')}, {first.get('month')}"
        return where if len(rows) == 1 else f"{numbers.count(len(rows))} returns: {where}, ..."
    if event.entity == "month_sign_off" and event.entity_id:
        return f"Month {event.entity_id}"
    if event.entity == "delivery" and event.detail:
        return event.detail.split(";")[0]
    for key in ("name", "username", "code", "source_category", "file_name"):
        if isinstance(record, Mapping) and record.get(key):
            return str(record[key])
    return f"{event.entity.replace('_', ' ')} {event.entity_id or ''}".strip()


def _about(session: Session, events: list[AuditEvent]) -> dict[int, str]:
    """What each event is about, named as a person would: the programme, borough and month of
    a delivery (as they are called now), a programme's or user's name, a file's name."""
    ids: dict[str, set[int]] = {}
    for e in events:
        if e.entity_id and e.entity_id.isdigit():
            ids.setdefault(e.entity, set()).add(int(e.entity_id))
    names: dict[tuple[str, int], str] = {}
    if ids.get("delivery"):
        stmt = (
            select(Delivery.id, Programme.name, Borough.name, Delivery.month)
            .join(Programme, Delivery.programme_id == Programme.id)
            .join(Borough, Delivery.borough_id == Borough.id)
            .where(Delivery.id.in_(ids["delivery"]))
        )
        for i, programme, borough, month in session.execute(stmt):
            names["delivery", i] = f"{programme}, {borough}, {month:%Y-%m}"
    for entity, model, name_column in (
        ("programme", Programme, Programme.name),
        ("funding_stream", FundingStream, FundingStream.name),
        ("app_user", AppUser, AppUser.username),
        ("import_batch", ImportBatch, ImportBatch.file_name),
    ):
        if ids.get(entity):
            named = select(model.id, name_column).where(model.id.in_(ids[entity]))
            for i, name in session.execute(named):
                label = name or f"batch {i}"
                names[entity, i] = f"Import {i}: {label}" if entity == "import_batch" else label
    return {
        e.id: names.get((e.entity, int(e.entity_id)), "")
        if e.entity_id and e.entity_id.isdigit()
        else ""
        for e in events
    }


def list_events(
    session: Session, *, principal: Principal, flt: AuditFilter | None = None
) -> list[dict[str, Any]]:
    """Audit events, newest first, as plain rows (raw and in words). Only admins may read the
    trail."""
    from registry.auth import require

    require(principal, "audit.read")
    events = list(session.scalars(_query(flt or AuditFilter())))
    about = _about(session, events)
    return [event_row(e, about[e.id]) for e in events]


def events_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=AUDIT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: neutralise(v) for k, v in row.items()})
    return buffer.getvalue()


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify_chain` found: ``problems`` empty means the chain is whole."""

    events: int
    head_id: int | None
    head_hash: str | None
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(
    session: Session, *, principal: Principal, head: tuple[int, str] | None = None
) -> ChainReport:
    """Recompute every event's hash in id order and check each links to the one before.

    ``head`` is an ``(id, hash)`` noted earlier: that event must still be in the chain with that
    hash (which catches a forger who rewrote every event after the one they changed, or removed
    the newest events).
    """
    from registry.auth import require

    require(principal, "audit.read")
    problems: list[str] = []
    previous, previous_id, count = GENESIS, None, 0
    seen_head = head is None
    columns = [getattr(AuditEvent, c) for c in ("id", *_CHAINED, "prev_hash", "hash")]
    for row in session.execute(select(*columns).order_by(AuditEvent.id)).yield_per(2000):
        count += 1
        event = row._mapping
        where = f"event #{event['id']}"
        if event["hash"] is None:
            problems.append(f"{where} has no hash: it was written past the registry.")
        elif event_hash(event["prev_hash"] or "", event) != event["hash"]:
            problems.append(
                f"{where} was changed after it was written: its content no longer matches its hash."
            )
        if event["prev_hash"] != previous:
            after = f"#{previous_id}" if previous_id is not None else "the start of the trail"
            problems.append(
                f"The chain breaks between {after} and {where}: an event between them was "
                "removed or replaced."
            )
        if head is not None and event["id"] == head[0]:
            seen_head = True
            if event["hash"] != head[1]:
                problems.append(
                    f"{where} is not the event noted earlier (its hash was {head[1][:16]}..., "
                    f"now {str(event['hash'])[:16]}...): the trail was rewritten."
                )
        previous, previous_id = event["hash"] or "", event["id"]
        if len(problems) >= 20:
            problems.append("(stopped after 20 problems)")
            break
    if not seen_head and head is not None:
        problems.append(f"Event #{head[0]}, noted earlier, is no longer in the trail.")
    return ChainReport(count, previous_id, previous or None, problems)


def record_migration(
    connection: Connection, *, actor: str, start: str | None, end: str | None, target: str
) -> None:
    """Record a ``vru db upgrade``/``downgrade`` in the migration's own transaction.

    Called after an upgrade (the schema is the new one) and before a downgrade (still the old
    one).
    """
    record_operator_event(
        connection,
        actor=actor,
        action="migrate",
        before={"revision": start},
        after={"revision": end if end is not None else target},
        detail=f"vru db {'upgrade' if end is not None else 'downgrade'} to {target}",
    )


def record_operator_event(
    connection: Connection,
    *,
    actor: str,
    action: str,
    detail: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    """Record a ``vru db`` command (migrate, backup, restore) about the whole database.

    The schema may be any revision (a migration in progress, a restored old backup): a schema
    from before the hash chain gets a plain event; one with no audit table, none.
    """
    inspector = inspect(connection)
    if not inspector.has_table("audit_event"):
        return
    columns = {c["name"] for c in inspector.get_columns("audit_event")}
    with Session(bind=connection) as session:
        if {"prev_hash", "hash"} <= columns:
            record(
                session,
                actor=actor,
                action=action,
                entity="schema",
                before=before,
                after=after,
                detail=detail,
            )
            return
        fields = {
            "actor": actor,
            "action": action,
            "entity": "schema",
            "entity_id": None,
            "before": before,
            "after": after,
            "detail": detail,
        }
        typed: dict[str, type[TypeEngine[Any]] | TypeEngine[Any]] = {
            "before": JSON,
            "after": JSON,
            "occurred_at": DateTime(timezone=True),
        }
        plain = table("audit_event", *(column(c, typed.get(c)) for c in ("occurred_at", *fields)))
        session.execute(insert(plain).values(occurred_at=utcnow(), **fields))
