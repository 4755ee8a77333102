"""The Models page's synthetic-control tab under Streamlit's AppTest."""

from __future__ import annotations

import json

from tests.conftest import COMMISSIONER
from tests.test_app_models import page_as


def _table(at, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_one_borough_shows_the_verdict_first_then_chart_and_donors(seeded_url, monkeypatch):
    at = page_as(seeded_url, monkeypatch, COMMISSIONER)
    at.selectbox(key="synth_outcome").set_value("knife_crime_injury_u25")
    at.selectbox(key="synth_borough").set_value("Hackney")
    at.button(key="FormSubmitter:synth-Compare with a synthetic borough").click().run()
    assert not at.exception
    verdicts = [*at.success, *at.info, *at.warning]
    assert any(
        v.value.startswith(("After ", "No detectable difference", "Not interpretable"))
        for v in verdicts
    )
    assert list(_table(at, "Placebo rank")["Borough"]) == ["Hackney"]
    donors = _table(at, "Donor")
    assert "Hackney" not in set(donors["Donor"])
    assert abs(donors["Weight"].sum() - 1) < 0.01
    charts = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    (spec,) = [c for c in charts if "synthetic counterpart" in c.get("description", "")]
    titles = json.dumps(spec)
    assert "Crimes per 100,000 aged 1-24 a month" in titles and '"Month"' in titles


def test_a_programme_pools_its_boroughs_and_a_refusal_is_a_message(seeded_url, monkeypatch):
    at = page_as(seeded_url, monkeypatch, COMMISSIONER)
    at.selectbox(key="synth_outcome").set_value("knife_crime_injury_u25")
    at.selectbox(key="synth_programme").set_value("Boxing for Change")
    at.button(key="FormSubmitter:synth-Compare with a synthetic borough").click().run()
    assert not at.exception
    table = _table(at, "Placebo rank")
    assert len(table) > 1
    at.selectbox(key="synth_programme").set_value("(none: donors are every other borough)")
    at.selectbox(key="synth_borough").set_value("(every borough that delivered the programme)")
    at.button(key="FormSubmitter:synth-Compare with a synthetic borough").click().run()
    assert not at.exception
    assert any("Name a borough" in e.value for e in at.error)
