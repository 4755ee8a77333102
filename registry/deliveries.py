"""Recording deliveries: one row by form, many by grid or spreadsheet, with one set of rules.

Every way in (the form, the grid, an upload, ``vru import deliveries``) goes through the same three
steps:

1. :func:`check_rows` validates every row at once with pandas (no per-row database work) and
   reports each problem as row, column, value and reason;
2. :func:`preview` compares the valid rows with what the registry holds and classifies each as
   added, amended or unchanged, with plausibility warnings beside unusual figures;
3. :func:`commit` writes the added and amended rows in one transaction with bulk Core statements,
   after checking that none of them changed since it was read (the ``version`` column), so two
   people editing the same row cannot overwrite each other silently.

Amendments keep an audit event each (who, when, before, after); deletions are soft, with a reason.
A month an admin has signed off refuses changes until it is reopened.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import and_, bindparam, case, column, insert, select, table, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry import audit, boroughs, db
from registry.auth import Principal, require, write_action
from registry.errors import ConflictError, NotFoundError, RegistryError
from registry.files import restore
from registry.models import (
    Borough,
    Delivery,
    ImportBatch,
    MonthSignOff,
    Programme,
    utcnow,
)
from registry.periods import check_period, format_month, index_month, month_index, parse_month
from registry.programmes import closest, get_programme, name_key
from registry.uploads import TEMPLATE_COLUMNS, Problem, Sheet, read_upload

MAX_COUNT = 1_000_000
MAX_SPEND = Decimal("999999999999.99")
# Plausibility: compare with the median of up to this many earlier months, needing at least
# PLAUSIBILITY_MIN_MONTHS of them, and warn when the figure is this improbable under Poisson.
PLAUSIBILITY_MONTHS = 6
PLAUSIBILITY_MIN_MONTHS = 3
PLAUSIBILITY_P = 0.001
PLAUSIBILITY_MIN_RATE = 1.0
DUE_DAY = 15  # a month's return is due by this day of the following month
FIELDS = ("opportunities", "participants", "spend_gbp")
_KEY = ["programme_id", "borough_id", "mi"]


def _current_mi() -> int:
    return month_index(dt.date.today())


# --- step 1: validate ------------------------------------------------------------------------


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
    vectorised pandas, so a file of 100,000 rows is checked without a Python loop per row.
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

    programmes = list(
        session.execute(
            select(Programme.id, Programme.name, Programme.start_date, Programme.end_date)
        ).tuples()
    )
    by_key = {name_key(p[1]): p for p in programmes}
    codes, uniques = columns["programme"]
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
    pid = _per_value(codes, [p[0] if p else -1 for p in found], -1).astype(np.int64)
    names = _per_value(codes, [p[1] if p else "" for p in found], "")
    start_mi = _per_value(codes, [month_index(p[2]) if p else 0 for p in found], 0)
    end_mi = _per_value(codes, [month_index(p[3]) if p and p[3] else 10**9 for p in found], 10**9)
    before_reason = _per_value(
        codes, [f"Before the programme started ({p[2]})." if p else "" for p in found], ""
    )
    after_reason = _per_value(
        codes,
        [
            f"After the programme closed ({p[3]}); it accepts no later deliveries."
            if p and p[3]
            else ""
            for p in found
        ],
        "",
    )

    ids = boroughs.borough_ids(session)
    codes_b, uniques_b = columns["borough"]
    infos = [boroughs.find(u) for u in uniques_b]
    b_reasons = []
    for u, info in zip(uniques_b, infos, strict=True):
        hint = boroughs.suggest(u) if info is None else None
        b_reasons.append(
            "Not a London borough name or GSS code (E09000001 to E09000033)."
            + (f" Did you mean {hint!r}?" if hint else "")
        )
    b_known = _per_value(codes_b, [i is not None for i in infos], False).astype(bool)
    c.flag(~b_known, "borough", _per_value(codes_b, b_reasons, ""))
    bid = _per_value(codes_b, [ids[i.gss_code] if i else -1 for i in infos], -1).astype(np.int64)
    bname = _per_value(codes_b, [i.name if i else "" for i in infos], "")

    codes_m, uniques_m = columns["month"]
    now_mi = _current_mi()
    parsed = [_parse_month_cell(u, now_mi) for u in uniques_m]
    mi = _per_value(codes_m, [-1 if p[0] is None else p[0] for p in parsed], -1).astype(np.int64)
    c.flag(mi < 0, "month", _per_value(codes_m, [p[1] for p in parsed], ""))
    dated = (mi >= 0) & known
    c.flag(dated & (mi < start_mi.astype(np.int64)), "month", before_reason)
    c.flag(dated & (mi > end_mi.astype(np.int64)), "month", after_reason)

    opps, opps_ok = _check_count(c, "opportunities", required=True)
    parts, parts_ok = _check_count(c, "participants", required=False)
    c.flag(
        parts_ok & opps_ok & (np.nan_to_num(parts, nan=-1) > opps),
        "participants",
        "More participants than opportunities: each participant takes at least one opportunity.",
    )

    codes_s, cleaned_s = columns["spend_gbp"]
    spend_empty = np.array([u == "" for u in cleaned_s], dtype=bool)[codes_s]
    spend = _numbers(cleaned_s, strip=",£ ")[codes_s]
    c.flag(
        ~spend_empty & np.isnan(spend),
        "spend_gbp",
        "Not an amount of money: write it like 1250.50.",
    )
    finite = ~np.isnan(spend)
    with np.errstate(invalid="ignore"):
        c.flag(finite & (spend < 0), "spend_gbp", "Negative: spending cannot be below zero.")
        c.flag(
            finite & (np.abs(np.round(spend * 100) - spend * 100) > 1e-6),
            "spend_gbp",
            "More than two decimal places: write pounds and pence, like 1250.50.",
        )
        c.flag(finite & (spend > float(MAX_SPEND)), "spend_gbp", "Implausibly large amount.")

    keyed = np.flatnonzero((pid >= 0) & (bid >= 0) & (mi >= 0))
    keys = pd.DataFrame({"pid": pid[keyed], "bid": bid[keyed], "mi": mi[keyed]})
    dup = keys.duplicated(keep="first").to_numpy()
    if dup.any():
        first = keys.assign(row=c.rows[keyed]).groupby(["pid", "bid", "mi"])["row"]
        first_row = first.transform("first").to_numpy()
        mask = np.zeros(n, dtype=bool)
        mask[keyed[dup]] = True
        reasons = np.full(n, "", dtype=object)
        reasons[keyed[dup]] = [
            f"Duplicate: row {r} already has this programme, borough and month."
            for r in first_row[dup]
        ]
        c.flag(mask, "month", reasons)

    good = ~c.bad
    rows = pd.DataFrame(
        {
            "row": c.rows[good].astype(np.int64),
            "programme_id": pid[good],
            "programme": names[good],
            "borough_id": bid[good],
            "borough": bname[good],
            "mi": mi[good],
            "opportunities": opps[good].astype(np.int64),
            "participants": parts[good],
            "spend_gbp": np.round(spend[good], 2),
        }
    )
    order = {name: i for i, name in enumerate(TEMPLATE_COLUMNS)}
    problems = sorted(c.problems, key=lambda p: (p.row or 0, order.get(p.column, 9)))
    return Checked(rows, problems, n, int(c.bad.sum()))


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


# --- step 2: preview -------------------------------------------------------------------------


STATUSES = ("added", "amended", "unchanged")


@dataclass(frozen=True)
class Preview:
    """What a save would do. ``rows`` carries each valid row's status and the values it was
    compared with (``was_*``), which :func:`commit` checks again before writing."""

    rows: pd.DataFrame
    problems: list[Problem]
    warnings: list[Problem]
    rows_read: int
    rejected: int
    file_name: str | None = None
    sha256: str | None = None
    format: str | None = None
    kind: str = "upload"
    #: True when the file itself was refused (unreadable, empty, wrong header): no row was read.
    refused: bool = False

    def count(self, status: str) -> int:
        return int((self.rows["status"] == status).sum()) if len(self.rows) else 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> dict[str, Any]:
        return {
            "added": self.count("added"),
            "amended": self.count("amended"),
            "unchanged": self.count("unchanged"),
            "rejected": self.rejected,
            "errors": [p.as_dict() for p in self.problems],
        }

    def table(self) -> pd.DataFrame:
        """The rows as a person reads them: status, figures, what they replace, warnings."""
        if not len(self.rows):
            return pd.DataFrame(columns=["row", "status", "programme", "borough", "month"])
        r = self.rows
        return pd.DataFrame(
            {
                "row": r["row"],
                "status": r["status"],
                "programme": r["programme"],
                "borough": r["borough"],
                "month": [format_month(index_month(int(m))) for m in r["mi"]],
                "opportunities": r["opportunities"],
                "participants": r["participants"].astype("Int64"),
                "spend_gbp": r["spend_gbp"],
                "was": [_was_text(row) for row in r.itertuples()],
                "warning": r["warning"],
            }
        )


def _was_text(row: Any) -> str:
    if row.status != "amended" or not row.was_live:
        return ""
    parts = [f"opportunities {int(row.was_opportunities)}"]
    if not np.isnan(row.was_participants):
        parts.append(f"participants {int(row.was_participants)}")
    if not np.isnan(row.was_spend_gbp):
        parts.append(f"spend £{row.was_spend_gbp:,.2f}")
    return ", ".join(parts)


def _existing(
    session: Session, programme_ids: Sequence[int], lo_mi: int, hi_mi: int, lock: bool = False
) -> pd.DataFrame:
    """Deliveries (live or deleted) of these programmes between two month indexes."""
    t = Delivery.__table__
    stmt = select(
        t.c.id,
        t.c.programme_id,
        t.c.borough_id,
        t.c.month,
        t.c.opportunities,
        t.c.participants,
        t.c.spend_gbp,
        t.c.version,
        t.c.deleted_at,
        t.c.updated_by,
    ).where(
        t.c.programme_id.in_([int(p) for p in programme_ids]),
        t.c.month.between(index_month(lo_mi), index_month(hi_mi)),
    )
    if lock:
        # Rows are locked in one order (by id) in every transaction, so two saves that touch
        # the same rows wait for each other instead of deadlocking.
        stmt = stmt.order_by(t.c.id).with_for_update()
    got = session.execute(stmt).all()
    frame = pd.DataFrame(
        got,
        columns=[
            "id",
            "programme_id",
            "borough_id",
            "month",
            "opportunities",
            "participants",
            "spend_gbp",
            "version",
            "deleted_at",
            "updated_by",
        ],
    )
    frame["mi"] = [month_index(m) for m in frame["month"]]
    frame["live"] = frame["deleted_at"].isna()
    frame["participants"] = pd.to_numeric(frame["participants"]).astype(float)
    frame["spend_gbp"] = pd.to_numeric(frame["spend_gbp"].astype(object)).astype(float)
    frame["opportunities"] = pd.to_numeric(frame["opportunities"]).astype(float)
    return frame.drop(columns=["month", "deleted_at"])


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality where two missing values count as equal."""
    av, bv = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
    return (av == bv) | (np.isnan(av) & np.isnan(bv))


