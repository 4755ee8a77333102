"""One whole-window rule everywhere (issue #13.3): a window with months missing gives no change.

The small registry holds homicide to 2023-06 (and never 2022-03); here April to June 2023 are
removed too, as when crime data arrives after delivery. The 12 months to June 2023 then hold 9
stored months, the 12 months to June 2022 hold 11: every place that reports a change must give
none (null in JSON) and say how many months are stored.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from pypdf import PdfReader
from sqlalchemy import delete

from registry import db
from registry.cli import cli
from registry.periods import Window, month_range
from registry.reports.build import Scope, build_report
from registry.reports.render import render
from registry.schema import OutcomeCount, UnallocatedCount
from registry.windows import complete_month, is_whole, not_given, stored_words, whole_only
from tests.analysis_db import load_small
from tests.conftest import ADMIN
from tests.test_app_dashboard import open_page

CURRENT = "nly 9 of the 12 months to June 2023 are stored"
BASELINE = "Only 11 of the 12 months to June 2022 are stored: no change is given."
# The places that compare two stated windows name the baseline's months too; Overview and
# Explore say "not fully stored" for a year earlier.
NAME_BASELINE = {"vru trend", "Models page, trend tab", "funder summary (CSV, XLSX, PDF)"}


@pytest.fixture
def part_stored_url(db_url: str) -> str:
    load_small(db_url)
    engine = db.make_engine(db_url)
    with engine.begin() as conn:
        for table in (OutcomeCount, UnallocatedCount):
            conn.execute(delete(table).where(table.month >= dt.date(2023, 4, 1)))
    engine.dispose()
    return db_url


def _cli_trend(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[object], str]:
    args = ["trend", "--measure", "homicide", "--end", "2023-06", "--baseline-end", "2022-06"]
    as_json = CliRunner().invoke(cli, ["--database-url", url, *args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert data["current"]["months_stored"] == 9 and data["current"]["count"] > 0
    text = CliRunner().invoke(cli, ["--database-url", url, *args])
    assert text.exit_code == 0, text.output
    return [data[k] for k in ("change_pct", "ci_low", "ci_high", "p_value")], text.output


def _models_trend_tab(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[object], str]:
    at = open_page(url, monkeypatch, "dashboards/models.py")
    # The page offers months up to the last stored one (March 2023): the current window is
    # whole there, the baseline (to March 2022, which is missing) is not.
    at.selectbox(key="trend_end").set_value(dt.date(2023, 3, 1))
    at.selectbox(key="trend_base").set_value(dt.date(2022, 3, 1))
    next(b for b in at.button if b.label == "Compare").click().run()
    assert not at.exception, at.exception
    change = next(m for m in at.metric if m.label == "Change")
    words = " ".join(str(e.value) for e in (*at.caption, *at.markdown))
    assert "Only 11 of the 12 months to March 2022 are stored: no change is given." in words
    return [change.value if change.value != "not given" else None], CURRENT + BASELINE


def _overview(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[object], str]:
    at = open_page(
        url, monkeypatch, "dashboards/overview.py", {"ov_start": "2023-01", "ov_end": "2023-06"}
    )
    assert not at.exception, at.exception
    homicide = next(m for m in at.metric if m.label == "Homicide")
    table = next(d.value for d in at.dataframe if "months stored" in d.value.columns)
    row = table[table["measure"] == "Homicide"].iloc[0]
    values = [homicide.delta or None, *(None if row[c] != row[c] else row[c] for c in CHANGES)]
    return values, " ".join(c.value for c in at.caption)


CHANGES = ["change on a year earlier (%)", "change on 2019 (%)"]


def _explore(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[object], str]:
    at = open_page(
        url,
        monkeypatch,
        "dashboards/explore.py",
        {"measure": "homicide", "start": "2022-07", "end": "2023-06", "figure": "rates"},
    )
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "Borough" in d.value.columns)
    camden = table[table["Borough"] == "Camden"].iloc[0]
    assert camden["Months stored"] == 9
    values = [
        None if v != v else v
        for v in (camden["Change on a year earlier (%)"], camden["Rate per 100,000 residents"])
    ]
    return values, " ".join(c.value for c in at.caption)


def _report(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[object], str]:
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        report = build_report(
            s,
            principal=ADMIN,
            scope=Scope("all"),
            window=Window(dt.date(2022, 7, 1), dt.date(2023, 6, 1)),
        )
    engine.dispose()
    row = report.tables["outcomes"].set_index("measure").loc["Homicide"]
    pdf = " ".join(
        "".join(
            p.extract_text() for p in PdfReader(io.BytesIO(render(report, "pdf"))).pages
        ).split()
    )
    assert "Only 9 of the 12 months to June 2023 are stored" in pdf
    change = None if row["change_pct"] != row["change_pct"] else row["change_pct"]
    return [change], row["change_note"]


PLACES: dict[str, Callable[[str, pytest.MonkeyPatch], tuple[list[object], str]]] = {
    "vru trend": _cli_trend,
    "Models page, trend tab": _models_trend_tab,
    "Overview": _overview,
    "Explore": _explore,
    "funder summary (CSV, XLSX, PDF)": _report,
}


@pytest.mark.parametrize("place", list(PLACES))
def test_a_part_stored_window_gives_no_change_anywhere(
    part_stored_url: str, monkeypatch: pytest.MonkeyPatch, place: str
) -> None:
    values, words = PLACES[place](part_stored_url, monkeypatch)
    assert values and all(v is None for v in values), values
    assert CURRENT in words, words
    if place in NAME_BASELINE:
        assert BASELINE in words, words


def test_the_rule_and_its_words() -> None:
    start, end = dt.date(2023, 10, 1), dt.date(2024, 9, 1)
    assert is_whole(start, end, 12) and not is_whole(start, end, 2)
    assert not_given(start, end, 2) == (
        "Only 2 of the 12 months to September 2024 are stored: no change is given."
    )
    assert stored_words(start, end, 1) == "only 1 of the 12 months to September 2024 is stored"
    assert stored_words(start, end, 0) == "none of the 12 months to September 2024 is stored"
    assert whole_only(5.0, [(start, end, 12)]) == 5.0
    assert whole_only(5.0, [(start, end, 12), (start, end, 11)]) is None


def test_pages_open_on_the_latest_month_whole_for_every_measure() -> None:
    """complete_month: each measure's latest whole 12-month window, the earliest of those."""
    longer = set(month_range(dt.date(2023, 1, 1), dt.date(2024, 6, 1)))
    shorter = set(month_range(dt.date(2023, 1, 1), dt.date(2024, 3, 1))) - {dt.date(2023, 3, 1)}
    assert complete_month([longer]) == dt.date(2024, 6, 1)
    assert complete_month([longer, shorter]) == dt.date(2024, 3, 1)
    # A measure with no whole window at all (June 2023 missing) leaves no complete month.
    assert complete_month([longer, shorter - {dt.date(2023, 6, 1)}]) is None
    assert complete_month([]) is None
