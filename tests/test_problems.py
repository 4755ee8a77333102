"""One problem type and one spreadsheet-row rule for every importer."""

from __future__ import annotations

from registry.outcomes.common import Problem as OutcomeProblem
from registry.problems import Problem, sheet_row
from registry.uploads import Problem as UploadProblem


def test_delivery_and_outcome_imports_share_one_problem_type() -> None:
    assert UploadProblem is Problem and OutcomeProblem is Problem
    cell = Problem("not a number", 7, "count", "")
    assert str(cell) == "row 7, column 'count', value '': not a number"
    assert str(Problem("The file is empty.")) == "The file is empty."
    assert cell.as_dict() == {"row": 7, "column": "count", "value": "", "reason": "not a number"}


def test_spreadsheet_rows_count_from_one_below_the_header() -> None:
    assert [sheet_row(i) for i in range(3)] == [2, 3, 4]
    assert sheet_row(0, header_rows=3) == 4