def _key(frame: pd.DataFrame) -> np.ndarray:
    """Each row's (programme, borough, month) as one int64: matching on it is several times
    faster than a join on three columns. Month indexes stay below 2**20 (the year 87,000) and
    borough ids below 2**12 (there are 33 boroughs), so the parts cannot overlap."""
    return (
        (frame["programme_id"].to_numpy(dtype=np.int64) << 32)
        | (frame["borough_id"].to_numpy(dtype=np.int64) << 20)
        | frame["mi"].to_numpy(dtype=np.int64)
    )


def _attach(rows: pd.DataFrame, existing: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """``rows`` with the matching ``existing`` row's columns, prefixed; a row with no match gets
    ``live`` False, ``version`` 0 and missing values. ``existing`` has each key once (the
    table's unique constraint)."""
    at = pd.Index(_key(existing)).get_indexer(_key(rows))
    found = at >= 0
    source = at[found]

    def column(name: str, missing: Any, dtype: Any) -> np.ndarray:
        out = np.full(len(rows), missing, dtype=dtype)
        out[found] = existing[name].to_numpy(dtype=dtype)[source]
        return out

    return rows.assign(
        **{
            f"{prefix}id": column("id", np.nan, float),
            f"{prefix}version": column("version", 0, np.int64),
            f"{prefix}live": column("live", False, bool),
            f"{prefix}opportunities": column("opportunities", np.nan, float),
            f"{prefix}participants": column("participants", np.nan, float),
            f"{prefix}spend_gbp": column("spend_gbp", np.nan, float),
            f"{prefix}updated_by": column("updated_by", np.nan, object),
        }
    )


def _signed_off(session: Session) -> set[int]:
    return {month_index(m) for m in session.scalars(select(MonthSignOff.month))}


def _signed_off_locked(session: Session) -> set[int]:
    """The signed-off months, read under the sign-off lock held until this write commits.

    Writers share the lock; signing off or reopening takes it alone. So a month cannot be signed
    off between this check and the commit of the change it lets through (on PostgreSQL, where
    transactions run side by side; SQLite has one writer at a time).
    """
    db.advisory_lock(session, db.SIGN_OFF_LOCK, shared=True)
    signed = _signed_off(session)
    db.fault_pause("sign_off_checked")
    return signed


def _plausibility(history: pd.DataFrame, rows: pd.DataFrame) -> list[str]:
    """A reason in words for each row whose opportunities are far from its recent months.

    The reference is the median of the programme's figures in that borough over the previous
    six months (at least three of them recorded), used as the rate of a Poisson count; a figure
    with a one-sided tail probability below 0.001 is flagged. Counts are not normal, so this is
    not a z-score; the median keeps one odd month from moving the reference.
    """
    if not len(rows):
        return []
    live = history[history["live"]]
    lookup = live.set_index(_KEY)["opportunities"]
    earlier = np.full((len(rows), PLAUSIBILITY_MONTHS), np.nan)
    if len(lookup):
        for k in range(1, PLAUSIBILITY_MONTHS + 1):
            index = pd.MultiIndex.from_arrays(
                [rows["programme_id"], rows["borough_id"], rows["mi"] - k]
            )
            earlier[:, k - 1] = lookup.reindex(index).to_numpy(dtype=float)
    known = (~np.isnan(earlier)).sum(axis=1)
    # Only rows with enough history can be flagged, so only they need a median and a test.
    enough = np.flatnonzero(known >= PLAUSIBILITY_MIN_MONTHS)
    median = np.nanmedian(earlier[enough], axis=1)
    rate = np.maximum(median, PLAUSIBILITY_MIN_RATE)
    x = rows["opportunities"].to_numpy(dtype=float)[enough]
    high = stats.poisson.sf(x - 1, rate)
    low = stats.poisson.cdf(x, rate)
    out = [""] * len(rows)
    for j in np.flatnonzero((high < PLAUSIBILITY_P) | (low < PLAUSIBILITY_P)):
        direction = "far above" if high[j] < PLAUSIBILITY_P else "far below"
        out[enough[j]] = (
            f"{int(x[j]):,} opportunities is {direction} this programme's recent figures in "
            f"this borough (median {median[j]:g} over the previous {int(known[enough[j]])} "
            f"recorded months; a chance below 1 in 1,000 if nothing changed). Check it is right."
        )
    return out


def preview(
    session: Session,
    checked: Checked,
    *,
    read: pd.DataFrame | None = None,
    file_name: str | None = None,
    sha256: str | None = None,
    fmt: str | None = None,
    kind: str = "upload",
) -> Preview:
    """Classify checked rows against the registry (or against ``read``, what the user saw).

    ``read`` (from the form or grid) has the key columns and ``version``, ``live`` and the
    figures as the user loaded them; without it the registry's current rows are the reference.
    """
    rows = checked.rows
    problems = list(checked.problems)
    if not len(rows):
        empty = rows.assign(status=pd.Series(dtype=str), warning=pd.Series(dtype=str))
        return Preview(
            empty, problems, [], checked.rows_read, checked.rejected, file_name, sha256, fmt, kind
        )
    lo, hi = int(rows["mi"].min()), int(rows["mi"].max())
    existing = _existing(
        session, rows["programme_id"].unique().tolist(), lo - PLAUSIBILITY_MONTHS, hi
    )
    reference = existing if read is None else read
    rows = _attach(rows, reference, "was_")
    same = (
        _same(rows["opportunities"], rows["was_opportunities"])
        & _same(rows["participants"], rows["was_participants"])
        & _same(rows["spend_gbp"], rows["was_spend_gbp"])
    )
    live = rows["was_live"].to_numpy()
    rows["status"] = np.where(~live, "added", np.where(same, "unchanged", "amended"))
    rejected = checked.rejected
    signed = _signed_off(session)
    if signed:
        blocked = rows["mi"].isin(signed) & (rows["status"] != "unchanged")
        for r in rows[blocked].itertuples():
            problems.append(
                Problem(
                    reason="This month is signed off: an admin must reopen it before it can "
                    "change.",
                    row=int(r.row),
                    column="month",
                    value=format_month(index_month(int(r.mi))),
                )
            )
        rejected += int(blocked.sum())
        rows = rows[~blocked].reset_index(drop=True)
    # Figures already in the registry are not news: only what would change is checked.
    rows["warning"] = (
        np.where(rows["status"] != "unchanged", _plausibility(existing, rows), "")
        if len(rows)
        else []
    )
    warnings = [
        Problem(
            reason=r.warning, row=int(r.row), column="opportunities", value=str(r.opportunities)
        )
        for r in rows[rows["warning"] != ""].itertuples()
    ]
    problems.sort(key=lambda p: p.row or 0)
    return Preview(
        rows, problems, warnings, checked.rows_read, rejected, file_name, sha256, fmt, kind
    )


def preview_upload(
    session: Session, *, principal: Principal, content: bytes, file_name: str
) -> Preview:
    """Read, validate and classify an uploaded file; nothing is written."""
    require(principal, "deliveries.write")
    sheet: Sheet = read_upload(content, file_name)
    digest = hashlib.sha256(content).hexdigest()
    if sheet.problems:
        return Preview(
            _empty_rows(),
            sheet.problems,
            [],
            0,
            0,
            file_name,
            digest,
            sheet.format or None,
            refused=True,
        )
    checked = check_rows(session, sheet.frame)
    return preview(session, checked, file_name=file_name, sha256=digest, fmt=sheet.format)


def _empty_rows() -> pd.DataFrame:
    return pd.DataFrame(columns=["row", *_KEY, "status", "warning"])


# --- step 3: commit --------------------------------------------------------------------------


@dataclass(frozen=True)
class SaveResult:
    added: int
    amended: int
    unchanged: int
    import_batch_id: int | None = None
    warnings: list[Problem] = field(default_factory=list)


def _value_text(value: float, money: bool = False) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "(blank)"
    return f"{value:.2f}" if money else f"{int(value)}"


def _conflict_message(conflicts: pd.DataFrame) -> str:
    lines = []
    for r in conflicts.head(5).itertuples():
        where = f"{r.programme}, {r.borough}, {format_month(index_month(int(r.mi)))}"
        if r.kind == "upload" and r.row:
            where = f"row {int(r.row)} ({where})"
        if not r.now_live and r.was_live:
            lines.append(f"{where} was deleted by {r.now_updated_by} since you read it")
            continue
        if r.now_live and not r.was_live:
            changes = ", ".join(
                f"{f}: (none) → {_value_text(getattr(r, f'now_{f}'), f == 'spend_gbp')}"
                for f in FIELDS
            )
            lines.append(
                f"{where} was recorded by {r.now_updated_by} since you read it ({changes})"
            )
            continue
        changes = [
            f"{f}: {_value_text(getattr(r, f'was_{f}'), f == 'spend_gbp')} → "
            f"{_value_text(getattr(r, f'now_{f}'), f == 'spend_gbp')}"
            for f in FIELDS
            if _value_text(getattr(r, f"was_{f}"), f == "spend_gbp")
            != _value_text(getattr(r, f"now_{f}"), f == "spend_gbp")
        ]
        detail = "; ".join(changes) if changes else "saved again with the same figures"
        lines.append(f"{where} was changed by {r.now_updated_by} since you read it ({detail})")
    more = f" (and {len(conflicts) - 5} more)" if len(conflicts) > 5 else ""
    return (
        "Someone else changed these figures since you read them, so nothing was saved: "
        + "; ".join(lines)
        + more
        + ". Reload to see the current figures, then make your change again."
    )


def _json_figures(opportunities: float, participants: float, spend: float) -> dict[str, Any]:
    return {
        "opportunities": None if np.isnan(opportunities) else int(opportunities),
        "participants": None if np.isnan(participants) else int(participants),
        "spend_gbp": None if np.isnan(spend) else f"{spend:.2f}",
    }


def _spend_param(value: float) -> Decimal | None:
    return None if np.isnan(value) else Decimal(f"{value:.2f}")


def _count_param(value: float) -> int | None:
    return None if np.isnan(value) else int(value)


@write_action("deliveries.write")
def commit(
    session: Session,
    *,
    principal: Principal,
    preview: Preview,
    received_on: dt.date | None = None,
    backfill: bool = False,
) -> SaveResult:
    """Write a preview's added and amended rows in the caller's transaction, or nothing.

    Each row to be written is read again (locked, on PostgreSQL) and compared with what the
    preview saw; if any changed in between, a :class:`ConflictError` names what changed and
    nothing is written (not even the import batch).

    New rows record ``received_on`` (default today) as the day their return arrived, and
    ``backfill`` marks them as past figures loaded as history rather than returns; an amendment
    keeps the day its return first arrived.
    """
    if preview.problems:
        raise RegistryError(
            f"The data has {len(preview.problems)} problem(s); fix them first. Nothing was saved."
        )
    rows = preview.rows
    changes = rows[rows["status"] != "unchanged"] if len(rows) else rows
    batch_id: int | None = None
    if not len(changes):
        # Saving figures the registry already holds changes nothing: no batch, no event, so the
        # data version stays the same.
        return SaveResult(0, 0, preview.count("unchanged"), None, preview.warnings)
    received = _received_on(received_on, int(changes["mi"].min()))
    merged = _fresh_changes(session, changes, preview.kind)
    if preview.kind == "upload":
        batch = ImportBatch(
            kind="deliveries",
            format=preview.format,
            file_name=preview.file_name,
            sha256=preview.sha256,
            rows_read=preview.rows_read,
            rows_accepted=len(rows),
            created_by=principal.username,
            # The programmes the file carried: a summary of one programme must not name a file
            # that also held others' figures (registry.reports.build._shared_uploads).
            details={s: preview.count(s) for s in STATUSES}
            | {
                "programmes": sorted(int(p) for p in rows["programme_id"].unique()),
                "backfill": backfill,
            },
        )
        session.add(batch)
        session.flush()
        batch_id = batch.id
    _write_changes(session, principal, merged, batch_id, preview.kind, received, backfill)
    counts = {s: preview.count(s) for s in STATUSES}
    if preview.kind == "upload":
        audit.record(
            session,
            actor=principal,
            action="import",
            entity="import_batch",
            entity_id=batch_id,
            after=counts,
            detail=f"Deliveries from {preview.file_name} (SHA-256 {preview.sha256}).",
        )
    elif counts["added"]:
        # Amendments have an event each (written with them); new rows from the form or grid are
        # recorded here with their figures.
        added = changes[~changes["was_live"].to_numpy(dtype=bool)]
        audit.record(
            session,
            actor=principal,
            action="create",
            entity="delivery",
            after={
                "rows": [
                    {
                        "programme": r.programme,
                        "borough": r.borough,
                        "month": format_month(index_month(int(r.mi))),
                    }
                    | _json_figures(float(r.opportunities), r.participants, r.spend_gbp)
                    for r in added.itertuples()
                ]
            },
            detail=f"{counts['added']} delivery row(s) recorded from the {preview.kind}.",
        )
    return SaveResult(
        counts["added"], counts["amended"], counts["unchanged"], batch_id, preview.warnings
    )


def _received_on(received_on: dt.date | None, first_mi: int) -> dt.date:
    """The day the returns arrived: today unless given; never in the future, nor before the
    first month they report on began."""
    today = dt.date.today()
    if received_on is None:
        return today
    if received_on > today:
        raise RegistryError(
            f"The returns cannot have arrived on {received_on:%d %B %Y}: that is in the future."
        )
    first = index_month(first_mi)
    if received_on < first:
        raise RegistryError(
            f"The returns cannot have arrived on {received_on:%d %B %Y}, before "
            f"{format_month(first)}, the first month they report on, began."
        )
    return received_on


def _fresh_changes(session: Session, changes: pd.DataFrame, kind: str) -> pd.DataFrame:
    """``changes`` with the rows as they are now (locked), after checking none changed since
    they were read and no month was signed off meanwhile; raises :class:`ConflictError`."""
    lo, hi = int(changes["mi"].min()), int(changes["mi"].max())
    now_rows = _existing(session, changes["programme_id"].unique().tolist(), lo, hi, lock=True)
    merged = _attach(
        changes.drop(columns=[c for c in changes if c.startswith("now_")]), now_rows, "now_"
    )
    stale = (merged["now_live"].to_numpy() != merged["was_live"].to_numpy()) | (
        merged["was_live"].to_numpy() & (merged["now_version"] != merged["was_version"]).to_numpy()
    )
    if stale.any():
        raise ConflictError(_conflict_message(merged[stale].assign(kind=kind)))
    signed = _signed_off_locked(session)
    if signed and merged["mi"].isin(signed).any():
        raise ConflictError(
            "A month in these changes was signed off meanwhile; an admin must reopen it first."
        )
    return merged


def _write_changes(
    session: Session,
    principal: Principal,
    merged: pd.DataFrame,
    batch_id: int | None,
    kind: str,
    received_on: dt.date,
    backfill: bool,
) -> None:
    """Insert and update the rows of ``merged`` (from :func:`_fresh_changes`), with an audit
    event per amendment."""
    now = utcnow()
    t = Delivery.__table__
    opp = merged["opportunities"].to_numpy(dtype=np.int64)
    par = merged["participants"].to_numpy(dtype=float)
    spe = merged["spend_gbp"].to_numpy(dtype=float)
    pid = merged["programme_id"].to_numpy(dtype=np.int64)
    bid = merged["borough_id"].to_numpy(dtype=np.int64)
    mis = merged["mi"].to_numpy(dtype=np.int64)
    months = {int(m): index_month(int(m)) for m in np.unique(mis)}
    new = np.flatnonzero(merged["now_id"].isna().to_numpy())
    if len(new):
        _insert_new(
            session,
            principal,
            batch_id,
            now,
            pid[new],
            bid[new],
            [months[int(m)] for m in mis[new]],
            opp[new],
            par[new],
            spe[new],
            received_on,
            backfill,
        )
    old = np.flatnonzero(merged["now_id"].notna().to_numpy())
    if not len(old):
        return
    ids = merged["now_id"].to_numpy()
    versions = merged["now_version"].to_numpy(dtype=np.int64)
    params = [
        {
            "b_id": int(ids[i]),
            "b_version": int(versions[i]),
            "b_new_version": int(versions[i]) + 1,
            "b_opportunities": int(opp[i]),
            "b_participants": _count_param(par[i]),
            "b_spend": _spend_param(spe[i]),
            "b_batch": batch_id,
            "b_received": received_on,
            "b_backfill": backfill,
        }
        for i in old
    ]
    # A live row's return arrived when it was first recorded; a deleted row recorded again is a
    # new return. (SET expressions read the row as it was before the update.)
    live = t.c.deleted_at.is_(None)
    stmt = (
        update(t)
        .where(and_(t.c.id == bindparam("b_id"), t.c.version == bindparam("b_version")))
        .values(
            opportunities=bindparam("b_opportunities"),
            participants=bindparam("b_participants"),
            spend_gbp=bindparam("b_spend"),
            version=bindparam("b_new_version"),
            import_batch_id=bindparam("b_batch"),
            received_on=case((live, t.c.received_on), else_=bindparam("b_received")),
            backfill=case((live, t.c.backfill), else_=bindparam("b_backfill")),
            deleted_at=None,
            deleted_reason=None,
            updated_at=now,
            updated_by=principal.username,
        )
    )
    result = session.connection().execute(stmt, params)
    if session.get_bind().dialect.supports_sane_multi_rowcount and result.rowcount != len(params):
        raise ConflictError(
            "Someone else changed some of these figures while saving; nothing was saved. "
            "Reload and try again."
        )
    now_opp = merged["now_opportunities"].to_numpy(dtype=float)
    now_par = merged["now_participants"].to_numpy(dtype=float)
    now_spe = merged["now_spend_gbp"].to_numpy(dtype=float)
    now_live = merged["now_live"].to_numpy()
    programmes = merged["programme"].to_numpy()
    names = merged["borough"].to_numpy()
    audit.record_many(
        session,
        [
            {
                "occurred_at": now,
                "actor": principal.username,
                "action": "amend",
                "entity": "delivery",
                "entity_id": str(int(ids[i])),
                "before": (
                    _json_figures(now_opp[i], now_par[i], now_spe[i])
                    | {"version": int(versions[i]), "deleted": not bool(now_live[i])}
                ),
                "after": _json_figures(float(opp[i]), par[i], spe[i])
                | {"version": int(versions[i]) + 1},
                "detail": (
                    f"{programmes[i]}, {names[i]}, {format_month(months[int(mis[i])])}"
                    + (f"; import batch {batch_id}" if batch_id else f"; from the {kind}")
                ),
            }
            for i in old
        ],
    )


_BULK_COLUMNS = (
    "programme_id",
    "borough_id",
    "month",
    "opportunities",
    "participants",
    "spend_gbp",
    "version",
    "import_batch_id",
    "created_at",
    "updated_at",
    "updated_by",
    "received_on",
    "backfill",
)


def _insert_new(
    session: Session,
    principal: Principal,
    batch_id: int | None,
    now: dt.datetime,
    pid: np.ndarray,
    bid: np.ndarray,
    months: list[dt.date],
    opp: np.ndarray,
    par: np.ndarray,
    spe: np.ndarray,
    received_on: dt.date,
    backfill: bool,
) -> None:
    """Insert new deliveries with one executemany.

    Values are converted to the driver's form once per distinct value (a month, the timestamp)
    with the column types' own bind processors, and the statement uses untyped columns, so
    SQLAlchemy does no per-row type processing: the cost is the database's own.
    """
    t = Delivery.__table__
    dialect = session.get_bind().dialect

    def processor(name: str) -> Any:
        proc = t.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        return proc if proc is not None else (lambda v: v)

    month_values = {m: processor("month")(m) for m in set(months)}
    stamp = processor("created_at")(now)
    rounded = np.round(spe, 2).tolist()
    if dialect.supports_native_decimal:
        spends = [None if v != v else Decimal(f"{v:.2f}") for v in rounded]
    else:  # SQLite keeps NUMERIC as a float anyway
        spends = [None if v != v else v for v in rounded]
    participants = [None if v != v else int(v) for v in par.tolist()]
    compiled = insert(table("delivery", *(column(n) for n in _BULK_COLUMNS))).compile(
        dialect=dialect
    )
    by_name = {
        "programme_id": pid.tolist(),
        "borough_id": bid.tolist(),
        "month": [month_values[m] for m in months],
        "opportunities": opp.tolist(),
        "participants": participants,
        "spend_gbp": spends,
        "version": itertools.repeat(1),
        "import_batch_id": itertools.repeat(batch_id),
        "created_at": itertools.repeat(stamp),
        "updated_at": itertools.repeat(stamp),
        "updated_by": itertools.repeat(principal.username),
        "received_on": itertools.repeat(processor("received_on")(received_on)),
        "backfill": itertools.repeat(processor("backfill")(backfill)),
    }
    params: list[Any]
    if compiled.positiontup is not None:
        params = list(zip(*(by_name[name] for name in compiled.positiontup), strict=False))
    else:
        params = [
            dict(zip(_BULK_COLUMNS, r, strict=False))
            for r in zip(*(by_name[name] for name in _BULK_COLUMNS), strict=False)
        ]
    try:
        session.connection().exec_driver_sql(compiled.string, params)
    except IntegrityError:
        raise ConflictError(
            "Someone else recorded figures for some of these programmes, boroughs and months "
            "while you were saving, so nothing was saved. Reload and try again."
        ) from None


@write_action("deliveries.write")
def import_file(
    session: Session,
    *,
    principal: Principal,
    content: bytes,
    file_name: str,
    dry_run: bool = False,
    received_on: dt.date | None = None,
    backfill: bool = False,
) -> Preview:
    """Validate a file and, unless ``dry_run`` or any row is rejected, commit it; returns the
    preview either way (its ``ok`` says whether anything was written). ``received_on`` and
    ``backfill`` are as for :func:`commit`."""
    result = preview_upload(session, principal=principal, content=content, file_name=file_name)
    if received_on is not None and len(result.rows):
        _received_on(received_on, int(result.rows["mi"].min()))  # refused even on a dry run
    if result.ok and not dry_run:
        commit(
            session,
            principal=principal,
            preview=result,
            received_on=received_on,
            backfill=backfill,
        )
    return result


# --- the form and the grid -------------------------------------------------------------------


def _figures_frame(
    programme: str, rows: Sequence[Mapping[str, Any]], first_row: int = 2
) -> pd.DataFrame:
    def text(value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, dt.date):
            return format_month(value)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    frame = pd.DataFrame(
        [
            {"programme": programme} | {c: text(r.get(c)) for c in TEMPLATE_COLUMNS[1:]}
            for r in rows
        ],
        columns=list(TEMPLATE_COLUMNS),
    )
    frame.insert(0, "row", range(first_row, first_row + len(frame)))
    return frame


def _read_frame(
    session: Session, programme_id: int, read: Sequence[Mapping[str, Any]]
) -> pd.DataFrame:
    """What the user loaded (form or grid) as a reference frame for :func:`preview`."""
    ids = boroughs.borough_ids(session)
    records = []
    for r in read:
        info = boroughs.find(str(r["borough"]))
        month = r["month"] if isinstance(r["month"], dt.date) else parse_month(str(r["month"]))
        if info is None:
            continue
        records.append(
            {
                "programme_id": programme_id,
                "borough_id": ids[info.gss_code],
                "mi": month_index(month),
                "id": None,
                "version": int(r["version"]),
                "live": True,
                "opportunities": float(r["opportunities"]),
                "participants": _float(r.get("participants")),
                "spend_gbp": _float(r.get("spend_gbp")),
                "updated_by": "",
            }
        )
    return pd.DataFrame(
        records,
        columns=[
            *_KEY,
            "id",
            "version",
            "live",
            "opportunities",
            "participants",
            "spend_gbp",
            "updated_by",
        ],
    )


def _float(value: Any) -> float:
    if value is None or value == "" or (isinstance(value, float) and np.isnan(value)):
        return float("nan")
    return float(value)


def _raise_problems(problems: list[Problem]) -> None:
    if problems:
        raise RegistryError(
            "Nothing was saved: "
            + "; ".join(f"{p.column} {p.value!r}: {p.reason}" for p in problems[:10])
        )


def get_delivery(
    session: Session, *, principal: Principal, programme: str, borough: str, month: dt.date
) -> dict[str, Any] | None:
    """The live figures for one programme × borough × month (with their version), or None."""
    require(principal, "deliveries.read")
    prog = get_programme(session, programme)
    info = boroughs.lookup(borough)
    row = session.scalar(
        select(Delivery)
        .join(Borough)
        .where(
            Delivery.programme_id == prog.id,
            Borough.gss_code == info.gss_code,
            Delivery.month == month.replace(day=1),
            Delivery.deleted_at.is_(None),
        )
    )
    if row is None:
        return None
    return {
        "programme": prog.name,
        "borough": info.name,
        "month": row.month,
        "opportunities": row.opportunities,
        "participants": row.participants,
        "spend_gbp": row.spend_gbp,
        "version": row.version,
        "updated_by": row.updated_by,
        "updated_at": row.updated_at,
    }


@write_action("deliveries.write")
def save_delivery(
    session: Session,
    *,
    principal: Principal,
    programme: str,
    borough: str,
    month: dt.date | str,
    opportunities: Any,
    participants: Any = None,
    spend_gbp: Any = None,
    read: Mapping[str, Any] | None = None,
) -> SaveResult:
    """Record or amend one programme × borough × month.

    ``read`` is the row as the user loaded it (from :func:`get_delivery`, with its version), or
    ``None`` when they saw no figures; if the registry's row differs from it now, the save is
    refused with a message naming what changed.
    """
    prog = get_programme(session, programme)
    figures = {
        "borough": borough,
        "month": month,
        "opportunities": opportunities,
        "participants": participants,
        "spend_gbp": spend_gbp,
    }
    checked = check_rows(session, _figures_frame(prog.name, [figures]))
    _raise_problems(checked.problems)
    reference = _read_frame(session, prog.id, [read] if read else [])
    result = preview(session, checked, read=reference, kind="form")
    _raise_problems(result.problems)
    return commit(session, principal=principal, preview=result)


GRID_COLUMNS = ("borough", "month", "opportunities", "participants", "spend_gbp", "version")


def programme_grid(
    session: Session,
    *,
    principal: Principal,
    programme: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pd.DataFrame:
    """A programme's live figures from ``start`` to ``end`` (months; either may be open), one
    row per borough and month, newest month first, for the grid editor."""
    require(principal, "deliveries.read")
    prog = get_programme(session, programme)
    stmt = (
        select(
            Borough.name,
            Delivery.month,
            Delivery.opportunities,
            Delivery.participants,
            Delivery.spend_gbp,
            Delivery.version,
        )
        .join(Borough)
        .where(Delivery.programme_id == prog.id, Delivery.deleted_at.is_(None))
        .order_by(Delivery.month.desc(), Borough.name)
    )
    if start:
        stmt = stmt.where(Delivery.month >= start.replace(day=1))
    if end:
        stmt = stmt.where(Delivery.month <= end)
    frame = pd.DataFrame(session.execute(stmt).all(), columns=list(GRID_COLUMNS))
    # Text even when empty, so rows added in the editor keep the months typed into them.
    frame["month"] = pd.Series([format_month(m) for m in frame["month"]], dtype=object)
    frame["participants"] = pd.to_numeric(frame["participants"]).astype("Int64")
    frame["spend_gbp"] = pd.to_numeric(frame["spend_gbp"].astype(object)).astype(float)
    frame["opportunities"] = frame["opportunities"].astype("Int64")
    frame["version"] = frame["version"].astype("Int64")
    return frame


def _grid_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if pd.isna(v) else v) for k, v in rec.items()}
        for rec in frame.to_dict(orient="records")
    ]


