"""Outcome measures as data: list them with their series breaks, add measures and break notes."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import audit
from registry.auth import Principal, require, write_action
from registry.denominators import ALL_AGES, parse_band
from registry.errors import ConflictError, NotFoundError, RegistryError
from registry.periods import as_date, format_month
from registry.schema import MeasureBreak, OutcomeMeasure
from registry.windows import month_name

_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


def get_measure(session: Session, code: str) -> OutcomeMeasure:
    measure = session.scalar(select(OutcomeMeasure).where(OutcomeMeasure.code == code))
    if measure is None:
        codes = ", ".join(
            session.scalars(select(OutcomeMeasure.code).order_by(OutcomeMeasure.code))
        )
        raise NotFoundError(f"There is no outcome measure {code!r}; the measures are {codes}.")
    return measure


def measure_ids(session: Session) -> dict[str, int]:
    return dict(session.execute(select(OutcomeMeasure.code, OutcomeMeasure.id)).tuples().all())


@dataclass(frozen=True)
class SeriesBreak:
    """A dated break in a measure's series: counts from ``month`` on are recorded differently."""

    month: dt.date
    note: str

    def to_dict(self) -> dict[str, str]:
        """The JSON shape of ``"series_breaks"`` in ``vru trend`` and ``vru analyse``."""
        return {"month": format_month(self.month), "note": self.note}

    def sentence(self) -> str:
        """What goes beside a figure whose period crosses the break."""
        return (
            f"Series break in {month_name(self.month)}, inside this period: {self.note} "
            "Counts before and after it are not strictly comparable."
        )


def series_breaks(
    session: Session, measure: str, start: dt.date, end: dt.date
) -> list[SeriesBreak]:
    """The breaks in ``measure``'s series that a period from ``start`` to ``end`` crosses.

    A break in month B is crossed when the period holds months on both sides of it:
    ``start < B <= end``. A period that starts with the break lies wholly after it.
    """
    outcome = get_measure(session, measure)
    rows = session.scalars(
        select(MeasureBreak)
        .where(
            MeasureBreak.measure_id == outcome.id,
            MeasureBreak.month > start,
            MeasureBreak.month <= end,
        )
        .order_by(MeasureBreak.month)
    )
    return [SeriesBreak(as_date(b.month), b.note) for b in rows]


def list_measures(session: Session, *, principal: Principal) -> list[dict[str, Any]]:
    """Every measure with its definition, its dated series-break notes, its source order and
    its source of record (the first source in the order holding counts; null when none does)."""
    from registry.outcomes.sources import record_sources

    require(principal, "outcomes.read")
    record = record_sources(session)
    breaks: dict[int, list[dict[str, str]]] = {}
    for b in session.scalars(select(MeasureBreak).order_by(MeasureBreak.month)):
        breaks.setdefault(b.measure_id, []).append({"month": format_month(b.month), "note": b.note})
    return [
        {
            "code": m.code,
            "label": m.label,
            "definition": m.definition,
            "unit": m.unit,
            "source": m.source or "",
            "population_band": m.population_band,
            "breaks": breaks.get(m.id, []),
            "source_order": list(m.source_order),
            "source_of_record": record.get(m.id),
        }
        for m in session.scalars(select(OutcomeMeasure).order_by(OutcomeMeasure.id))
    ]


def _snapshot(m: OutcomeMeasure) -> dict[str, Any]:
    return {
        "code": m.code,
        "label": m.label,
        "definition": m.definition,
        "unit": m.unit,
        "source": m.source,
        "population_band": m.population_band,
        "source_order": m.source_order,
    }


@write_action("measures.manage")
def add_measure(
    session: Session,
    *,
    principal: Principal,
    code: str,
    label: str,
    definition: str,
    unit: str = "offences",
    source: str | None = None,
    population_band: str = ALL_AGES,
) -> OutcomeMeasure:
    """Add an outcome measure; map source categories to it with ``set_mapping``.

    ``population_band`` is who its rate is per: all ages (residents) unless the measure counts
    an age group, as knife crime with injury counts victims aged 1-24. It takes the default
    source order (Met sources first, police.uk last); change it with
    :func:`registry.outcomes.sources.set_source_order`.
    """
    from registry.outcomes.sources import default_order

    code = code.strip()
    if not _CODE_RE.match(code):
        raise RegistryError(
            f"{code!r} is not a valid measure code: use 2-64 lower-case letters, digits and '_', "
            "starting with a letter."
        )
    if not label.strip() or not definition.strip() or not unit.strip():
        raise RegistryError("A measure needs a label, a definition and a unit.")
    band = parse_band(population_band)
    if session.scalar(select(OutcomeMeasure.id).where(OutcomeMeasure.code == code)) is not None:
        raise ConflictError(f"A measure with code {code!r} already exists.")
    measure = OutcomeMeasure(
        code=code,
        label=label.strip(),
        definition=definition.strip(),
        unit=unit.strip(),
        source=(source or "").strip() or None,
        population_band=band,
        source_order=default_order(code),
    )
    session.add(measure)
    session.flush()
    audit.record(
        session,
        actor=principal,
        action="create",
        entity="outcome_measure",
        entity_id=measure.id,
        after=_snapshot(measure),
    )
    return measure


@write_action("measures.manage")
def add_break(
    session: Session, *, principal: Principal, code: str, month: dt.date, note: str
) -> MeasureBreak:
    """Record a dated break in a measure's series, which charts and models then show."""
    measure = get_measure(session, code)
    if not note.strip():
        raise RegistryError("A series break needs a note saying what changed.")
    month = month.replace(day=1)
    existing = session.scalar(
        select(MeasureBreak).where(
            MeasureBreak.measure_id == measure.id, MeasureBreak.month == month
        )
    )
    if existing is not None:
        raise ConflictError(
            f"{code} already has a break note for {format_month(month)}: {existing.note!r}."
        )
    brk = MeasureBreak(measure_id=measure.id, month=month, note=note.strip())
    session.add(brk)
    session.flush()
    audit.record(
        session,
        actor=principal,
        action="create",
        entity="measure_break",
        entity_id=brk.id,
        after={"measure": code, "month": format_month(month), "note": brk.note},
    )
    return brk


@write_action("measures.manage")
def set_population_band(
    session: Session, *, principal: Principal, code: str, band: str
) -> OutcomeMeasure:
    """Change who ``code``'s rate is per. Population files loaded before a new band existed
    lack it: loading them again derives it."""
    measure = get_measure(session, code)
    new = parse_band(band)
    if new == measure.population_band:
        return measure
    before = _snapshot(measure)
    measure.population_band = new
    session.flush()
    audit.record(
        session,
        actor=principal,
        action="amend",
        entity="outcome_measure",
        entity_id=measure.id,
        before=before,
        after=_snapshot(measure),
    )
    return measure
