"""Defaults on complete data (issue #15.3), on a registry whose crime data stops three months
before its delivery data, with a delivery already entered for a month still to come.

The small registry has delivery and homicide to 2023-06 (no homicide for 2022-03); here homicide
and gun crime stop at 2023-03. Overview and Explore must open on 2023-03, Downloads on the last
complete financial year (2022-23) and never offer or count a month not yet over; a period that
is not whole is never called whole; partial periods at a chart's ends are left out or labelled.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import delete, select

from registry import db
from registry.periods import Window, add_months, financial_year_label, last_complete_month
from registry.reports.build import Scope, build_report, report_choices
from registry.schema import Borough, Delivery, OutcomeCount, Programme, UnallocatedCount
from tests.analysis_db import CAMDEN, load_small
from tests.conftest import ADMIN
from tests.test_app_dashboard import open_page
from tests.test_app_home import app_as

NEXT_MONTH = add_months(last_complete_month(), 2)  # the month after the current one


@pytest.fixture
def late_crime_url(db_url: str) -> str:
    load_small(db_url)
    engine = db.make_engine(db_url)
    with engine.begin() as conn:
        for table in (OutcomeCount, UnallocatedCount):
            conn.execute(delete(table).where(table.month >= dt.date(2023, 4, 1)))
    with db.session_scope(engine) as s:  # typed in ahead of time: not data yet
        p1 = s.scalar(select(Programme.id).where(Programme.name == "P1"))
        camden = s.scalar(select(Borough.id).where(Borough.gss_code == CAMDEN))
        s.add(
            Delivery(
                programme_id=p1,
                borough_id=camden,
                month=NEXT_MONTH,
                opportunities=999,
                updated_by="t",
            )
        )
    engine.dispose()
    return db_url


def test_overview_opens_on_the_latest_month_with_whole_outcome_windows(
    late_crime_url, monkeypatch
) -> None:
    at = open_page(late_crime_url, monkeypatch, "dashboards/overview.py")
    assert not at.exception, at.exception
    assert (at.selectbox(key="ov_start").value, at.selectbox(key="ov_end").value) == (
        "2022-04",
        "2023-03",
    )
    table = next(d.value for d in at.dataframe if "months stored" in d.value.columns)
    assert set(table["months stored"]) == {12}
    assert not any("are stored: no change" in c.value for c in at.caption)


def test_explore_opens_on_complete_data_and_leaves_out_partial_periods(
    late_crime_url, monkeypatch
) -> None:
    at = open_page(late_crime_url, monkeypatch, "dashboards/explore.py")
    assert not at.exception, at.exception
    assert at.selectbox(key="end").value == "2023-03"
    at = open_page(
        late_crime_url,
        monkeypatch,
        "dashboards/explore.py",
        {"measure": "homicide", "start": "2021-11", "end": "2023-06", "freq": "quarter"},
    )
    assert not at.exception, at.exception
    trend = next(d.value for d in at.dataframe if "label" in d.value.columns)
    labels = list(trend["label"])
    # 2021 Q4 is cut by the period (November and December only): left out, and said so.
    assert labels[0] == "2022 Q1 (part)" and "2021 Q4" not in " ".join(labels)
    assert any("Left out: 2021 Q4" in c.value for c in at.caption)
    # 2022 Q1 lacks March 2022: no outcome figure rather than a dip; 2023 Q2 has no count at all.
    rows = trend.set_index("label")
    assert rows.loc["2022 Q1 (part)", "count"] != rows.loc["2022 Q1 (part)", "count"]
    assert rows.loc["2023 Q2", "count"] != rows.loc["2023 Q2", "count"]
    assert rows.loc["2023 Q2", "opportunities"] == 3 * 15  # delivery is recorded to 2023-06
    assert rows.loc["2022 Q2", "count"] == (4 + 5 + 6) + 3 * 2


def test_downloads_default_to_the_latest_complete_year_and_never_a_future_month(
    late_crime_url, monkeypatch, downloaded
) -> None:
    at = app_as(late_crime_url, monkeypatch, ADMIN)
    at.switch_page("dashboards/downloads.py").run()
    assert not at.exception, at.exception
    years = at.selectbox(key="report_year").options
    assert at.selectbox(key="report_year").value == "2022-23"
    assert years[0] == "2023-24" and financial_year_label(NEXT_MONTH) not in years
    notes = "\n".join(m.value for m in at.markdown)
    assert "2022-04 to 2023-03 (12 whole months)" in notes
    # 2023-24 runs past the last delivery recorded (2023-06): never called whole, in any file.
    at.selectbox(key="report_year").select("2023-24").run()
    assert not at.exception, at.exception
    pdf = " ".join(
        "".join(
            p.extract_text() for p in PdfReader(io.BytesIO(downloaded(at, "dl_pdf"))).pages
        ).split()
    )
    sheet = load_workbook(io.BytesIO(downloaded(at, "dl_xlsx")))["Notes"]
    cells = " ".join(str(c.value) for c in sheet["A"] if c.value)
    for text in (pdf, cells):
        assert "whole months" not in text
        assert "deliveries are recorded to 2023-06, so the period is not whole" in text


def test_a_summary_is_cut_at_the_last_complete_month(late_crime_url) -> None:
    engine = db.make_engine(late_crime_url)
    this_year = int(financial_year_label(last_complete_month())[:4])
    with db.session_scope(engine) as s:
        s.add(
            Delivery(
                programme_id=s.scalar(select(Programme.id).where(Programme.name == "P2")),
                borough_id=s.scalar(select(Borough.id).where(Borough.gss_code == CAMDEN)),
                month=last_complete_month(),
                opportunities=7,
                updated_by="t",
            )
        )
    with db.session_scope(engine) as s:
        choices = report_choices(s, principal=ADMIN)
        report = build_report(
            s,
            principal=ADMIN,
            scope=Scope("all"),
            window=Window(dt.date(this_year, 4, 1), dt.date(this_year + 1, 3, 1)),
        )
    engine.dispose()
    # 2023-24 is over and deliveries are recorded after it: complete now, unlike this year.
    assert choices.default_year == "2023-24"
    assert report.window.end == last_complete_month()
    assert report.headline["opportunities"] == 7  # not the 999 typed in for a future month
    assert "the last complete month" in report.notes[0]
    assert not any("whole months" in note for note in report.notes)