def _preview_grid(
    session: Session, programme: str, original: pd.DataFrame, edited: pd.DataFrame
) -> Preview:
    prog = get_programme(session, programme)
    before = {(str(r["borough"]), str(r["month"])): r for r in _grid_records(original)}
    rows = _grid_records(edited)
    changed_positions = []
    for position, rec in enumerate(rows):
        if all(_cell(rec.get(c)) == "" for c in GRID_COLUMNS[:-1]):
            continue  # a row added to the grid and left blank is not a row
        old = before.get((str(rec.get("borough")), str(rec.get("month"))))
        if old is None or any(_cell(old.get(c)) != _cell(rec.get(c)) for c in FIELDS):
            changed_positions.append(position)
    frame = _figures_frame(prog.name, [rows[p] for p in changed_positions], first_row=1)
    frame["row"] = [p + 1 for p in changed_positions]
    checked = _not_shown(session, check_rows(session, frame), original)
    read = [r for r in _grid_records(original) if r.get("version") is not None]
    return preview(session, checked, read=_read_frame(session, prog.id, read), kind="grid")


def _not_shown(session: Session, checked: Checked, original: pd.DataFrame) -> Checked:
    """Refuse grid rows that would record figures the registry already holds but the grid did
    not show (a month outside its range, or recorded since it was loaded): saving them would
    overwrite figures nobody on this screen has seen."""
    rows = checked.rows
    if not len(rows):
        return checked
    shown = {(str(b), str(m)) for b, m in zip(original["borough"], original["month"], strict=True)}
    lo, hi = int(rows["mi"].min()), int(rows["mi"].max())
    existing = _existing(session, rows["programme_id"].unique().tolist(), lo, hi)
    live = _attach(rows, existing[existing["live"]], "now_")
    hidden = live["now_live"].to_numpy() & np.array(
        [
            (b, format_month(index_month(int(m)))) not in shown
            for b, m in zip(rows["borough"], rows["mi"], strict=True)
        ],
        dtype=bool,
    )
    if not hidden.any():
        return checked
    problems = list(checked.problems)
    for r in live[hidden].itertuples():
        month = format_month(index_month(int(r.mi)))
        problems.append(
            Problem(
                reason=f"{r.borough} already has figures for {month} (opportunities "
                f"{int(r.now_opportunities)}, recorded by {r.now_updated_by}) that the grid does "
                "not show; show that month in the grid to change them.",
                row=int(r.row),
                column="month",
                value=month,
            )
        )
    problems.sort(key=lambda p: p.row or 0)
    return Checked(
        rows[~hidden].reset_index(drop=True),
        problems,
        checked.rows_read,
        checked.rejected + int(hidden.sum()),
    )


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float | Decimal) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def preview_grid(
    session: Session,
    *,
    principal: Principal,
    programme: str,
    original: pd.DataFrame,
    edited: pd.DataFrame,
) -> Preview:
    """What saving the edited grid would do (grid rows are numbered from 1)."""
    require(principal, "deliveries.write")
    return _preview_grid(session, programme, original, edited)


