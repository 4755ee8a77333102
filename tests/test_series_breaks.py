"""Series breaks are visible wherever a figure crosses one (issue #13.4).

The small registry (homicide 2021-01 to 2023-06) gets a break in January 2022, as the Met's
February 2024 recording-system change is stored for the real data: trend and analyse JSON list
it, charts draw a rule at it, pages and the funder PDF say so beside the figures.
"""

from __future__ import annotations

import datetime as dt
import io
import json

import altair as alt
import pandas as pd
import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from dashboards import charts
from registry import db
from registry.cli import cli
from registry.outcomes.measures import SeriesBreak, add_break, series_breaks
from registry.periods import Window
from registry.reports.build import Scope, build_report
from registry.reports.render import render
from tests.analysis_db import load_small
from tests.conftest import ADMIN
from tests.test_app_dashboard import open_page

NOTE = "A new recording system went live; counts are not fully comparable."
BREAK = {"month": "2022-01", "note": NOTE}


@pytest.fixture
def break_url(db_url: str) -> str:
    load_small(db_url)
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        add_break(s, principal=ADMIN, code="homicide", month=dt.date(2022, 1, 1), note=NOTE)
    engine.dispose()
    return db_url


def run(url: str, *args: str):
    return CliRunner().invoke(cli, ["--database-url", url, *args])


def test_breaks_inside_a_period_are_those_it_crosses(break_url: str) -> None:
    engine = db.make_engine(break_url)
    with db.session_scope(engine) as s:
        crossed = series_breaks(s, "homicide", dt.date(2021, 7, 1), dt.date(2022, 6, 1))
        starts_with = series_breaks(s, "homicide", dt.date(2022, 1, 1), dt.date(2022, 6, 1))
        ends_with = series_breaks(s, "homicide", dt.date(2021, 1, 1), dt.date(2022, 1, 1))
        other = series_breaks(s, "gun_crime", dt.date(2021, 7, 1), dt.date(2022, 6, 1))
    engine.dispose()
    assert [b.to_dict() for b in crossed] == [BREAK]
    assert starts_with == [] and other == []  # wholly after the break; another measure
    assert [b.month for b in ends_with] == [dt.date(2022, 1, 1)]  # the last month is after it


def test_trend_json_lists_the_breaks_the_comparison_crosses(break_url: str) -> None:
    args = ["trend", "--measure", "homicide", "--window", "6", "--json"]
    crossing = run(break_url, *args, "--end", "2022-12", "--baseline-end", "2021-12")
    assert crossing.exit_code == 0, crossing.output
    data = json.loads(crossing.stdout)
    assert data["series_breaks"] == [BREAK]
    assert data["change_pct"] is not None  # both windows whole: the change is given, flagged
    assert "Series break in January 2022, inside this period" in crossing.stderr
    before = run(break_url, *args, "--end", "2021-12", "--baseline-end", "2021-06")
    assert before.exit_code == 0, before.output
    assert json.loads(before.stdout)["series_breaks"] == []


def test_analyse_json_lists_the_breaks_inside_the_model_period(break_url: str) -> None:
    args = ["analyse", "--outcome", "homicide", "--model", "poisson", "--json"]
    whole = run(break_url, *args)
    assert whole.exit_code == 0, whole.output
    assert json.loads(whole.stdout)["series_breaks"] == [BREAK]
    after = run(break_url, *args, "--from", "2022-01")
    assert after.exit_code == 0, after.output
    assert json.loads(after.stdout)["series_breaks"] == []
    text = run(break_url, "analyse", "--outcome", "homicide", "--model", "poisson")
    assert "Series break in January 2022" in text.stdout


def _rule_layers(spec: dict) -> list[dict]:
    found = []
    for layer in spec.get("layer", []):
        found += _rule_layers(layer)
        mark = layer.get("mark")
        if isinstance(mark, dict) and mark.get("type") == "rule" and "strokeDash" in mark:
            found.append(layer)
    return found


def test_a_chart_spec_carries_a_marked_rule_at_each_break() -> None:
    base = alt.Chart(pd.DataFrame({"period": [pd.Timestamp("2022-01-01")], "v": [1]}))
    chart = charts.with_breaks(
        base.mark_line().encode(x=alt.X("period:T", title="Period"), y=alt.Y("v:Q", title="V")),
        [SeriesBreak(dt.date(2024, 2, 1), NOTE)],
        "period",
        "Period",
    )
    spec = chart.to_dict(validate=False)
    text = json.dumps(spec)
    assert "Series break 2024-02" in text and NOTE in text
    assert len(_rule_layers(spec)) == 1
    assert charts.with_breaks(base.mark_line(), []) is not None


def test_explore_and_overview_show_the_break(break_url, monkeypatch) -> None:
    at = open_page(break_url, monkeypatch, "dashboards/explore.py", {"measure": "homicide"})
    assert not at.exception, at.exception
    assert any("Series break in January 2022" in w.value for w in at.warning)
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    trend = next(spec for spec in specs if "Bars: " in json.dumps(spec))
    # The rule's data travel beside the spec; the accessible name says where the rule is.
    assert _rule_layers(trend) and "series break in 2022-01" in trend["description"]
    overview = open_page(break_url, monkeypatch, "dashboards/overview.py")
    assert not overview.exception, overview.exception
    assert any("Series break in January 2022" in c.value for c in overview.caption)


def test_models_trend_tab_marks_the_break(break_url, monkeypatch) -> None:
    at = open_page(break_url, monkeypatch, "dashboards/models.py")
    at.selectbox(key="trend_end").set_value(dt.date(2022, 12, 1))
    at.selectbox(key="trend_base").set_value(dt.date(2021, 12, 1))
    at.number_input(key="trend_window").set_value(6)
    at.button(key="FormSubmitter:trend-Compare").click().run()
    assert not at.exception, at.exception
    assert any("Series break in January 2022" in c.value for c in at.caption)
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    rolling = next(spec for spec in specs if "12-month total" in json.dumps(spec))
    assert _rule_layers(rolling)


def test_funder_summary_and_pdf_note_the_break(break_url: str) -> None:
    engine = db.make_engine(break_url)
    with db.session_scope(engine) as s:
        report = build_report(
            s,
            principal=ADMIN,
            scope=Scope("all"),
            window=Window(dt.date(2022, 4, 1), dt.date(2023, 3, 1)),  # baseline from 2021-04
        )
    engine.dispose()
    homicide = report.tables["outcomes"].set_index("measure").loc["Homicide"]
    assert homicide["series_breaks"] == f"2022-01: {NOTE}"
    assert any("Homicide: series break inside the compared periods" in n for n in report.notes)
    pages = PdfReader(io.BytesIO(render(report, "pdf"))).pages
    pdf = " ".join("".join(p.extract_text() for p in pages).split())
    assert f"Series break in Homicide: 2022-01: {NOTE}" in pdf
    # The headline model (fitted on every month to the period's end) crosses it too.
    assert "Series break in January 2022, inside this period" in report.notes[-1]
