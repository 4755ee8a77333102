"""Disclosure control for funder outputs: small counts hidden at the finest grain, every published
figure derived from the hidden cells, so no combination of downloads can work one out.

Participants (people) are recorded per programme, borough and month: that is the finest grain any
summary can show (a one-month summary of one programme shows exactly those cells). Each such cell
below the threshold, zero included, is hidden. Every other participant figure a summary shows
(a borough's year, a quarter, a funding stream, a total) is worked out from those protected cells,
never from the true total: the cells shown add exactly, and each hidden cell adds "somewhere
between 0 and threshold - 1" (and never more than the opportunities delivered in it, which
summaries publish anyway). A figure with a hidden cell in it is therefore shown as a range,
``120 to 155``, or as ``<10`` when the whole range is below the threshold.

Why this holds across tables, granularities, scopes and overlapping periods: what is published is
a function of the shown cells, *which* cells are hidden, and the opportunities, and of nothing
else. Any value of a hidden cell within its interval gives exactly the same files, so no set of
downloads (however they are subtracted, or solved together as a linear program) narrows a hidden
cell below its interval. ``tests/test_disclosure_attack.py`` checks this by solving every table a
funder can fetch. Secondary suppression, which protects one table at a time, is not needed.

Only administrators may change the threshold for a summary, and never below the configured one
(``VRU_SUPPRESSION_THRESHOLD``): see :func:`threshold_for`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from registry.auth import Principal
from registry.config import get_settings
from registry.errors import PermissionDenied, RegistryError

TOTAL = "Total"
FINEST_GRAIN = "programme, borough and month"
# The columns every table with a participant figure carries: as shown, and its range as numbers.
PARTICIPANT_COLUMNS = ("participants", "participants_min", "participants_max")


def threshold_for(principal: Principal, requested: int | None) -> int:
    """The threshold a summary for ``principal`` uses.

    The configured threshold unless an administrator asks for a higher one; anyone else asking
    for any threshold, or anyone asking for a lower one, is refused, so a download can never show
    more than the configured rule allows.
    """
    configured = get_settings().suppression_threshold
    if requested is None or requested == configured:
        return configured
    if principal.role != "admin":
        raise PermissionDenied(
            f"Only an administrator can change the suppression threshold; summaries hide "
            f"participant counts below {configured}. Leave out --threshold."
        )
    if requested < configured:
        raise RegistryError(
            f"The suppression threshold cannot go below the configured {configured} "
            "(VRU_SUPPRESSION_THRESHOLD); choose a higher one or leave out --threshold."
        )
    return requested


def protect_cells(
    participants: pd.Series, opportunities: pd.Series, threshold: int
) -> pd.DataFrame:
    """Each finest-grain cell as the interval a reader may know: ``lo``, ``hi``, ``hidden``.

    ``participants`` is NaN where not recorded (``recorded`` False: it adds nothing anywhere).
    A shown cell is its own interval; a hidden one is 0 to ``min(threshold - 1, opportunities)``.
    """
    p = participants.to_numpy(dtype=float)
    o = opportunities.to_numpy(dtype=float)
    recorded = ~np.isnan(p)
    hidden = recorded & (p < threshold)
    lo = np.where(recorded & ~hidden, p, 0.0)
    hi = np.where(hidden, np.minimum(threshold - 1, o), lo)
    return pd.DataFrame(
        {
            "lo": lo.astype(np.int64),
            "hi": hi.astype(np.int64),
            "hidden": hidden.astype(np.int64),
            "recorded": recorded.astype(np.int64),
        },
        index=participants.index,
    )


def shown(lo: int, hi: int, recorded: int, threshold: int) -> object:
    """How an aggregate of protected cells is printed: a number, ``<10``, a range, or ``None``."""
    if not recorded:
        return None
    if lo == hi:
        return int(lo)
    if lo == 0 and hi < threshold:
        return f"<{threshold}"
    return f"{int(lo)} to {int(hi)}"


@dataclass(frozen=True)
class Participants:
    """The protected finest-grain cells of one summary, and the figures derived from them.

    ``cells`` has one row per delivery (programme, borough, month) with the summary's ``borough``
    and ``period`` labels and the interval columns of :func:`protect_cells`.
    """

    cells: pd.DataFrame
    threshold: int

    @classmethod
    def of(cls, rows: pd.DataFrame, threshold: int) -> Participants:
        protected = protect_cells(rows["participants"], rows["opportunities"], threshold)
        return cls(pd.concat([rows[["borough", "period"]], protected], axis=1), threshold)

    @property
    def label(self) -> str:
        return f"<{self.threshold}"

    @property
    def hidden(self) -> int:
        """Finest-grain cells hidden because they are below the threshold."""
        return int(self.cells["hidden"].sum())

    def figures(self, by: Sequence[str] = ()) -> pd.DataFrame:
        """Participants by ``by`` (none: the grand total) with a ``Total`` row per level.

        Columns :data:`PARTICIPANT_COLUMNS`; the index is the group (``Total`` for the margin).
        """
        sums = ["lo", "hi", "recorded"]
        if not by:
            totals = self.cells[sums].sum().to_frame().T.set_axis([TOTAL])
        else:
            totals = self.cells.groupby(list(by), sort=True)[sums].sum()
        out = pd.DataFrame(
            {
                "participants": [
                    shown(lo, hi, n, self.threshold)
                    for lo, hi, n in zip(
                        totals["lo"], totals["hi"], totals["recorded"], strict=True
                    )
                ],
                "participants_min": [
                    int(lo) if n else None
                    for lo, n in zip(totals["lo"], totals["recorded"], strict=True)
                ],
                "participants_max": [
                    int(hi) if n else None
                    for hi, n in zip(totals["hi"], totals["recorded"], strict=True)
                ],
            },
            index=totals.index,
        )
        return out.astype({"participants_min": "Int64", "participants_max": "Int64"})

    def by(self, key: str) -> pd.DataFrame:
        """Participants by ``key`` (``borough`` or ``period``) followed by the ``Total`` row."""
        return pd.concat([self.figures([key]), self.figures()])

    def crosstab(self) -> pd.DataFrame:
        """Tidy: every borough and period (``Total`` margins included), as shown and as a range.

        A borough and period with no delivery reads as not recorded (blank), like before.
        """
        boroughs = sorted(self.cells["borough"].unique())
        periods = sorted(self.cells["period"].unique())
        inner = self.figures(["borough", "period"])
        by_borough = self.figures(["borough"])
        by_period = self.figures(["period"])
        grand = self.figures()
        empty = pd.Series({c: None for c in PARTICIPANT_COLUMNS})
        rows = []
        for borough in [*boroughs, TOTAL]:
            for period in [*periods, TOTAL]:
                if borough == TOTAL and period == TOTAL:
                    values = grand.loc[TOTAL]
                elif borough == TOTAL:
                    values = by_period.loc[period]
                elif period == TOTAL:
                    values = by_borough.loc[borough]
                else:
                    key = (borough, period)
                    values = inner.loc[key] if key in inner.index else empty
                rows.append({"borough": borough, "period": period, **values.to_dict()})
        frame = pd.DataFrame(rows, columns=["borough", "period", *PARTICIPANT_COLUMNS])
        return frame.astype({"participants_min": "Int64", "participants_max": "Int64"})

    def note(self) -> str:
        """The disclosure-control note every format of a summary carries."""
        t = self.threshold
        return (
            f"Disclosure control: participant counts are protected at the finest grain "
            f"({FINEST_GRAIN}): each such count below {t}, zero included, is hidden "
            f"({self.hidden} in this summary), and every participant figure shown is worked out "
            f"from the protected counts, never from the true total. A figure that includes "
            f"a hidden count is shown as the range it must lie in (for example '120 to 155', "
            f"columns participants_min and participants_max), or as '<{t}' when the whole range "
            f"is below {t}; each hidden count adds 0 to {t - 1} (never more than the opportunities "
            "delivered). So no combination of summaries (other periods, quarters or years, "
            "another programme or stream) can work out a hidden count. Opportunities, spend and "
            "police-recorded crime are not counts of people and are shown as recorded."
        )
