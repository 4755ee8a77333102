"""Step 1: every row of an upload, the grid or the form checked at once: row, column, value, why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import boroughs
from registry.deliveries.common import MAX_COUNT, MAX_SPEND, current_mi
from registry.files import restore
from registry.periods import format_month, month_index, parse_month
from registry.problems import Problem
from registry.programmes import closest, name_key
from registry.schema import (
    Programme,
)
from registry.uploads import TEMPLATE_COLUMNS


@dataclass(frozen=True)
class Checked:
    """Valid rows (typed, with ids) and the problems of the others."""

    rows: pd.DataFrame
    problems: list[Problem]
    rows_read: int
    rejected: int = 0


class _Collector:
    """Gathers problems cell by cell, keeping one problem per cell and a mask of bad rows."""

    def __init__(
        self, frame: pd.DataFrame, columns: dict[str, tuple[np.ndarray, list[str]]]
    ) -> None:
        self.frame = frame
        self.columns = columns
        self.rows = frame["row"].to_numpy()
        self.bad = np.zeros(len(frame), dtype=bool)
        self.problems: list[Problem] = []
        self._flagged: dict[str, np.ndarray] = {}

    def flag(self, mask: np.ndarray, column: str, reason: str | np.ndarray) -> None:
        """Record ``reason`` (one text, or one per row) for the rows in ``mask``."""
        mask = np.asarray(mask, dtype=bool) & ~self.bad_in(column)
        values = self.frame[column].to_numpy()
        for i in np.flatnonzero(mask):
            text = reason if isinstance(reason, str) else str(reason[i])
            self.problems.append(
                Problem(reason=text, row=int(self.rows[i]), column=column, value=str(values[i]))
            )
        self.bad |= mask
        self._flagged[column] = self.bad_in(column) | mask

    def bad_in(self, column: str) -> np.ndarray:
        """Rows already flagged in ``column``: one problem per cell is enough."""
        return self._flagged.get(column, np.zeros(len(self.frame), dtype=bool))


def _distinct(text: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each cell's code and the distinct cell values, cleaned of odd spaces.

    Real files repeat the same few names, months and figures thousands of times, so every check
    below runs once per distinct value and is spread back to the rows by the codes.
    """
    codes, uniques = pd.factorize(text.to_numpy(dtype=object))
    # A file this registry wrote guards text a spreadsheet would run as a formula; strip it.
    cleaned = [restore(str(u).replace("\u00a0", " ").strip()) for u in uniques]
    return codes, cleaned


def _numbers(cleaned: list[str], strip: str = ",") -> np.ndarray:
    values = []
    for u in cleaned:
        for char in strip:
            u = u.replace(char, "")
        values.append(u.strip())
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)


def _check_count(c: _Collector, column: str, required: bool) -> tuple[np.ndarray, np.ndarray]:
    """Validate a count column; returns its values (NaN where empty) and a mask of usable cells."""
    codes, cleaned = c.columns[column]
    empty = np.array([u == "" for u in cleaned], dtype=bool)[codes]
    if required:
        c.flag(empty, column, f"Empty: every row needs {column}.")
    number = _numbers(cleaned)[codes]
    c.flag(~empty & np.isnan(number), column, "Not a number: write a whole number such as 12.")
    finite = ~np.isnan(number)
    with np.errstate(invalid="ignore"):
        c.flag(
            finite & (np.mod(number, 1) != 0),
            column,
            "Not a whole number: counts of opportunities and people are whole numbers.",
        )
        c.flag(finite & (number < 0), column, "Negative: a count cannot be below zero.")
        c.flag(
            finite & (number > MAX_COUNT),
            column,
            f"Implausibly large: more than {MAX_COUNT:,} in one borough and month.",
        )
    return number, finite & ~c.bad_in(column)


def _per_value(codes: np.ndarray, values: Sequence[Any], missing: Any) -> np.ndarray:
    """Spread one result per distinct cell value back to every row (code -1 is a missing cell)."""
    table = np.empty(len(values) + 1, dtype=object)
    table[: len(values)] = list(values)
    table[-1] = missing
    return table[codes]


