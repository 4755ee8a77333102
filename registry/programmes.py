"""Funding streams and programmes: create, edit and close.

A programme's name is unique (case and spacing ignored when checking), and a closed programme (one
with an end date) accepts no deliveries after the month of that date; the delivery validation reads
the dates from here.
"""

from __future__ import annotations

import datetime as dt
import difflib
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import audit, auth
from registry.auth import Principal, write_action
from registry.errors import ConflictError, NotFoundError, RegistryError
from registry.schema import Delivery, FundingStream, Programme


def name_key(name: str) -> str:
    """The one way a programme or funding-stream name is matched: case and spacing ignored, so
    ``after-school  Sport leagues`` finds ``After-school sport leagues``."""
    return " ".join(str(name).split()).casefold()


Named = TypeVar("Named", Programme, FundingStream)


def find_named(session: Session, model: type[Named], name: str) -> Named | None:
    """The programme or funding stream called ``name`` (:func:`name_key`), or ``None``."""
    wanted = name_key(name)
    return next(
        (row for row in session.scalars(select(model)) if name_key(row.name) == wanted), None
    )


def _clean_name(name: str, what: str) -> str:
    cleaned = " ".join(str(name or "").split())
    if not cleaned:
        raise RegistryError(f"A {what} needs a name.")
    if len(cleaned) > 200:
        raise RegistryError(f"A {what} name can have at most 200 characters.")
    return cleaned


def closest(value: str, names: list[str]) -> str | None:
    """The name in ``names`` closest to ``value`` (case ignored), if one is a likely slip."""
    keys = {name_key(n): n for n in names}
    match = difflib.get_close_matches(name_key(value), list(keys), n=1, cutoff=0.6)
    return keys[match[0]] if match else None


def _stream_snapshot(stream: FundingStream) -> dict[str, Any]:
    return {"name": stream.name, "funder": stream.funder}


def _programme_snapshot(programme: Programme) -> dict[str, Any]:
    return {
        "name": programme.name,
        "partner": programme.partner,
        "funding_stream": programme.funding_stream.name,
        "intervention_type": programme.intervention_type,
        "age_min": programme.age_min,
        "age_max": programme.age_max,
        "start_date": programme.start_date,
        "end_date": programme.end_date,
    }


def get_funding_stream(session: Session, name: str) -> FundingStream:
    stream = find_named(session, FundingStream, name)
    if stream is not None:
        return stream
    streams = list(session.scalars(select(FundingStream)))
    hint = closest(name, [s.name for s in streams])
    raise NotFoundError(
        f"There is no funding stream called {name!r}."
        + (f" Did you mean {hint!r}?" if hint else "")
        + " Add it with `vru funding-streams add NAME --funder NAME`."
    )


def get_programme(session: Session, name: str) -> Programme:
    programme = find_named(session, Programme, name)
    if programme is not None:
        return programme
    programmes = list(session.scalars(select(Programme)))
    hint = closest(name, [p.name for p in programmes])
    raise NotFoundError(
        f"There is no programme called {name!r}." + (f" Did you mean {hint!r}?" if hint else "")
    )


@write_action("funding_streams.write")
def add_funding_stream(
    session: Session, *, principal: Principal, name: str, funder: str
) -> FundingStream:
    name = _clean_name(name, "funding stream")
    funder = _clean_name(funder, "funder")
    existing = session.scalars(select(FundingStream.name)).all()
    if any(name_key(n) == name_key(name) for n in existing):
        raise ConflictError(f"A funding stream called {name!r} already exists.")
    stream = FundingStream(name=name, funder=funder)
    session.add(stream)
    session.flush()
    audit.record(
        session,
        actor=principal,
        action="create",
        entity="funding_stream",
        entity_id=stream.id,
        after=_stream_snapshot(stream),
    )
    return stream


def list_funding_streams(session: Session, *, principal: Principal) -> list[dict[str, Any]]:
    """Funding streams with their programme counts: all of them, or a funder's own only."""
    visible = auth.visible_funding_stream_ids(session, principal)
    stmt = select(FundingStream).order_by(FundingStream.name)
    if visible is not None:
        stmt = stmt.where(FundingStream.id.in_(visible))
    counts = dict(
        session.execute(
            select(Programme.funding_stream_id, func.count()).group_by(Programme.funding_stream_id)
        )
        .tuples()
        .all()
    )
    return [
        {"name": s.name, "funder": s.funder, "programmes": counts.get(s.id, 0)}
        for s in session.scalars(stmt)
    ]


def _check_dates(start: dt.date, end: dt.date | None) -> None:
    if end is not None and end < start:
        raise RegistryError(f"The end date {end} is before the start date {start}.")


def _check_ages(age_min: int | None, age_max: int | None) -> None:
    if age_min is not None and age_min < 0:
        raise RegistryError("The youngest age cannot be negative.")
    if age_min is not None and age_max is not None and age_min > age_max:
        raise RegistryError(f"The age range {age_min}-{age_max} is the wrong way round.")


