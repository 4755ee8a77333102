"""The admin page for outcome data under Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from registry import db
from registry.schema import ImportBatch, OutcomeCount
from tests.conftest import ADMIN, COMMISSIONER
from tests.outcome_helpers import FIXTURES

# Slow lane: pages rendered with AppTest; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PAGE = "dashboards/outcome_data.py"


def _app(url: str, monkeypatch, principal) -> AppTest:
    monkeypatch.setenv("VRU_DATABASE_URL", url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["principal"] = principal
    return at.run()


def _batches(url: str) -> tuple[int, int]:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        result = (
            conn.scalar(select(func.count()).select_from(ImportBatch)),
            conn.scalar(select(func.count()).select_from(OutcomeCount)),
        )
    engine.dispose()
    return result


def _upload(at: AppTest, *names: str) -> None:
    at.file_uploader(key="od_files").set_value(
        [(n, (FIXTURES / n).read_bytes(), "text/csv") for n in names]
    ).run()


def test_preview_then_import_crime_file(db_url, monkeypatch) -> None:
    at = _app(db_url, monkeypatch, ADMIN)
    at.switch_page(PAGE).run()
    assert not at.exception
    assert at.title[0].value == "Outcome data"
    _upload(at, "mps_borough_recent24_202403.csv")
    assert at.selectbox(key="od_format_crime").value == "mps-borough"
    at.text_input(key="od_release").input("MPS 2024-03").run()
    at.button(key="od_preview").click().run()
    assert not at.exception
    assert any("nothing has been written" in i.value for i in at.info)
    assert _batches(db_url) == (0, 0)
    assert any("Unknown" in str(df.value) for df in at.dataframe)
    at.button(key="od_import").click().run()
    assert not at.exception
    assert [s.value for s in at.success] == ["Imported."]
    batches, counts = _batches(db_url)
    assert batches == 1 and counts == 18


def test_refused_upload_lists_problems_and_writes_nothing(db_url, monkeypatch) -> None:
    at = _app(db_url, monkeypatch, ADMIN)
    at.switch_page(PAGE).run()
    _upload(at, "2023-01-surrey-street.csv")
    assert at.selectbox(key="od_format_crime").value == "police-uk"
    at.selectbox(key="od_format_crime").set_value("mps-borough").run()
    at.button(key="od_import").click().run()
    assert not at.exception
    assert "refused" in at.error[0].value
    assert _batches(db_url) == (0, 0)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("ONS2020_mid_year_single_age.csv", "ons-single-year"),
        ("nomis_mid_year_single_age.csv", "nomis"),
    ],
)
def test_population_upload_detects_the_format(db_url, monkeypatch, name, fmt) -> None:
    at = _app(db_url, monkeypatch, ADMIN)
    at.switch_page(PAGE).run()
    at.radio(key="od_kind").set_value("Population").run()
    _upload(at, name)
    assert at.selectbox(key="od_format_population").value == fmt
    at.button(key="od_import").click().run()
    assert not at.exception
    assert [s.value for s in at.success] == ["Imported."]


def test_commissioners_do_not_get_the_page(db_url, monkeypatch) -> None:
    at = _app(db_url, monkeypatch, COMMISSIONER)
    assert not at.exception
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)
