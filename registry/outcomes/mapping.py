"""Which source category feeds which outcome measure.

The defaults ship in ``default_mapping.csv`` next to this module (read it: each line says why);
an admin's row in ``measure_mapping`` replaces the default for one format and category. A
category mapped to no measure is known and deliberately left out; a category that is in neither
is *unmapped*: its rows are skipped and the import report lists it, so an admin can decide.

For ``mps-borough`` a category is ``Major / Minor``; ``Major / *`` covers every minor category of
a major one. The Met cuts some names at 50 characters, so a 50-character name also matches a
longer mapped name it begins.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import audit
from registry.auth import Principal, require, write_action
from registry.errors import NotFoundError, RegistryError
from registry.outcomes.common import category_key, clean
from registry.outcomes.formats import MAPPED_FORMATS
from registry.schema import MeasureMapping, OutcomeMeasure

TRUNCATED_AT = 50


@dataclass(frozen=True)
class MappingRow:
    source_format: str
    source_category: str
    measure: str | None
    origin: str  # "default" or "override"
    note: str = ""


def default_rows() -> list[MappingRow]:
    text = resources.files("registry.outcomes").joinpath("default_mapping.csv").read_text("utf-8")
    return [
        MappingRow(
            r["source_format"], r["source_category"], r["measure"] or None, "default", r["note"]
        )
        for r in csv.DictReader(text.splitlines())
    ]


class Mapper:
    """Resolves a source category to ``(known, measure code or None)`` for one format."""

    def __init__(self, source_format: str, rows: list[MappingRow]) -> None:
        self.source_format = source_format
        self._exact: dict[str, str | None] = {}
        for row in rows:
            if row.source_format == source_format:
                self._exact[category_key(row.source_category)] = row.measure
        self._cache: dict[str, tuple[bool, str | None]] = {}

    def resolve(self, category: str) -> tuple[bool, str | None]:
        key = category_key(category)
        if key not in self._cache:
            self._cache[key] = self._resolve(key)
        return self._cache[key]

    def _resolve(self, key: str) -> tuple[bool, str | None]:
        if key in self._exact:
            return True, self._exact[key]
        major, sep, minor = key.partition(" / ")
        # Cut at 50 characters; a cut just after a space leaves 49 once the cell is trimmed.
        if sep and TRUNCATED_AT - 1 <= len(minor) <= TRUNCATED_AT:
            for known, measure in self._exact.items():
                k_major, _, k_minor = known.partition(" / ")
                if k_major == major and k_minor.startswith(minor):
                    return True, measure
        if sep and f"{major} / *" in self._exact:
            return True, self._exact[f"{major} / *"]
        return False, None

    def measures(self) -> set[str]:
        return {m for m in self._exact.values() if m}


def _overrides(session: Session) -> list[MappingRow]:
    stmt = select(MeasureMapping, OutcomeMeasure.code).outerjoin(
        OutcomeMeasure, MeasureMapping.measure_id == OutcomeMeasure.id
    )
    return [
        MappingRow(m.source_format, m.source_category, code, "override", f"set by {m.created_by}")
        for m, code in session.execute(stmt).tuples()
    ]


def effective_rows(session: Session) -> list[MappingRow]:
    """Defaults with the admin's overrides applied (an override replaces the same category)."""
    overrides = _overrides(session)
    replaced = {(o.source_format, category_key(o.source_category)) for o in overrides}
    rows = [
        r
        for r in default_rows()
        if (r.source_format, category_key(r.source_category)) not in replaced
    ]
    return sorted(
        rows + overrides, key=lambda r: (r.source_format, category_key(r.source_category))
    )


def mapper_for(session: Session, source_format: str) -> Mapper:
    return Mapper(source_format, effective_rows(session))


def list_mapping(
    session: Session, *, principal: Principal, source_format: str | None = None
) -> list[dict[str, str]]:
    """The mapping in force, one row per category, saying whether it is a default or override."""
    require(principal, "outcomes.read")
    return [
        {
            "source_format": r.source_format,
            "source_category": r.source_category,
            "measure": r.measure or "",
            "origin": r.origin,
            "note": r.note,
        }
        for r in effective_rows(session)
        if source_format is None or r.source_format == source_format
    ]


@write_action("measures.manage")
def set_mapping(
    session: Session,
    *,
    principal: Principal,
    source_format: str,
    source_category: str,
    measure: str | None,
) -> MappingRow:
    """Map a source category to a measure (or, with ``measure=None``, to none), overriding the
    default. Takes effect for imports from now on; stored counts are not recomputed."""
    if source_format not in MAPPED_FORMATS:
        raise RegistryError(
            f"{source_format!r} has no category mapping; choose one of {', '.join(MAPPED_FORMATS)}."
        )
    category = clean(source_category)
    if not category:
        raise RegistryError("Give the source category exactly as the file writes it.")
    measure_id = None
    if measure is not None:
        measure_id = session.scalar(select(OutcomeMeasure.id).where(OutcomeMeasure.code == measure))
        if measure_id is None:
            raise NotFoundError(
                f"There is no outcome measure {measure!r}; see `vru measures list`."
            )
    before_known, before = Mapper(source_format, effective_rows(session)).resolve(category)
    existing = next(
        (
            m
            for m in session.scalars(
                select(MeasureMapping).where(MeasureMapping.source_format == source_format)
            )
            if category_key(m.source_category) == category_key(category)
        ),
        None,
    )
    if existing is None:
        existing = MeasureMapping(
            source_format=source_format,
            source_category=category,
            measure_id=measure_id,
            created_by=principal.username,
        )
        session.add(existing)
    else:
        existing.measure_id = measure_id
        existing.created_by = principal.username
    session.flush()
    audit.record(
        session,
        actor=principal,
        action="amend" if before_known else "create",
        entity="measure_mapping",
        entity_id=existing.id,
        before={"source_format": source_format, "source_category": category, "measure": before}
        if before_known
        else None,
        after={"source_format": source_format, "source_category": category, "measure": measure},
    )
    return MappingRow(source_format, category, measure, "override", f"set by {principal.username}")
