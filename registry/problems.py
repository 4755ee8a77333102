"""The one type for "what is wrong with this file, and where", shared by every importer.

Delivery uploads and outcome imports both report problems as a reason located by spreadsheet row,
column and the cell's text. ``row`` is ``None`` when the problem is the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass

HEADER_ROWS = 1  # the line of column names above the data in every file people upload


def sheet_row(position: int, header_rows: int = HEADER_ROWS) -> int:
    """The row number a spreadsheet shows for the data row at 0-based ``position``: rows count
    from 1, and the header comes first."""
    return position + header_rows + 1


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
