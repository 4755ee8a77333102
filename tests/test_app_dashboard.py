"""Overview and Explore under AppTest: every filter changes the figures, which equal SQL sums."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from registry import db
from registry.periods import add_months, parse_month
from registry.schema import (
    Borough,
    Delivery,
    FundingStream,
    OutcomeCount,
    OutcomeMeasure,
    Population,
    Programme,
    UnallocatedCount,
)
from tests.conftest import COMMISSIONER, FUNDER, STAFF, tables_without_csv

# Slow lane: pages rendered with AppTest; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PAGES = ["dashboards/overview.py", "dashboards/explore.py", "dashboards/models.py"]


def open_page(url: str, monkeypatch: pytest.MonkeyPatch, page: str, params=None) -> AppTest:
    monkeypatch.setenv("VRU_DATABASE_URL", url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["principal"] = COMMISSIONER
    at.run()
    for key, value in (params or {}).items():
        at.query_params[key] = value
    return at.switch_page(page).run()


def borough_frame(at: AppTest) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "Borough" in d.value.columns)


def trend_frame(at: AppTest) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "label" in d.value.columns)


def direct(
    url: str,
    *,
    measure: str,
    start: dt.date,
    end: dt.date,
    programme: str | None = None,
    stream: str | None = None,
) -> pd.DataFrame:
    """Per borough name: opportunities and outcome counts straight from the tables."""
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        stmt = (
            select(Borough.name, func.sum(Delivery.opportunities))
            .join(Borough, Borough.id == Delivery.borough_id)
            .join(Programme, Programme.id == Delivery.programme_id)
            .join(FundingStream, FundingStream.id == Programme.funding_stream_id)
            .where(Delivery.deleted_at.is_(None), Delivery.month.between(start, end))
            .group_by(Borough.name)
        )
        if programme:
            stmt = stmt.where(Programme.name == programme)
        if stream:
            stmt = stmt.where(FundingStream.name == stream)
        opportunities = dict(s.execute(stmt).tuples().all())
        counts = dict(
            s.execute(
                select(Borough.name, func.sum(OutcomeCount.count))
                .join(Borough, Borough.id == OutcomeCount.borough_id)
                .join(OutcomeMeasure, OutcomeMeasure.id == OutcomeCount.measure_id)
                .where(OutcomeMeasure.code == measure, OutcomeCount.month.between(start, end))
                .group_by(Borough.name)
            )
            .tuples()
            .all()
        )
    engine.dispose()
    names = sorted(set(opportunities) | set(counts))
    return pd.DataFrame(
        {
            "opportunities": [int(opportunities.get(n, 0)) for n in names],
            "count": [counts.get(n) for n in names],
        },
        index=names,
    )


def assert_matches(at: AppTest, expected: pd.DataFrame, outcome_column: str) -> None:
    shown = borough_frame(at).set_index("Borough")
    for name, row in expected.iterrows():
        assert shown.loc[name, "Opportunities"] == row["opportunities"], name
        if pd.isna(row["count"]):
            assert pd.isna(shown.loc[name, outcome_column]), name
        else:
            assert shown.loc[name, outcome_column] == row["count"], name


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_on_demo_data(seeded_url, monkeypatch, downloaded, page) -> None:
    at = open_page(seeded_url, monkeypatch, page)
    assert not at.exception
    assert not at.error
    assert at.title[0].value in {"Overview", "Explore", "Models"}
    assert tables_without_csv(at, downloaded) == []


@pytest.mark.parametrize("page", PAGES)
def test_pages_give_guidance_on_an_empty_database(db_url, monkeypatch, page) -> None:
    at = open_page(db_url, monkeypatch, page)
    assert not at.exception
    assert not at.error
    assert "No outcome counts are stored yet" in at.info[0].value


@pytest.mark.parametrize("page", PAGES)
def test_funders_do_not_get_the_dashboard(seeded_url, monkeypatch, page) -> None:
    monkeypatch.setenv("VRU_DATABASE_URL", seeded_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["principal"] = FUNDER
    at.run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(page)


def test_staff_see_the_dashboard(seeded_url, monkeypatch) -> None:
    monkeypatch.setenv("VRU_DATABASE_URL", seeded_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["principal"] = STAFF
    at.run()
    at.switch_page("dashboards/explore.py").run()
    assert not at.exception


def test_overview_tiles_equal_direct_queries(seeded_url, monkeypatch) -> None:
    at = open_page(seeded_url, monkeypatch, "dashboards/overview.py")
    end = parse_month(at.selectbox(key="ov_end").value)
    engine = db.make_engine(seeded_url)

    def opportunities(start: dt.date) -> int:
        with db.session_scope(engine) as s:
            return int(
                s.scalar(
                    select(func.sum(Delivery.opportunities)).where(
                        Delivery.deleted_at.is_(None), Delivery.month.between(start, end)
                    )
                )
            )

    def london(code: str, first: dt.date, last: dt.date) -> int:
        with db.session_scope(engine) as s:
            measure = s.scalar(select(OutcomeMeasure.id).where(OutcomeMeasure.code == code))
            boroughs = s.scalar(
                select(func.coalesce(func.sum(OutcomeCount.count), 0)).where(
                    OutcomeCount.measure_id == measure, OutcomeCount.month.between(first, last)
                )
            )
            unallocated = s.scalar(
                select(func.coalesce(func.sum(UnallocatedCount.count), 0)).where(
                    UnallocatedCount.measure_id == measure,
                    UnallocatedCount.month.between(first, last),
                )
            )
            return int(boroughs) + int(unallocated)

    metrics = {m.label: m for m in at.metric}
    start = parse_month(at.selectbox(key="ov_start").value)
    assert metrics["Opportunities delivered"].value == f"{opportunities(start):,}"
    first = add_months(end, -11)
    knife = london("knife_crime_injury_u25", first, end)
    earlier = london("knife_crime_injury_u25", add_months(first, -12), add_months(end, -12))
    y2019 = london("knife_crime_injury_u25", dt.date(2019, 1, 1), dt.date(2019, 12, 1))
    tile = metrics["Knife crime with injury, victims under 25"]
    assert tile.value == f"{knife:,}"
    assert tile.delta == f"{(knife - earlier) / earlier * 100:+.1f}% on a year earlier"
    assert f"{y2019:,} ({(knife - y2019) / y2019 * 100:+.1f}%)" in "\n".join(
        c.value for c in at.caption
    )
    # Changing the period changes the opportunities tile to the new direct sum.
    new_start = add_months(end, -35)
    at.selectbox(key="ov_start").set_value(new_start.strftime("%Y-%m")).run()
    metrics = {m.label: m for m in at.metric}
    assert metrics["Opportunities delivered"].value == f"{opportunities(new_start):,}"
    assert at.query_params["ov_start"] in (
        new_start.strftime("%Y-%m"),
        [new_start.strftime("%Y-%m")],
    )
    engine.dispose()


def test_explore_filters_change_figures_to_direct_queries(seeded_url, monkeypatch) -> None:
    at = open_page(seeded_url, monkeypatch, "dashboards/explore.py")
    assert not at.exception
    start = parse_month(at.selectbox(key="start").value)
    end = parse_month(at.selectbox(key="end").value)
    measure = at.selectbox(key="measure").value
    label = at.selectbox(key="measure").format_func(measure)
    base = borough_frame(at)
    assert len(base) == 33
    assert_matches(at, direct(seeded_url, measure=measure, start=start, end=end), label)

    # Measure
    at.selectbox(key="measure").set_value("gun_crime").run()
    assert_matches(at, direct(seeded_url, measure="gun_crime", start=start, end=end), "Gun crime")
    # Period
    new_start = add_months(end, -5)
    at.selectbox(key="start").set_value(new_start.strftime("%Y-%m")).run()
    assert_matches(
        at, direct(seeded_url, measure="gun_crime", start=new_start, end=end), "Gun crime"
    )
    # Programme
    programme = at.multiselect(key="programme").options[0]
    at.multiselect(key="programme").set_value([programme]).run()
    expected = direct(
        seeded_url, measure="gun_crime", start=new_start, end=end, programme=programme
    )
    assert_matches(at, expected, "Gun crime")
    at.multiselect(key="programme").set_value([]).run()
    # Funding stream
    stream = at.multiselect(key="stream").options[0]
    at.multiselect(key="stream").set_value([stream]).run()
    expected = direct(seeded_url, measure="gun_crime", start=new_start, end=end, stream=stream)
    assert_matches(at, expected, "Gun crime")
    at.multiselect(key="stream").set_value([]).run()
    # Boroughs
    at.multiselect(key="borough").set_value(["E09000022", "E09000028"]).run()
    assert list(borough_frame(at)["Borough"]) == ["Lambeth", "Southwark"]
    trend = trend_frame(at)
    both = direct(seeded_url, measure="gun_crime", start=new_start, end=end)
    assert trend["count"].sum() == both.loc[["Lambeth", "Southwark"], "count"].sum()
    assert trend["opportunities"].sum() == both.loc[["Lambeth", "Southwark"], "opportunities"].sum()
    # Frequency: quarters hold the same totals in fewer rows
    months = len(trend)
    at.selectbox(key="freq").set_value("quarter").run()
    quarters = trend_frame(at)
    assert len(quarters) < months
    assert quarters["count"].sum() == trend["count"].sum()
    assert all("Q" in label for label in quarters["label"])
    # Counts or rates: gun crime's rate is the count per 100,000 residents (all ages)
    at.radio(key="figure").set_value("rates").run()
    rates = trend_frame(at)
    engine = db.make_engine(seeded_url)
    with db.session_scope(engine) as s:
        people = dict(
            s.execute(
                select(Population.year, func.sum(Population.people))
                .join(Borough, Borough.id == Population.borough_id)
                .where(
                    Population.age_band == "all ages",
                    Borough.gss_code.in_(["E09000022", "E09000028"]),
                )
                .group_by(Population.year)
            )
            .tuples()
            .all()
        )
    engine.dispose()
    last = rates.iloc[-1]
    assert last["outcome_rate"] == pytest.approx(last["count"] / people[end.year] * 100_000)
    # Borough detail
    at.selectbox(key="detail").set_value("E09000022").run()
    assert not at.exception
    assert any(m.label == "Rate per 100,000 residents" for m in at.metric)
    assert "Borough detail" in [h.value for h in at.subheader]


def test_explore_funnel_and_map_are_drawn_with_tables(seeded_url, monkeypatch) -> None:
    at = open_page(seeded_url, monkeypatch, "dashboards/explore.py")
    funnel = next(d.value for d in at.dataframe if "band" in d.value.columns)
    # The demo data hold no counts for the City of London: left out, and said so.
    assert len(funnel) == 32 and "City of London" not in set(funnel["borough"])
    assert any("Not plotted" in c.value and "City of London" in c.value for c in at.caption)
    assert set(funnel["band"]) <= {
        "within 95% limits",
        "above 95% limit",
        "below 95% limit",
        "above 99.8% limit",
        "below 99.8% limit",
    }
    tiles = next(d.value for d in at.dataframe if "short" in d.value.columns)
    assert len(tiles) == 33
    captions = "\n".join(c.value for c in at.caption)
    assert "London rate" in captions and "Each square is a borough" in captions
    labels = [b.label for b in at.get("download_button")]
    assert labels.count("Download chart (PNG)") >= 3


def test_explore_summaries_print_counts_whole_and_rates_to_one_decimal(
    seeded_url, monkeypatch
) -> None:
    at = open_page(seeded_url, monkeypatch, "dashboards/explore.py")
    for figure, column, number in [("counts", "count", ",.0f"), ("rates", "outcome_rate", ",.1f")]:
        at.radio(key="figure").set_value(figure).run()
        assert not at.exception
        trend = trend_frame(at)
        first, last = trend.iloc[0], trend.iloc[-1]
        captions = "\n".join(c.value for c in at.caption)
        assert (
            f"{first['label']} {first[column]:{number}} to "
            f"{last['label']} {last[column]:{number}} for the outcome"
        ) in captions, figure
        tiles = next(d.value for d in at.dataframe if "short" in d.value.columns)
        top = tiles.sort_values("value", ascending=False).iloc[0]
        assert f"Highest: {top['borough']} ({top['value']:{number}})." in captions, figure
        if figure == "counts":
            assert not re.search(r"\d\.0 to |\(\d[\d,]*\.0\)", captions)
        # The charts' tooltips print the figures the same way.
        specs = [(c.key, json.loads(c.proto.spec)) for c in at.get("vega_lite_chart")]
        trend_spec = next(spec for _, spec in specs if "Bars: " in json.dumps(spec))
        map_spec = next(spec for key, spec in specs if key == "map_chart")
        for spec in (trend_spec, map_spec):
            formats = re.findall(r'"format": "([^"]+)"', json.dumps(spec))
            assert formats and set(formats) <= {",.0f", number}, (figure, formats)
            assert number in formats, (figure, formats)


def click_tile(at: AppTest, area: str) -> AppTest:
    """Run as the browser does after a click on ``area``'s tile: the map's selection event.

    AppTest has no API for chart selections, so this sends the chart's widget state (the JSON
    the frontend sends) with the other widgets' states for the next run.
    """
    chart = next(e for e in at.get("vega_lite_chart") if e.key == "map_chart")
    states = at._tree.get_widget_states()
    state = states.widgets.add()
    state.id = chart.proto.id
    state.string_value = json.dumps({"selection": {"pick": [{"area": area}]}})
    return at._run(states)


def test_clicking_a_tile_shows_its_borough_and_the_box_still_chooses(
    seeded_url, monkeypatch
) -> None:
    at = open_page(seeded_url, monkeypatch, "dashboards/explore.py")
    assert at.selectbox(key="detail").value == ""
    click_tile(at, "E09000022")
    assert not at.exception
    assert at.selectbox(key="detail").value == "E09000022"
    assert at.query_params["detail"] == "E09000022"  # the view can be shared
    assert any("Lambeth:" in c.value for c in at.caption)
    # The tile stays selected on the map; choosing in the box, or changing a filter, is not
    # undone by that old click.
    at.selectbox(key="detail").set_value("E09000012").run()
    assert at.selectbox(key="detail").value == "E09000012"
    at.radio(key="figure").set_value("rates").run()
    assert at.selectbox(key="detail").value == "E09000012"
    assert any("Hackney:" in c.value for c in at.caption)
    # A click on another tile moves the detail again.
    click_tile(at, "E09000030")
    assert at.selectbox(key="detail").value == "E09000030"


def test_shared_url_restores_the_filters(seeded_url, monkeypatch) -> None:
    at = open_page(seeded_url, monkeypatch, "dashboards/explore.py")
    at.selectbox(key="measure").set_value("homicide").run()
    at.multiselect(key="borough").set_value(["E09000012", "E09000030"]).run()
    at.selectbox(key="freq").set_value("financial_year").run()
    at.radio(key="figure").set_value("rates").run()
    shared = {k: v if isinstance(v, list) else [v] for k, v in at.query_params.items()}
    assert shared["borough"] == ["E09000012", "E09000030"]
    assert shared["freq"] == ["financial_year"]
    table = borough_frame(at)

    fresh = open_page(seeded_url, monkeypatch, "dashboards/explore.py", shared)
    assert not fresh.exception
    assert fresh.selectbox(key="measure").value == "homicide"
    assert fresh.multiselect(key="borough").value == ["E09000012", "E09000030"]
    assert fresh.selectbox(key="freq").value == "financial_year"
    assert fresh.radio(key="figure").value == "rates"
    pd.testing.assert_frame_equal(borough_frame(fresh), table)


def test_a_stale_url_falls_back_to_defaults(seeded_url, monkeypatch) -> None:
    at = open_page(
        seeded_url,
        monkeypatch,
        "dashboards/explore.py",
        {"measure": ["no_such_measure"], "borough": ["E09000099"], "freq": ["weekly"]},
    )
    assert not at.exception
    assert at.selectbox(key="freq").value == "month"
    assert at.multiselect(key="borough").value == []
