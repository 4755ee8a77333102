"""Property-based tests of the delivery upload parser: whatever arrives, the answer is a preview
or problems with row, column and reason, never a traceback, and nothing is written."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry import deliveries
from registry.uploads import TEMPLATE_COLUMNS, read_upload
from tests.conftest import STAFF
from tests.entry_helpers import CLOSED, OPEN, add_programmes, dump

# Slow lane: property-based (hypothesis); `make test-fast` leaves it out.
pytestmark = pytest.mark.slow

CELLS = st.one_of(
    st.sampled_from(
        [
            OPEN,
            CLOSED,
            "Camden",
            "E09000007",
            "kensington & chelsea",
            "2023-04",
            "2031-01",
            "2019-13",
            "12",
            "-3",
            "4.5",
            "1,200",
            "",
            " ",
            "n/a",
            "=1+1",
            "1e3",
            "\u00a0Camden",
        ]
    ),
    st.text(max_size=12),
    st.integers(min_value=-10, max_value=10**7).map(str),
)
HEADERS = st.one_of(
    st.just(list(TEMPLATE_COLUMNS)),
    st.permutations(list(TEMPLATE_COLUMNS)).map(list),
    st.lists(
        st.sampled_from([*TEMPLATE_COLUMNS, "Programme ", "borough_code", "", "extra"]),
        min_size=1,
        max_size=8,
    ),
)


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


@given(st.binary(max_size=400), st.sampled_from(["a.csv", "b.xlsx", "c.txt", "d.CSV"]))
@settings(max_examples=300, deadline=None)
def test_any_bytes_are_read_or_refused_with_a_reason(content: bytes, name: str) -> None:
    sheet = read_upload(content, name)
    for problem in sheet.problems:
        assert problem.reason and isinstance(problem.reason, str)
        assert problem.row is None or problem.row >= 1


@pytest.fixture
def entry_engine(engine):
    with deliveries_session(engine) as s:
        add_programmes(s)
    return engine


def deliveries_session(engine):
    from registry import db

    return db.make_session_factory(engine)()


@given(
    HEADERS,
    st.lists(st.lists(CELLS, min_size=0, max_size=8), max_size=6),
    st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]),
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_table_previews_or_explains_and_writes_nothing(
    entry_engine, header, rows, encoding
) -> None:
    text = _csv(header, rows).decode("utf-8")
    try:
        content = text.encode(encoding)
    except UnicodeEncodeError:
        content = text.encode("utf-8")
    before = dump(entry_engine)
    with deliveries_session(entry_engine) as s:
        result = deliveries.preview_upload(
            s, principal=STAFF, content=content, file_name="upload.csv"
        )
        s.rollback()
    for problem in result.problems:
        assert problem.reason
        assert problem.row is None or 1 <= problem.row <= len(rows) + 1
        if problem.row is not None and problem.row > 1:
            assert problem.column
    if result.ok:
        assert len(result.rows) == result.rows_read
        assert set(result.rows["status"]) <= {"added", "amended", "unchanged"}
    assert dump(entry_engine) == before