def check_rows(session: Session, frame: pd.DataFrame) -> Checked:
    """Validate every row of ``frame`` (text cells in the template's columns plus ``row``).

    Names, boroughs and months are resolved once per distinct value and the figures with
    vectorised pandas, so a file of 100,000 rows is checked without a Python loop per row. Each
    column has its own check below; they run in the order the problems are listed.
    """
    n = len(frame)
    columns = {
        column: _distinct(frame[column] if column in frame else pd.Series([""] * n))
        for column in TEMPLATE_COLUMNS
    }
    cells = pd.DataFrame(
        {"row": frame["row"].to_numpy()}
        | {k: np.asarray(u, dtype=object)[codes] for k, (codes, u) in columns.items()}
    )
    c = _Collector(cells, columns)
    for name in ("programme", "borough", "month"):
        codes, cleaned = columns[name]
        empty = np.array([u == "" for u in cleaned], dtype=bool)[codes]
        c.flag(empty, name, f"Empty: every row needs a {name}.")
    programme = _check_programme(c, session)
    borough_id, borough = _check_borough(c, session)
    month = _check_month(c, programme)
    opportunities, opportunities_ok = _check_count(c, "opportunities", required=True)
    participants, participants_ok = _check_count(c, "participants", required=False)
    c.flag(
        participants_ok & opportunities_ok & (np.nan_to_num(participants, nan=-1) > opportunities),
        "participants",
        "More participants than opportunities: each participant takes at least one opportunity.",
    )
    spend = _check_spend(c)
    _check_duplicates(c, programme.ids, borough_id, month)

    good = ~c.bad
    rows = pd.DataFrame(
        {
            "row": c.rows[good].astype(np.int64),
            "programme_id": programme.ids[good],
            "programme": programme.names[good],
            "borough_id": borough_id[good],
            "borough": borough[good],
            "mi": month[good],
            "opportunities": opportunities[good].astype(np.int64),
            "participants": participants[good],
            "spend_gbp": np.round(spend[good], 2),
        }
    )
    order: dict[str | None, int] = {name: i for i, name in enumerate(TEMPLATE_COLUMNS)}
    problems = sorted(c.problems, key=lambda p: (p.row or 0, order.get(p.column, 9)))
    return Checked(rows, problems, n, int(c.bad.sum()))


@dataclass(frozen=True)
class _Programmes:
    """Per row: the programme found (``ids`` -1 when not), its stored name and dates as month
    indexes, and the reasons a month before its start or after its end would be refused."""

    known: np.ndarray
    ids: np.ndarray
    names: np.ndarray
    start: np.ndarray
    end: np.ndarray
    before_reason: np.ndarray
    after_reason: np.ndarray


def _check_programme(c: _Collector, session: Session) -> _Programmes:
    programmes = list(
        session.execute(
            select(Programme.id, Programme.name, Programme.start_date, Programme.end_date)
        ).tuples()
    )
    by_key = {name_key(p[1]): p for p in programmes}
    codes, uniques = c.columns["programme"]
    found = [by_key.get(name_key(u)) for u in uniques]
    unknown_reasons = []
    for u, p in zip(uniques, found, strict=True):
        hint = closest(u, [q[1] for q in programmes]) if p is None else None
        unknown_reasons.append(
            "Unknown programme."
            + (f" Did you mean {hint!r}?" if hint else " Add it on the Programmes page first.")
        )
    known = _per_value(codes, [p is not None for p in found], False).astype(bool)
    c.flag(~known, "programme", _per_value(codes, unknown_reasons, ""))
    return _Programmes(
        known=known,
        ids=_per_value(codes, [p[0] if p else -1 for p in found], -1).astype(np.int64),
        names=_per_value(codes, [p[1] if p else "" for p in found], ""),
        start=_per_value(codes, [month_index(p[2]) if p else 0 for p in found], 0),
        end=_per_value(codes, [month_index(p[3]) if p and p[3] else 10**9 for p in found], 10**9),
        before_reason=_per_value(
            codes, [f"Before the programme started ({p[2]})." if p else "" for p in found], ""
        ),
        after_reason=_per_value(
            codes,
            [
                f"After the programme closed ({p[3]}); it accepts no later deliveries."
                if p and p[3]
                else ""
                for p in found
            ],
            "",
        ),
    )