@write_action("deliveries.write")
def save_grid(
    session: Session,
    *,
    principal: Principal,
    programme: str,
    original: pd.DataFrame,
    edited: pd.DataFrame,
) -> SaveResult:
    """Save the rows of ``edited`` that differ from ``original`` (the grid as loaded).

    Rows whose registry figures changed since the grid was loaded are refused, naming the change.
    """
    result = _preview_grid(session, programme, original, edited)
    if result.problems:
        raise RegistryError(
            "Nothing was saved: "
            + "; ".join(
                f"grid row {p.row}, {p.column} {p.value!r}: {p.reason}"
                for p in result.problems[:10]
            )
        )
    return commit(session, principal=principal, preview=result)


@write_action("deliveries.write")
def delete_delivery(
    session: Session,
    *,
    principal: Principal,
    programme: str,
    borough: str,
    month: dt.date,
    reason: str,
    version: int | None = None,
) -> None:
    """Soft-delete one delivery: it stays in the database with when and why, and is audited."""
    if not (reason or "").strip():
        raise RegistryError("Give a reason for deleting these figures.")
    prog = get_programme(session, programme)
    info = boroughs.lookup(borough)
    month = month.replace(day=1)
    row = session.scalar(
        select(Delivery)
        .join(Borough)
        .where(
            Delivery.programme_id == prog.id,
            Borough.gss_code == info.gss_code,
            Delivery.month == month,
            Delivery.deleted_at.is_(None),
        )
        .with_for_update()
    )
    if row is None:
        raise NotFoundError(
            f"{prog.name} has no figures for {info.name} in {format_month(month)} to delete."
        )
    if month_index(month) in _signed_off_locked(session):
        raise ConflictError(
            f"{format_month(month)} is signed off: an admin must reopen it before it can change."
        )
    if version is not None and row.version != version:
        raise ConflictError(
            f"These figures were changed by {row.updated_by} since you read them (now "
            f"opportunities {row.opportunities}); nothing was deleted. Reload and try again."
        )
    before = _json_figures(
        float(row.opportunities), _float(row.participants), _float(row.spend_gbp)
    ) | {"version": row.version}
    now = utcnow()
    stmt = (
        update(Delivery.__table__)
        .where(Delivery.__table__.c.id == row.id, Delivery.__table__.c.version == row.version)
        .values(
            deleted_at=now,
            deleted_reason=reason.strip(),
            version=row.version + 1,
            updated_at=now,
            updated_by=principal.username,
        )
    )
    if session.execute(stmt).rowcount != 1:
        raise ConflictError("These figures changed while deleting; reload and try again.")
    audit.record(
        session,
        actor=principal,
        action="delete",
        entity="delivery",
        entity_id=row.id,
        before=before,
        after={"deleted_reason": reason.strip(), "version": row.version + 1},
        detail=f"{prog.name}, {info.name}, {format_month(month)}",
    )
    session.expire(row)


