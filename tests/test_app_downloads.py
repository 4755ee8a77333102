"""The Downloads page: scoped choices, figures equal to the registry's, files offered."""

from __future__ import annotations

import pytest

from registry import db
from registry.auth import Principal
from registry.periods import financial_year_window
from registry.reports.build import Scope, build_report
from tests.analysis_db import load_small
from tests.conftest import ADMIN, FUNDER, tables_without_csv
from tests.test_app_home import app_as

# Slow lane: pages rendered with AppTest; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow


def test_funder_chooses_only_among_their_streams(seeded_url, monkeypatch, downloaded) -> None:
    at = app_as(seeded_url, monkeypatch, FUNDER)
    at.switch_page("dashboards/downloads.py").run()
    assert not at.exception
    assert at.radio(key="report_kind").options == ["Funding stream", "Programme"]
    streams = at.selectbox(key="report_stream").options
    assert streams == ["VRU Core Programme Fund", "Young Londoners Fund"]  # City Hall's
    year = at.selectbox(key="report_year").value
    engine = db.make_engine(seeded_url)
    with db.session_scope(engine) as s:
        expected = build_report(
            s,
            principal=FUNDER,
            scope=Scope("funding_stream", streams[0]),
            window=financial_year_window(year),
        )
    engine.dispose()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Opportunities"] == f"{expected.headline['opportunities']:,}"
    assert metrics["Boroughs reached"] == str(expected.headline["boroughs_reached"])
    # The summary as CSV (zip), Excel and PDF, and each table shown as a CSV of its own.
    keys = [b.key for b in at.get("download_button")]
    assert keys == ["dl_csv", "dl_xlsx", "dl_pdf", "outcomes_csv", "delivery_csv"]
    assert tables_without_csv(at, downloaded) == []


def test_changing_the_year_changes_the_figures(seeded_url, monkeypatch) -> None:
    at = app_as(seeded_url, monkeypatch, ADMIN)
    at.switch_page("dashboards/downloads.py").run()
    at.radio(key="report_kind").set_value("All VRU programmes").run()
    first = {m.label: m.value for m in at.metric}["Opportunities"]
    years = at.selectbox(key="report_year").options
    at.selectbox(key="report_year").select(years[3]).run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Opportunities"] != first


def test_empty_registry_gives_guidance(db_url, monkeypatch) -> None:
    at = app_as(db_url, monkeypatch, ADMIN)
    at.switch_page("dashboards/downloads.py").run()
    assert not at.exception
    assert "no deliveries to summarise" in at.info[0].value


def test_a_year_the_programme_did_not_deliver_in_gives_a_plain_error(db_url, monkeypatch) -> None:
    load_small(db_url)  # P2 delivers from June 2021, so nothing in 2020-21
    at = app_as(db_url, monkeypatch, ADMIN)
    at.switch_page("dashboards/downloads.py").run()
    at.radio(key="report_kind").set_value("Programme").run()
    at.selectbox(key="report_programme").select("P2").run()
    assert "2020-21" in at.selectbox(key="report_year").options  # P1 delivered then
    at.selectbox(key="report_year").select("2020-21").run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert errors == ["Programme: P2 delivered nothing in 2020-04 to 2021-03."]
    assert not at.metric and not at.get("download_button")


def test_a_funder_is_offered_only_the_years_their_programmes_delivered_in(
    db_url, monkeypatch
) -> None:
    load_small(db_url)  # S1's P1 delivers from January 2021, S2's P2 from June 2021
    at = app_as(db_url, monkeypatch, Principal("fay", "funder", funder="F2"))
    at.switch_page("dashboards/downloads.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="report_year").options == ["2023-24", "2022-23", "2021-22"]
    assert not at.error


def test_a_funder_with_no_stream_is_told_so_not_that_nothing_was_delivered(
    db_url, monkeypatch
) -> None:
    load_small(db_url)
    at = app_as(db_url, monkeypatch, Principal("nell", "funder", funder="Nobody"))
    at.switch_page("dashboards/downloads.py").run()
    assert not at.exception, at.exception
    assert [i.value for i in at.info] == [
        "Your account is not linked to any funding stream yet; ask an administrator."
    ]