def _check_borough(c: _Collector, session: Session) -> tuple[np.ndarray, np.ndarray]:
    """Each row's borough id (-1 when not found) and name."""
    ids = boroughs.borough_ids(session)
    codes, uniques = c.columns["borough"]
    infos = [boroughs.find(u) for u in uniques]
    reasons = []
    for u, info in zip(uniques, infos, strict=True):
        hint = boroughs.suggest(u) if info is None else None
        reasons.append(
            "Not a London borough name or GSS code (E09000001 to E09000033)."
            + (f" Did you mean {hint!r}?" if hint else "")
        )
    known = _per_value(codes, [i is not None for i in infos], False).astype(bool)
    c.flag(~known, "borough", _per_value(codes, reasons, ""))
    borough_id = _per_value(codes, [ids[i.gss_code] if i else -1 for i in infos], -1)
    return borough_id.astype(np.int64), _per_value(codes, [i.name if i else "" for i in infos], "")


def _check_month(c: _Collector, programme: _Programmes) -> np.ndarray:
    """Each row's month index (-1 when unreadable), refused outside the programme's dates."""
    codes, uniques = c.columns["month"]
    now = current_mi()
    parsed = [_parse_month_cell(u, now) for u in uniques]
    month = _per_value(codes, [-1 if p[0] is None else p[0] for p in parsed], -1).astype(np.int64)
    c.flag(month < 0, "month", _per_value(codes, [p[1] for p in parsed], ""))
    dated = (month >= 0) & programme.known
    c.flag(dated & (month < programme.start.astype(np.int64)), "month", programme.before_reason)
    c.flag(dated & (month > programme.end.astype(np.int64)), "month", programme.after_reason)
    return month


def _check_spend(c: _Collector) -> np.ndarray:
    """Spend in pounds (NaN where empty or unreadable)."""
    codes, cleaned = c.columns["spend_gbp"]
    empty = np.array([u == "" for u in cleaned], dtype=bool)[codes]
    spend = _numbers(cleaned, strip=",£ ")[codes]
    c.flag(~empty & np.isnan(spend), "spend_gbp", "Not an amount of money: write it like 1250.50.")
    finite = ~np.isnan(spend)
    with np.errstate(invalid="ignore"):
        c.flag(finite & (spend < 0), "spend_gbp", "Negative: spending cannot be below zero.")
        c.flag(
            finite & (np.abs(np.round(spend * 100) - spend * 100) > 1e-6),
            "spend_gbp",
            "More than two decimal places: write pounds and pence, like 1250.50.",
        )
        c.flag(finite & (spend > float(MAX_SPEND)), "spend_gbp", "Implausibly large amount.")
    return spend


def _check_duplicates(
    c: _Collector, programme_id: np.ndarray, borough_id: np.ndarray, month: np.ndarray
) -> None:
    """Refuse a second row for the same programme, borough and month, naming the first."""
    keyed = np.flatnonzero((programme_id >= 0) & (borough_id >= 0) & (month >= 0))
    keys = pd.DataFrame({"pid": programme_id[keyed], "bid": borough_id[keyed], "mi": month[keyed]})
    dup = keys.duplicated(keep="first").to_numpy()
    if not dup.any():
        return
    first = keys.assign(row=c.rows[keyed]).groupby(["pid", "bid", "mi"])["row"]
    first_row = first.transform("first").to_numpy()
    mask = np.zeros(len(c.rows), dtype=bool)
    mask[keyed[dup]] = True
    reasons = np.full(len(c.rows), "", dtype=object)
    reasons[keyed[dup]] = [
        f"Duplicate: row {r} already has this programme, borough and month." for r in first_row[dup]
    ]
    c.flag(mask, "month", reasons)


def _parse_month_cell(text: str, now_mi: int) -> tuple[int | None, str]:
    if text == "":
        return None, "Empty: every row needs a month."
    # Excel turns a typed 2024-04 into a date; an XLSX cell then reads 2024-04-01 00:00:00.
    candidate = text
    for suffix in (" 00:00:00", "T00:00:00", "-01"):
        if len(candidate) > 7:
            candidate = candidate.removesuffix(suffix)
    try:
        month = parse_month(candidate)
    except ValueError:
        return None, "Not a month in the form YYYY-MM, for example 2024-04."
    if len(candidate) != 7:
        return None, "Not a month in the form YYYY-MM, for example 2024-04."
    mi = month_index(month)
    if mi > now_mi:
        return None, f"In the future: {format_month(month)} has not happened yet."
    return mi, ""