# --- export ----------------------------------------------------------------------------------


def export_frame(session: Session, *, principal: Principal) -> pd.DataFrame:
    """Every live delivery in the upload template's columns (re-importing it changes nothing)."""
    require(principal, "deliveries.read")
    stmt = (
        select(
            Programme.name,
            Borough.name,
            Delivery.month,
            Delivery.opportunities,
            Delivery.participants,
            Delivery.spend_gbp,
        )
        .join(Programme, Delivery.programme_id == Programme.id)
        .join(Borough, Delivery.borough_id == Borough.id)
        .where(Delivery.deleted_at.is_(None))
        .order_by(Programme.name, Delivery.month, Borough.name)
    )
    frame = pd.DataFrame(session.execute(stmt).all(), columns=list(TEMPLATE_COLUMNS))
    frame["month"] = [format_month(m) for m in frame["month"]]
    frame["participants"] = pd.to_numeric(frame["participants"]).astype("Int64")
    frame["spend_gbp"] = [
        "" if v is None else f"{Decimal(v):.2f}" for v in frame["spend_gbp"].tolist()
    ]
    return frame


# --- completeness and sign-off ---------------------------------------------------------------


RETURN_STATUSES = ("received", "late", "backfilled", "missing", "not yet due")


def completeness(
    session: Session,
    *,
    principal: Principal,
    start: dt.date,
    end: dt.date,
    today: dt.date | None = None,
) -> pd.DataFrame:
    """Each expected return (programme × borough × month) between ``start`` and ``end``.

    A programme is expected to report every month it runs for every borough it has ever reported
    in. A return is due by the 15th of the following month; ``status`` is ``received`` (arrived
    by the due date), ``late`` (arrived after it), ``backfilled`` (past figures loaded as
    history, so no arrival to judge), ``missing`` (due date passed, nothing received) or
    ``not yet due``. ``received`` is the day the return arrived.
    """
    require(principal, "deliveries.read")
    check_period(start, end)
    today = today or dt.date.today()
    first, last = month_index(start), month_index(end)
    pairs = session.execute(
        select(Delivery.programme_id, Delivery.borough_id)
        .where(Delivery.deleted_at.is_(None))
        .distinct()
    ).all()
    programmes = {p.id: p for p in session.scalars(select(Programme))}
    names = dict(session.execute(select(Borough.id, Borough.name)).tuples().all())
    got = session.execute(
        select(
            Delivery.programme_id,
            Delivery.borough_id,
            Delivery.month,
            Delivery.received_on,
            Delivery.backfill,
        ).where(
            Delivery.deleted_at.is_(None),
            Delivery.month.between(index_month(first), index_month(last)),
        )
    ).all()
    received = {(p, b, month_index(m)): (on, back) for p, b, m, on, back in got}
    signed = _signed_off(session)
    records = []
    for pid, bid in pairs:
        prog = programmes[pid]
        lo = max(first, month_index(prog.start_date))
        hi = min(last, month_index(prog.end_date) if prog.end_date else last)
        for mi in range(lo, hi + 1):
            month = index_month(mi)
            due = due_date(month)
            arrived, backfill = received.get((pid, bid, mi), (None, False))
            if arrived is None:
                status = "missing" if today > due else "not yet due"
            elif backfill:
                status = "backfilled"
            else:
                status = "late" if arrived > due else "received"
            records.append(
                {
                    "programme": prog.name,
                    "borough": names[bid],
                    "month": format_month(month),
                    "due": due,
                    "status": status,
                    "received": None if arrived is None or backfill else arrived,
                    "signed_off": mi in signed,
                }
            )
    frame = pd.DataFrame(
        records,
        columns=["programme", "borough", "month", "due", "status", "received", "signed_off"],
    )
    return frame.sort_values(["month", "programme", "borough"]).reset_index(drop=True)


