"""Step 2: valid rows compared with what the registry holds: added, amended or unchanged, with
plausibility warnings."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy.orm import Session

from registry.auth import Principal, require
from registry.deliveries.common import (
    KEY,
    PLAUSIBILITY_MIN_MONTHS,
    PLAUSIBILITY_MIN_RATE,
    PLAUSIBILITY_MONTHS,
    PLAUSIBILITY_P,
    attach,
    existing_rows,
    signed_off,
)
from registry.deliveries.validate import Checked, check_rows
from registry.periods import format_month, index_month
from registry.problems import Problem
from registry.uploads import Sheet, read_upload

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


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality where two missing values count as equal."""
    av, bv = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
    return (av == bv) | (np.isnan(av) & np.isnan(bv))


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
    lookup = live.set_index(KEY)["opportunities"]
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
    existing = existing_rows(
        session, rows["programme_id"].unique().tolist(), lo - PLAUSIBILITY_MONTHS, hi
    )
    reference = existing if read is None else read
    rows = attach(rows, reference, "was_")
    same = (
        _same(rows["opportunities"], rows["was_opportunities"])
        & _same(rows["participants"], rows["was_participants"])
        & _same(rows["spend_gbp"], rows["was_spend_gbp"])
    )
    live = rows["was_live"].to_numpy()
    rows["status"] = np.where(~live, "added", np.where(same, "unchanged", "amended"))
    rejected = checked.rejected
    signed = signed_off(session)
    if signed:
        blocked = rows["mi"].isin(signed) & (rows["status"] != "unchanged")
        stopped = rows[blocked]
        for row, mi in zip(stopped["row"].tolist(), stopped["mi"].tolist(), strict=True):
            problems.append(
                Problem(
                    reason="This month is signed off: an admin must reopen it before it can "
                    "change.",
                    row=int(row),
                    column="month",
                    value=format_month(index_month(int(mi))),
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
    flagged = rows[rows["warning"] != ""]
    warnings = [
        Problem(reason=reason, row=int(row), column="opportunities", value=str(opportunities))
        for row, opportunities, reason in zip(
            flagged["row"].tolist(),
            flagged["opportunities"].tolist(),
            flagged["warning"].tolist(),
            strict=True,
        )
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
    return pd.DataFrame(columns=["row", *KEY, "status", "warning"])
