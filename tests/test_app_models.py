"""The Trends and models page under Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from registry.analysis import DEFINITIONS
from tests.conftest import COMMISSIONER, FUNDER

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PAGE = "dashboards/analysis.py"


def page_as(url: str, monkeypatch: pytest.MonkeyPatch, principal) -> AppTest:
    monkeypatch.setenv("VRU_DATABASE_URL", url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["principal"] = principal
    at.run()
    return at.switch_page(PAGE).run()


def test_trend_with_definitions_and_sensitivity(seeded_url, monkeypatch) -> None:
    at = page_as(seeded_url, monkeypatch, COMMISSIONER)
    assert not at.exception
    assert at.title[0].value == "Trends and models"
    assert all(d in at.markdown[0].value for d in DEFINITIONS)
    at.selectbox(key="trend_measure").set_value("knife_crime_injury_u25")
    at.button[0].click().run()
    assert not at.exception
    assert not at.error
    assert any(m.label == "Change" for m in at.metric)
    assert len(at.dataframe) == 2  # per-borough changes and the baseline-sensitivity table
    assert "Seasonal decomposition (STL)" in [h.value for h in at.subheader]


def test_model_fit_shows_estimate_and_caveats(seeded_url, monkeypatch) -> None:
    at = page_as(seeded_url, monkeypatch, COMMISSIONER)
    at.selectbox(key="model_kind").set_value("fe")
    at.button[1].click().run()
    assert not at.exception
    assert not at.error
    assert any(m.label == "delivery_rate_lag1" for m in at.metric)
    assert any("Association, not causation" in m.value for m in at.markdown)


def test_event_study_without_programme_is_a_message(seeded_url, monkeypatch) -> None:
    at = page_as(seeded_url, monkeypatch, COMMISSIONER)
    at.selectbox(key="model_kind").set_value("event")
    at.button[1].click().run()
    assert not at.exception
    assert "needs a programme" in at.error[0].value


def test_funder_does_not_get_the_page(seeded_url, monkeypatch) -> None:
    monkeypatch.setenv("VRU_DATABASE_URL", seeded_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["principal"] = FUNDER
    at.run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)
