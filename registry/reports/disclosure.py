"""Disclosure control for funder outputs: primary and secondary suppression of small counts.

Counts of participants (people) below the threshold are shown as ``<10`` (primary suppression).
Because tables carry row and column totals, a single suppressed cell in a row or column could be
recovered by subtraction; so wherever a row or column (its total included) holds exactly one
suppressed cell, the smallest other cell in that line is suppressed too (secondary suppression),
repeating until no line has exactly one. A cell hidden only to protect another is shown as
``[c]`` (the ONS convention for confidential), since ``<10`` would misstate a larger figure. Cells
with no figure recorded are shown blank and never count as hiding anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TOTAL = "Total"
SECONDARY_LABEL = "[c]"


@dataclass(frozen=True)
class SuppressedTable:
    """A count table with margins, its suppression mask, and the label to show."""

    values: pd.DataFrame  # numbers (float, NaN = not recorded), margins included
    mask: pd.DataFrame  # True where the cell must not be shown
    threshold: int

    @property
    def label(self) -> str:
        return f"<{self.threshold}"

    def display(self) -> pd.DataFrame:
        """Cells as ints, the suppression label, or ``None`` (not recorded)."""
        out = self.values.astype(object).copy()
        for column in out.columns:
            out[column] = pd.Series(
                [
                    self._shown(v, m)
                    for v, m in zip(self.values[column], self.mask[column], strict=True)
                ],
                index=out.index,
                dtype=object,
            )
        return out

    def _shown(self, value: float, hidden: bool) -> object:
        if pd.isna(value):
            return None
        if not hidden:
            return int(value)
        return self.label if value < self.threshold else SECONDARY_LABEL

    @property
    def primary(self) -> int:
        """Cells suppressed because they are small."""
        return int(((self.values < self.threshold) & self.values.notna()).sum().sum())

    @property
    def secondary(self) -> int:
        """Cells suppressed only to protect a small one."""
        return int(self.mask.sum().sum()) - self.primary


def with_margins(table: pd.DataFrame) -> pd.DataFrame:
    """Add a ``Total`` column and row; a total of cells none of which is recorded stays NaN."""
    out = table.astype(float).copy()
    out[TOTAL] = table.sum(axis=1, min_count=1)
    out.loc[TOTAL] = out.sum(axis=0, min_count=1)
    return out


def _fix_line(values: np.ndarray, mask: np.ndarray, cells: list[int], total: int) -> bool:
    """Make sure the line ``cells + [total]`` does not hold exactly one suppressed cell."""
    line = [*cells, total]
    if sum(mask[i] for i in line) != 1:
        return False
    candidates = [i for i in cells if not mask[i] and not np.isnan(values[i])]
    if not candidates:
        candidates = [total] if not mask[total] and not np.isnan(values[total]) else []
    if not candidates:
        return False
    chosen = min(candidates, key=lambda i: (values[i], i))
    mask[chosen] = True
    return True


def suppress(table: pd.DataFrame, threshold: int) -> SuppressedTable:
    """Suppress ``table`` (counts with ``Total`` margins from :func:`with_margins`)."""
    values = table.to_numpy(dtype=float)
    mask = (values < threshold) & ~np.isnan(values)
    n_rows, n_cols = values.shape
    flat_values = values.ravel()
    flat_mask = mask.ravel()

    def index(r: int, c: int) -> int:
        return r * n_cols + c

    changed = True
    while changed:
        changed = False
        for r in range(n_rows):  # each row, the totals row included, against its total column
            cells = [index(r, c) for c in range(n_cols - 1)]
            changed |= _fix_line(flat_values, flat_mask, cells, index(r, n_cols - 1))
        for c in range(n_cols):  # each column against the totals row
            cells = [index(r, c) for r in range(n_rows - 1)]
            changed |= _fix_line(flat_values, flat_mask, cells, index(n_rows - 1, c))
    return SuppressedTable(
        values=table.astype(float),
        mask=pd.DataFrame(
            flat_mask.reshape(values.shape), index=table.index, columns=table.columns
        ),
        threshold=threshold,
    )