def due_date(month: dt.date) -> dt.date:
    """The day a month's return is due: the 15th of the following month."""
    return index_month(month_index(month) + 1).replace(day=DUE_DAY)


def month_returns(
    session: Session, *, principal: Principal, month: dt.date, today: dt.date | None = None
) -> dict[str, int]:
    """How many of ``month``'s expected returns are in each status (see :func:`completeness`),
    every status present with 0 if none; what an admin should know before signing it off."""
    month = month.replace(day=1)
    frame = completeness(session, principal=principal, start=month, end=month, today=today)
    counts = frame["status"].value_counts()
    return {status: int(counts.get(status, 0)) for status in RETURN_STATUSES}


def never_reported(
    session: Session, *, principal: Principal, start: dt.date, end: dt.date
) -> list[str]:
    """Programmes running between ``start`` and ``end`` that have never reported a delivery.

    :func:`completeness` expects returns only for boroughs a programme has reported in, so these
    programmes have no expected return at all; callers name them rather than implying none is due.
    """
    require(principal, "deliveries.read")
    check_period(start, end)
    reported = select(Delivery.programme_id).where(Delivery.deleted_at.is_(None))
    return list(
        session.scalars(
            select(Programme.name)
            .where(
                Programme.id.not_in(reported),
                Programme.start_date <= index_month(month_index(end) + 1) - dt.timedelta(days=1),
                (Programme.end_date.is_(None)) | (Programme.end_date >= start),
            )
            .order_by(Programme.name)
        )
    )