@write_action("programmes.write")
def add_programme(
    session: Session,
    *,
    principal: Principal,
    name: str,
    funding_stream: str,
    partner: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    intervention_type: str | None = None,
    age_min: int | None = None,
    age_max: int | None = None,
) -> Programme:
    """Create a programme. Without a start date it starts today."""
    name = _clean_name(name, "programme")
    existing = session.scalars(select(Programme.name)).all()
    if any(name_key(n) == name_key(name) for n in existing):
        raise ConflictError(f"A programme called {name!r} already exists; names are unique.")
    stream = get_funding_stream(session, funding_stream)
    start = start or dt.date.today()
    _check_dates(start, end)
    _check_ages(age_min, age_max)
    programme = Programme(
        name=name,
        funding_stream_id=stream.id,
        partner=(partner or "").strip() or None,
        intervention_type=(intervention_type or "").strip() or None,
        age_min=age_min,
        age_max=age_max,
        start_date=start,
        end_date=end,
    )
    session.add(programme)
    session.flush()
    session.refresh(programme)
    audit.record(
        session,
        actor=principal,
        action="create",
        entity="programme",
        entity_id=programme.id,
        after=_programme_snapshot(programme),
    )
    return programme


_EDITABLE = (
    "name",
    "partner",
    "funding_stream",
    "intervention_type",
    "age_min",
    "age_max",
    "start_date",
    "end_date",
)


@write_action("programmes.write")
def edit_programme(
    session: Session, *, principal: Principal, name: str, changes: dict[str, Any]
) -> Programme:
    """Change a programme's details. ``changes`` maps field names to new values.

    Moving the dates so that recorded deliveries fall outside them is refused: the deliveries
    would no longer be valid.
    """
    unknown = sorted(set(changes) - set(_EDITABLE))
    if unknown:
        raise RegistryError(f"These programme fields cannot be changed: {', '.join(unknown)}.")
    programme = get_programme(session, name)
    before = _programme_snapshot(programme)
    if "name" in changes:
        new_name = _clean_name(changes["name"], "programme")
        others = session.scalars(select(Programme.name).where(Programme.id != programme.id))
        if any(name_key(n) == name_key(new_name) for n in others):
            raise ConflictError(f"A programme called {new_name!r} already exists.")
        programme.name = new_name
    if "funding_stream" in changes:
        programme.funding_stream_id = get_funding_stream(session, changes["funding_stream"]).id
    for field in ("partner", "intervention_type"):
        if field in changes:
            setattr(programme, field, (changes[field] or "").strip() or None)
    for field in ("age_min", "age_max", "start_date", "end_date"):
        if field in changes:
            setattr(programme, field, changes[field])
    _check_dates(programme.start_date, programme.end_date)
    _check_ages(programme.age_min, programme.age_max)
    _check_deliveries_within_dates(session, programme)
    session.flush()
    session.refresh(programme)
    after = _programme_snapshot(programme)
    audit.record(
        session,
        actor=principal,
        action="amend",
        entity="programme",
        entity_id=programme.id,
        before=before,
        after=after,
    )
    return programme


def _check_deliveries_within_dates(session: Session, programme: Programme) -> None:
    live = select(func.min(Delivery.month), func.max(Delivery.month)).where(
        Delivery.programme_id == programme.id, Delivery.deleted_at.is_(None)
    )
    first, last = session.execute(live).one()
    if first is not None and first < programme.start_date.replace(day=1):
        raise ConflictError(
            f"{programme.name} has deliveries recorded from {first:%Y-%m}, before the start date "
            f"{programme.start_date}; delete or move them first."
        )
    if last is not None and programme.end_date is not None and last > programme.end_date:
        raise ConflictError(
            f"{programme.name} has deliveries recorded up to {last:%Y-%m}, after the end date "
            f"{programme.end_date}; delete them first or choose a later end date."
        )


@write_action("programmes.write")
def close_programme(
    session: Session, *, principal: Principal, name: str, end: dt.date
) -> Programme:
    """Close a programme on ``end``: it then accepts no deliveries for later months."""
    return edit_programme(session, principal=principal, name=name, changes={"end_date": end})


def list_programmes(session: Session, *, principal: Principal) -> list[dict[str, Any]]:
    """Programmes with their funding stream: all of them, or those of a funder's own streams."""
    today = dt.date.today()
    visible = auth.visible_funding_stream_ids(session, principal)
    stmt = (
        select(Programme, FundingStream.name)
        .join(FundingStream, Programme.funding_stream_id == FundingStream.id)
        .order_by(Programme.name)
    )
    if visible is not None:
        stmt = stmt.where(FundingStream.id.in_(visible))
    rows = session.execute(stmt).all()
    return [
        {
            "name": p.name,
            "funding_stream": stream,
            "partner": p.partner,
            "intervention_type": p.intervention_type,
            "age_min": p.age_min,
            "age_max": p.age_max,
            "start_date": p.start_date,
            "end_date": p.end_date,
            "status": "closed" if p.end_date is not None and p.end_date < today else "open",
        }
        for p, stream in rows
    ]
