"""The registry's schema: typed SQLAlchemy 2.x mappings, the single source of truth.

Constraints live in the database (uniques, checks, foreign keys) so that no code path, however it
reaches the data, can store a negative count or a second row for the same programme, borough and
month. Names follow a naming convention so Alembic can alter them on SQLite and PostgreSQL alike.

The registry holds aggregates only: counts per borough and month, never a person.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("admin", "staff", "commissioner", "funder")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # SQLAlchemy types ``__table__`` as any FromClause (a class may be mapped to a join); every
    # class here maps one Table, so Core's insert() and update() accept ``Model.__table__``.
    __table__: ClassVar[Table]
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        dt.datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
    }


class Borough(Base):
    """One of the 33 London local authorities (32 boroughs and the City of London)."""

    __tablename__ = "borough"

    id: Mapped[int] = mapped_column(primary_key=True)
    gss_code: Mapped[str] = mapped_column(String(9), unique=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    inner_london: Mapped[bool] = mapped_column(Boolean)


class FundingStream(Base):
    __tablename__ = "funding_stream"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    funder: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    programmes: Mapped[list[Programme]] = relationship(back_populates="funding_stream")


class Programme(Base):
    __tablename__ = "programme"
    __table_args__ = (
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates_ordered"),
        CheckConstraint(
            "age_min IS NULL OR age_max IS NULL OR age_min <= age_max", name="ages_ordered"
        ),
        CheckConstraint("age_min IS NULL OR age_min >= 0", name="age_min_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    partner: Mapped[str | None] = mapped_column(String(200))
    funding_stream_id: Mapped[int] = mapped_column(ForeignKey("funding_stream.id"), index=True)
    intervention_type: Mapped[str | None] = mapped_column(String(100))
    age_min: Mapped[int | None]
    age_max: Mapped[int | None]
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    funding_stream: Mapped[FundingStream] = relationship(back_populates="programmes")


class ImportBatch(Base):
    """One load of a file (or of the demo data): what, when, by whom, and its fingerprint."""

    __tablename__ = "import_batch"
    __table_args__ = (
        CheckConstraint("rows_read >= 0", name="rows_read_non_negative"),
        CheckConstraint("rows_accepted >= 0", name="rows_accepted_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    format: Mapped[str | None] = mapped_column(String(32))
    file_name: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    release_label: Mapped[str | None] = mapped_column(String(100))
    # The publisher's release the batch's counts belong to (given, or inferred from the file):
    # releases are ordered by this date, never by import order. Null for population batches.
    release_date: Mapped[dt.date | None] = mapped_column(Date)
    rows_read: Mapped[int] = mapped_column(default=0)
    rows_accepted: Mapped[int] = mapped_column(default=0)
    synthetic: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    details: Mapped[dict[str, Any] | None]


class Delivery(Base):
    """Positive opportunities one programme delivered in one borough in one month."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("programme_id", "borough_id", "month"),
        CheckConstraint("opportunities >= 0", name="opportunities_non_negative"),
        CheckConstraint(
            "participants IS NULL OR participants >= 0", name="participants_non_negative"
        ),
        CheckConstraint(
            "participants IS NULL OR participants <= opportunities",
            name="participants_within_opportunities",
        ),
        CheckConstraint("spend_gbp IS NULL OR spend_gbp >= 0", name="spend_non_negative"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programme.id"))
    # No index of its own: no query filters deliveries by borough alone (the unique key serves
    # programme filters, ix_delivery_month the month ranges), boroughs are reference data that
    # are never deleted, and each extra index costs every insert (see BENCHMARKS.md).
    borough_id: Mapped[int] = mapped_column(ForeignKey("borough.id"))
    month: Mapped[dt.date] = mapped_column(Date, index=True)
    opportunities: Mapped[int]
    participants: Mapped[int | None]
    spend_gbp: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    version: Mapped[int] = mapped_column(default=1)
    deleted_at: Mapped[dt.datetime | None]
    deleted_reason: Mapped[str | None] = mapped_column(Text)
    import_batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batch.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100))
    # The day the return reached the VRU (by default the day it was recorded), which decides
    # whether it was late; amendments keep it. A backfill is past figures loaded as history
    # (demo data, a programme's records from before the registry): no return was due by it.
    received_on: Mapped[dt.date] = mapped_column(
        Date, default=dt.date.today, server_default=text("CURRENT_DATE")
    )
    backfill: Mapped[bool] = mapped_column(default=False, server_default=false())

    programme: Mapped[Programme] = relationship()
    borough: Mapped[Borough] = relationship()


class OutcomeMeasure(Base):
    """A crime outcome series, such as homicide. Measures are data: admins can add more."""

    __tablename__ = "outcome_measure"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    definition: Mapped[str] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(String(64), default="offences")
    source: Mapped[str | None] = mapped_column(Text)
    # The people its rate is per: ``all ages`` (residents) or ``LOW-HIGH`` years of age.
    population_band: Mapped[str] = mapped_column(
        String(16), default="all ages", server_default="all ages"
    )
    created_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow)
    # Sources (registry.outcomes.sources.SOURCES) most preferred first: the first holding any
    # counts for the measure is its source of record, the one users see.
    source_order: Mapped[list[str]] = mapped_column(JSON)


