"""The Models page (models and the trend against a baseline) under Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from registry.analysis import DEFINITIONS
from registry.analysis.estimators import EVENT_CHANGE, EVENT_HIGH, EVENT_LOW
from tests.conftest import COMMISSIONER, FUNDER, tables_without_csv

# Slow lane: pages rendered with AppTest; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PAGE = "dashboards/models.py"


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def page_as(url: str, monkeypatch: pytest.MonkeyPatch, principal) -> AppTest:
    monkeypatch.setenv("VRU_DATABASE_URL", url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["principal"] = principal
    at.run()
    return at.switch_page(PAGE).run()


def test_trend_with_definitions_and_sensitivity(seeded_url, monkeypatch, downloaded) -> None:
    at = page_as(seeded_url, monkeypatch, COMMISSIONER)
    assert not at.exception
    assert at.title[0].value == "Models"
    assert all(d in "\n".join(m.value for m in at.markdown) for d in DEFINITIONS)
    at.selectbox(key="trend_measure").set_value("knife_crime_injury_u25")
    button(at, "Compare").click().run()
    assert not at.exception
    assert not at.error
    assert any(m.label == "Change" for m in at.metric)
    # The interval allowing for overdispersion sits beside the exact one (issue #14.6).
    assert any(m.value.startswith("Allowing for overdispersion:") for m in at.markdown)
    # Rolling totals and STL (each chart's table), per-borough changes, baseline sensitivity.
    assert len(at.dataframe) == 4
    assert any("12 months to the month shown" in c.value for c in at.caption)
    assert "Seasonal decomposition (STL)" in [h.value for h in at.subheader]
    # Every table on the tab can be downloaded as shown, each from its own button.
    assert tables_without_csv(at, downloaded) == []
    files = [downloaded(at, k) for k in ["trend_boroughs_csv", "sensitivity_csv"]]
    assert "borough" in files[0].decode().splitlines()[0] and files[0] != files[1]


def test_model_fit_shows_estimate_and_caveats(seeded_url, monkeypatch, downloaded) -> None:
    at = page_as(seeded_url, monkeypatch, COMMISSIONER)
    at.selectbox(key="model_kind").set_value("fe")
    button(at, "Fit").click().run()
    assert not at.exception
    assert not at.error
    text = "\n".join(m.value for m in at.markdown)
    # Plain labels, intervals written in full, no code names.
    assert "per extra 10 opportunities per 1,000 young people in the month before" in text
    assert "delivery_rate_lag1" not in text and "95% interval" in text
    # Short caveats on the page, in full in an expander; the assumption is stated.
    assert "Association, not causation" in text
    full = "\n".join(m.value for e in at.expander for m in e.markdown)
    assert "Parallel trends in levels" in full
    # No perfect-by-construction fitted chart: observed against the no-delivery prediction.
    assert any(
        d.value.columns.tolist() == ["period", "observed", "without_delivery"] for d in at.dataframe
    )
    assert tables_without_csv(at, downloaded) == []


def test_headline_shows_the_verdict_before_any_number(seeded_url, monkeypatch) -> None:
    at = page_as(seeded_url, monkeypatch, COMMISSIONER)
    assert at.selectbox(key="model_kind").value == "poisson"
    button(at, "Fit").click().run()
    assert not at.exception and not at.error
    boxes = [*at.success, *at.info, *at.warning]
    verdicts = [b.value for b in boxes if b.value.startswith(("Association", "No detectable"))]
    assert len(verdicts) == 1
    # The verdict box comes before the figure: the first element after the heading.
    subheaders = [h.value for h in at.subheader]
    assert subheaders[0].startswith("Headline: Poisson")
    texts = [e.value for e in at.main if isinstance(getattr(e, "value", None), str)]
    verdict_at = texts.index(verdicts[0])
    figure_at = next(i for i, t in enumerate(texts) if "95% interval" in t)
    assert verdict_at < figure_at


def test_specification_table_on_the_page(seeded_url, monkeypatch) -> None:
    at = page_as(seeded_url, monkeypatch, COMMISSIONER)
    button(at, "Specification table: every outcome at lags 0-3 (headline model)").click().run()
    assert not at.exception and not at.error
    table = next(d.value for d in at.dataframe if "Adjusted p (Holm)" in d.value.columns)
    assert len(table) == 12 and set(table["Delivery"]) == {
        "in the same month",
        "in the month before",
        "2 months before",
        "3 months before",
    }
    assert any("Holm's correction" in c.value for c in at.caption)


@pytest.mark.parametrize("model", ["poisson", "its"])
def test_count_and_its_models_show_a_true_chart(seeded_url, monkeypatch, model) -> None:
    at = page_as(seeded_url, monkeypatch, COMMISSIONER)
    at.selectbox(key="model_kind").set_value(model)
    at.radio(key="model_frequency").set_value("quarter")
    button(at, "Fit").click().run()
    assert not at.exception
    assert not at.error
    fitted = next(d.value for d in at.dataframe if "observed" in d.value.columns)
    assert len(fitted) > 4


def test_event_study_plot_with_a_programme(seeded_url, monkeypatch) -> None:
    at = page_as(seeded_url, monkeypatch, COMMISSIONER)
    at.selectbox(key="model_kind").set_value("event")
    programme = at.selectbox(key="model_programme").options[1]
    at.selectbox(key="model_programme").set_value(programme)
    button(at, "Fit").click().run()
    assert not at.exception
    if at.error:  # a programme that reached every borough at once has no controls: said so
        assert "cannot be separated" in at.error[0].value
    else:
        assert "Event study" in [h.value for h in at.subheader]
        # The figure is a % change in counts with its interval, not a bare log rate ratio.
        table = next(d.value for d in at.dataframe if EVENT_CHANGE in d.value.columns).dropna()
        assert not table.empty
        assert (table[EVENT_LOW] > -100).all()
        assert (table[EVENT_LOW] <= table[EVENT_CHANGE]).all()
        assert (table[EVENT_CHANGE] <= table[EVENT_HIGH]).all()
        assert any("% change in counts" in c.value for c in at.caption)


def test_each_model_is_explained_in_one_sentence(seeded_url, monkeypatch) -> None:
    at = page_as(seeded_url, monkeypatch, COMMISSIONER)
    text = "\n".join(m.value for m in at.markdown)
    for name in ("Additive fixed effects", "Poisson", "Negative binomial", "Interrupted", "Event"):
        assert name in text


def test_event_study_without_programme_is_a_message(seeded_url, monkeypatch) -> None:
    at = page_as(seeded_url, monkeypatch, COMMISSIONER)
    at.selectbox(key="model_kind").set_value("event")
    button(at, "Fit").click().run()
    assert not at.exception
    assert "needs a programme" in at.error[0].value


def test_funder_does_not_get_the_page(seeded_url, monkeypatch) -> None:
    monkeypatch.setenv("VRU_DATABASE_URL", seeded_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["principal"] = FUNDER
    at.run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)