def signed_off_months(session: Session) -> list[dict[str, Any]]:
    return [
        {
            "month": format_month(s.month),
            "signed_off_by": s.signed_off_by,
            "at": s.signed_off_at,
            "note": s.note,
        }
        for s in session.scalars(select(MonthSignOff).order_by(MonthSignOff.month))
    ]


@write_action("months.sign_off")
def sign_off_month(
    session: Session, *, principal: Principal, month: dt.date, note: str | None = None
) -> MonthSignOff:
    """Sign a month's delivery returns off: changes to it then need it reopened."""
    month = month.replace(day=1)
    if month_index(month) > _current_mi():
        raise RegistryError(f"{format_month(month)} has not happened yet; it cannot be signed off.")
    db.advisory_lock(session, db.SIGN_OFF_LOCK)  # waits for writes in progress to commit
    if session.scalar(select(MonthSignOff).where(MonthSignOff.month == month)) is not None:
        raise ConflictError(f"{format_month(month)} is already signed off.")
    sign_off = MonthSignOff(month=month, signed_off_by=principal.username, note=note or None)
    session.add(sign_off)
    session.flush()
    audit.record(
        session,
        actor=principal,
        action="sign_off",
        entity="month_sign_off",
        entity_id=format_month(month),
        after={"month": format_month(month), "note": note},
    )
    return sign_off


@write_action("months.sign_off")
def reopen_month(session: Session, *, principal: Principal, month: dt.date, reason: str) -> None:
    """Reopen a signed-off month so its figures can change again; the reason is audited."""
    if not (reason or "").strip():
        raise RegistryError("Give a reason for reopening the month.")
    month = month.replace(day=1)
    db.advisory_lock(session, db.SIGN_OFF_LOCK)
    sign_off = session.scalar(select(MonthSignOff).where(MonthSignOff.month == month))
    if sign_off is None:
        raise NotFoundError(f"{format_month(month)} is not signed off.")
    before = {
        "month": format_month(month),
        "signed_off_by": sign_off.signed_off_by,
        "signed_off_at": sign_off.signed_off_at,
        "note": sign_off.note,
    }
    session.delete(sign_off)
    session.flush()
    audit.record(
        session,
        actor=principal,
        action="reopen",
        entity="month_sign_off",
        entity_id=format_month(month),
        before=before,
        detail=reason.strip(),
    )