class OutcomeCount(Base):
    """Count of one measure in one borough in one month from one source, with the import (and so
    the release) that set it. Sources are stored side by side (registry.outcomes.sources)."""

    __tablename__ = "outcome_count"
    __table_args__ = (
        UniqueConstraint("measure_id", "source", "borough_id", "month"),
        CheckConstraint("count >= 0", name="count_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    measure_id: Mapped[int] = mapped_column(ForeignKey("outcome_measure.id"))
    source: Mapped[str] = mapped_column(String(32))
    borough_id: Mapped[int] = mapped_column(ForeignKey("borough.id"), index=True)
    month: Mapped[dt.date] = mapped_column(Date, index=True)
    count: Mapped[int]
    import_batch_id: Mapped[int] = mapped_column(ForeignKey("import_batch.id"), index=True)


class UnallocatedCount(Base):
    """London crimes the publisher places in no borough (``Unknown``, airports, ...).

    They belong in London totals, so those match the publisher's, and never in borough figures.
    """

    __tablename__ = "unallocated_count"
    __table_args__ = (
        UniqueConstraint("measure_id", "source", "month", "source_area"),
        CheckConstraint("count >= 0", name="count_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    measure_id: Mapped[int] = mapped_column(ForeignKey("outcome_measure.id"))
    source: Mapped[str] = mapped_column(String(32))
    month: Mapped[dt.date] = mapped_column(Date, index=True)
    source_area: Mapped[str] = mapped_column(String(100))
    count: Mapped[int]
    import_batch_id: Mapped[int] = mapped_column(ForeignKey("import_batch.id"), index=True)


class Population(Base):
    """Resident population of a borough in a year and age band (for example ``10-24``)."""

    __tablename__ = "population"
    __table_args__ = (
        UniqueConstraint("borough_id", "year", "age_band"),
        CheckConstraint("people >= 0", name="people_non_negative"),
        CheckConstraint("year BETWEEN 1900 AND 2200", name="year_plausible"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    borough_id: Mapped[int] = mapped_column(ForeignKey("borough.id"))
    year: Mapped[int]
    age_band: Mapped[str] = mapped_column(String(16))
    people: Mapped[int]
    import_batch_id: Mapped[int] = mapped_column(ForeignKey("import_batch.id"), index=True)


class MonthSignOff(Base):
    """A month whose delivery returns an admin has signed off: changes need it reopened first."""

    __tablename__ = "month_sign_off"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[dt.date] = mapped_column(Date, unique=True)
    signed_off_by: Mapped[str] = mapped_column(String(100))
    signed_off_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)


class MeasureBreak(Base):
    """A dated break in a measure's series (for example the Met's new crime system, Feb 2024)."""

    __tablename__ = "measure_break"
    __table_args__ = (UniqueConstraint("measure_id", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    measure_id: Mapped[int] = mapped_column(ForeignKey("outcome_measure.id"))
    month: Mapped[dt.date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text)


class MeasureMapping(Base):
    """An admin's override of which source category feeds which measure.

    The defaults ship as a file in the package; a row here replaces the default for one
    ``(source_format, source_category)``. A null ``measure_id`` maps the category to nothing.
    """

    __tablename__ = "measure_mapping"
    __table_args__ = (UniqueConstraint("source_format", "source_category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_format: Mapped[str] = mapped_column(String(32))
    source_category: Mapped[str] = mapped_column(String(255))
    measure_id: Mapped[int | None] = mapped_column(ForeignKey("outcome_measure.id"))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OutcomeRevision(Base):
    """An outcome count a newer release of the same source replaced, kept so anyone can see what
    changed: ``old_*`` is always the older release's, whichever of the two was imported first.

    ``borough_id`` is set for a borough count, ``source_area`` for a London unallocated count.
    """

    __tablename__ = "outcome_revision"
    __table_args__ = (
        CheckConstraint("old_count >= 0 AND new_count >= 0", name="counts_non_negative"),
        CheckConstraint(
            "(borough_id IS NULL) <> (source_area IS NULL)", name="borough_or_source_area"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    measure_id: Mapped[int] = mapped_column(ForeignKey("outcome_measure.id"), index=True)
    source: Mapped[str] = mapped_column(String(32))
    borough_id: Mapped[int | None] = mapped_column(ForeignKey("borough.id"))
    source_area: Mapped[str | None] = mapped_column(String(100))
    month: Mapped[dt.date] = mapped_column(Date)
    old_count: Mapped[int]
    new_count: Mapped[int]
    old_batch_id: Mapped[int] = mapped_column(ForeignKey("import_batch.id"))
    new_batch_id: Mapped[int] = mapped_column(ForeignKey("import_batch.id"), index=True)
    revised_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AppUser(Base):
    __tablename__ = "app_user"
    __table_args__ = (
        CheckConstraint(f"role IN ({', '.join(repr(r) for r in ROLES)})", name="role_known"),
        CheckConstraint("failed_logins >= 0", name="failed_logins_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    funder: Mapped[str | None] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(default=False)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None]


class AppSession(Base):
    """A signed-in browser: the cookie names it, the server decides whether it still holds.

    ``id`` is the SHA-256 of the random token in the cookie, so a copy of this table signs no one
    in. ``client_hash`` is the SHA-256 of the browser's User-Agent when it signed in.
    ``claimed_at`` is when the browser took its cookie (once only; see registry/sessions.py).
    """

    __tablename__ = "app_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    client_hash: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(64))


class AuditEvent(Base):
    """Who did what, when, with the record before and after. Append-only."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_entity_id", "entity", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    # Indexed with id: audit.data_version reads the newest event of each kind through it.
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    detail: Mapped[str | None] = mapped_column(Text)
    # The hash chain (registry.audit): each event's SHA-256 covers its content and the hash of
    # the event before it, so an edited or removed event breaks the chain (`vru audit verify`).
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


__all__ = [
    "ROLES",
    "AppUser",
    "AuditEvent",
    "Base",
    "Borough",
    "Delivery",
    "FundingStream",
    "ImportBatch",
    "MeasureBreak",
    "MeasureMapping",
    "MonthSignOff",
    "OutcomeCount",
    "OutcomeMeasure",
    "OutcomeRevision",
    "Population",
    "Programme",
    "UnallocatedCount",
]
