"""Each measure's rate is per its own population band, computed here by hand; a year with no
population loaded is said once, briefly."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select

from registry import db
from registry.analysis.panel import load_panel
from registry.cli import cli
from registry.figures.explore import ExploreFilter, borough_table, population_note, trend_series
from registry.figures.funnel import funnel
from registry.periods import month_range
from registry.schema import Borough, ImportBatch, OutcomeCount, OutcomeMeasure, Population
from tests.analysis_db import CAMDEN, HACKNEY, load_small
from tests.conftest import COMMISSIONER
from tests.explore_helpers import explore_data
from tests.test_app_dashboard import open_page

YEAR_2021 = ExploreFilter(dt.date(2021, 1, 1), dt.date(2021, 12, 1))


@pytest.fixture
def small_session(db_url: str):
    """The small registry (tests/analysis_db.py) plus knife crime with injury under 25: Camden
    4 victims a month, Hackney 2, through 2021 and 2022."""
    load_small(db_url)
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        ids = dict(s.execute(select(Borough.gss_code, Borough.id)).tuples().all())
        knife = s.scalar(
            select(OutcomeMeasure.id).where(OutcomeMeasure.code == "knife_crime_injury_u25")
        )
        batch = s.scalar(select(ImportBatch.id))
        s.add_all(
            OutcomeCount(
                measure_id=knife,
                source="long",
                borough_id=ids[code],
                month=month,
                count=count,
                import_batch_id=batch,
            )
            for month in month_range(dt.date(2021, 1, 1), dt.date(2022, 12, 1))
            for code, count in ((CAMDEN, 4), (HACKNEY, 2))
        )
    with db.session_scope(engine) as s:
        yield s
    engine.dispose()


def test_homicide_is_per_100000_residents_by_hand(small_session) -> None:
    data = explore_data(small_session, principal=COMMISSIONER, measure="homicide")
    assert data.band == "all ages"
    table = borough_table(data, YEAR_2021).set_index("area")
    # Camden: 1 + 2 + ... + 12 = 78 homicides in 2021 among 250,000 residents.
    assert table.loc[CAMDEN, "count"] == 78 and table.loc[CAMDEN, "population"] == 250_000
    assert table.loc[CAMDEN, "outcome_rate"] == pytest.approx(78 / 250_000 * 100_000)  # 31.2
    # Delivery stays per 1,000 aged 10-24: 10 a month, 120 in the year, among 50,000.
    assert table.loc[CAMDEN, "delivery_rate"] == pytest.approx(120 / 50_000 * 1_000)
    trend = trend_series(data, ExploreFilter(dt.date(2021, 5, 1), dt.date(2021, 5, 1)))
    # May 2021, both boroughs: 5 + 2 homicides among 250,000 + 280,000 residents.
    assert trend["outcome_rate"].iloc[0] == pytest.approx(7 / 530_000 * 100_000)


def test_knife_crime_under_25_is_per_100000_aged_1_to_24_by_hand(small_session) -> None:
    data = explore_data(small_session, principal=COMMISSIONER, measure="knife_crime_injury_u25")
    assert data.band == "1-24"
    table = borough_table(data, YEAR_2021).set_index("area")
    # Camden: 4 victims a month, 48 in 2021, among 80,000 aged 1-24: 60.0 per 100,000.
    assert table.loc[CAMDEN, "outcome_rate"] == pytest.approx(48 / 80_000 * 100_000)
    assert table.loc[HACKNEY, "outcome_rate"] == pytest.approx(24 / 70_000 * 100_000)
    plot = funnel(data, YEAR_2021)
    assert plot.london_rate == pytest.approx((48 + 24) / (80_000 + 70_000) * 100_000)
    panel = load_panel(small_session, principal=COMMISSIONER, measure="knife_crime_injury_u25")
    may = panel.frame[
        (panel.frame["area"] == CAMDEN) & (panel.frame["period"] == dt.date(2021, 5, 1))
    ]
    assert may["rate"].iloc[0] == pytest.approx(4 / 80_000 * 100_000)  # 5.0
    assert may["delivery_rate"].iloc[0] == pytest.approx(10 / 50_000 * 1_000)
    assert panel.rate_unit == "per 100,000 aged 1-24"


def test_a_year_with_no_population_is_said_in_one_line(small_session) -> None:
    data = explore_data(small_session, principal=COMMISSIONER, measure="homicide")
    whole = ExploreFilter(dt.date(2021, 1, 1), dt.date(2023, 6, 1))
    assert population_note(data, whole) == "2023 uses 2022 population"
    assert population_note(data, YEAR_2021) is None
    # Only Camden lacks 2022: the line says for how many areas.
    small_session.execute(
        delete(Population).where(
            Population.year == 2022,
            Population.borough_id
            == select(Borough.id).where(Borough.gss_code == CAMDEN).scalar_subquery(),
        )
    )
    data = explore_data(small_session, principal=COMMISSIONER, measure="homicide")
    assert population_note(data, whole) == (
        "2022-2023 use 2021 population (for 1 area); 2023 uses 2022 population (for 1 area)"
    )


def test_cli_says_the_band(db_url) -> None:
    load_small(db_url)
    args = ["--database-url", db_url, "analyse", "--outcome", "homicide", "--model", "fe"]
    text = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert "outcome rates per 100,000 residents" in text.output
    assert "2023 uses 2022 population (no estimate is loaded for those years)." in text.output
    result = json.loads(CliRunner().invoke(cli, [*args, "--json"]).output)
    assert result["rate_unit"] == "per 100,000 residents"
    said = [c for c in result["caveats"] if "population (" in c]
    assert said == ["2023 uses 2022 population (no estimate is loaded for those years)."]


def test_explore_page_says_which_population_year_stood_in(seeded_url, monkeypatch) -> None:
    engine = db.make_engine(seeded_url)
    with db.session_scope(engine) as s:
        s.execute(delete(Population).where(Population.year > 2020))
    engine.dispose()
    params = {"measure": "homicide", "figure": "rates", "start": "2023-10", "end": "2026-09"}
    at = open_page(seeded_url, monkeypatch, "dashboards/explore.py", params)
    assert not at.exception
    captions = [c.value for c in at.caption if "population" in c.value.lower()]
    said = [c for c in captions if "2023-2026 use 2020 population" in c]
    assert len(said) == 1 and "homicide per 100,000 residents" in said[0]
    table = next(d.value for d in at.dataframe if "Borough" in d.value.columns)
    assert {"Residents", "Rate per 100,000 residents", "People aged 10-24"} <= set(table.columns)
