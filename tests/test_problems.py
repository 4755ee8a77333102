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


def test_blank_rows_are_dropped_and_the_others_keep_their_row_numbers() -> None:
    import pandas as pd

    from registry.problems import first_sheet_row, sheet_row_of, without_blank_rows

    frame = pd.DataFrame({"a": ["x", " ", "\u00a0", "y"], "b": ["", "", " ", "2"]})
    kept = without_blank_rows(frame)
    assert [sheet_row_of(i) for i in kept.index] == [2, 5]
    assert first_sheet_row(kept, kept["a"] == "y") == 5
    assert list(without_blank_rows(frame, ["b"]).index) == [3]


def test_unknown_crime_areas_are_refused_one_way() -> None:
    from registry.outcomes.common import crime_area, unknown_area

    assert crime_area("Westminster") == ("borough", "E09000033")
    assert crime_area("nonsense", "E09000001") == ("borough", "E09000001")
    assert crime_area("Unknown") == ("pseudo", "Unknown")
    assert crime_area("Westminmster") is None
    assert str(unknown_area("Westminmster", 3, "Area name")) == (
        "row 3, column 'Area name', value 'Westminmster': not a London borough or one of the "
        "Met's known non-borough areas; did you mean 'Westminster'?"
    )
