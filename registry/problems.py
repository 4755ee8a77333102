"""What every importer shares about "what is wrong with this file, and where".

Delivery uploads and outcome imports both report problems as a reason located by spreadsheet row,
column and the cell's text (:class:`Problem`; ``row`` is ``None`` when the problem is the whole
file), number rows as a spreadsheet shows them (:func:`sheet_row`) and skip rows with nothing in
them (:func:`without_blank_rows`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

HEADER_ROWS = 1  # the line of column names above the data in every file people upload
HEADER_ROW = 1  # the spreadsheet row of that line: a problem with a column name is on it


def sheet_row(position: int, header_rows: int = HEADER_ROWS) -> int:
    """The row number a spreadsheet shows for the data row at 0-based ``position``: rows count
    from 1, and the header comes first."""
    return position + header_rows + 1


def sheet_row_of(label: Hashable) -> int:
    """:func:`sheet_row` of a row label of a table read from a file (labelled 0, 1, 2... by
    position; blank rows dropped keep their labels, so the numbers stay true)."""
    if not isinstance(label, int | np.integer):
        raise TypeError(f"a row label read from a file is its position, not {label!r}")
    return sheet_row(int(label))


def first_sheet_row(frame: pd.DataFrame | pd.Series, where: pd.Series | np.ndarray) -> int:
    """The spreadsheet row of the first row of ``frame`` for which ``where`` holds."""
    return sheet_row_of(frame.index[where][0])


def without_blank_rows(
    frame: pd.DataFrame, columns: Iterable[Hashable] | None = None
) -> pd.DataFrame:
    """``frame`` without the rows whose cells (in ``columns``; all by default) hold nothing but
    spaces, such as a stray ``,,,,`` line: they are not data. The rows kept keep their labels."""
    filled = np.zeros(len(frame), dtype=bool)
    for column in frame.columns if columns is None else columns:
        # Each distinct value is looked at once: a file repeats its values a great deal.
        codes, uniques = pd.factorize(frame[column].to_numpy(dtype=object), use_na_sentinel=False)
        filled |= np.array([str(u).strip() != "" for u in uniques], dtype=bool)[codes]
    return frame.loc[filled]


@dataclass(frozen=True)
class Problem:
    """One reason a file is refused (or a warning about it), located as precisely as it allows."""

    reason: str
    row: int | None = None
    column: str | None = None
    value: str | None = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column!r}")
        if self.value is not None:
            where.append(f"value {self.value!r}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def as_dict(self) -> dict[str, object]:
        return {"row": self.row, "column": self.column, "value": self.value, "reason": self.reason}
