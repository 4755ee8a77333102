"""Panel assembly from the database: definitions, filters, lags, population gaps, refusals."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import delete

from registry import db
from registry.analysis.estimators import fit_count
from registry.analysis.fixed_effects import fit_fe
from registry.analysis.panel import load_panel
from registry.analysis.run import run_model
from registry.errors import NotFoundError, PermissionDenied, RegistryError
from registry.schema import Population
from tests.analysis_db import CAMDEN, HACKNEY, MISSING, load_small
from tests.conftest import COMMISSIONER, FUNDER


@pytest.fixture
def small_session(db_url: str):
    load_small(db_url)
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        yield s
    engine.dispose()


def _row(frame, area: str, month: dt.date):
    rows = frame[(frame["area"] == area) & (frame["period"] == month)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_rates_lags_and_definitions(small_session) -> None:
    panel = load_panel(small_session, principal=COMMISSIONER, measure="homicide", lags=(1, 2))
    frame = panel.frame
    camden = _row(frame, CAMDEN, dt.date(2021, 5, 1))
    assert camden["opportunities"] == 10  # the deleted Hackney row never counts anywhere
    assert camden["delivery_rate"] == pytest.approx(10 / 50_000 * 1000)
    # Homicide is a rate per 100,000 residents (all ages): Camden 250,000 in 2021.
    assert camden["count"] == 5 and camden["population"] == 250_000
    assert camden["rate"] == pytest.approx(5 / 250_000 * 100_000)  # 2.0 per 100,000
    assert panel.rate_unit == "per 100,000 residents"
    hackney = _row(frame, HACKNEY, dt.date(2021, 7, 1))
    assert hackney["opportunities"] == 5
    assert hackney["delivery_rate_lag1"] == pytest.approx(5 / 40_000 * 1000)
    assert hackney["delivery_rate_lag2"] == 0  # no delivery in May 2021: known to be none
    january = _row(frame, CAMDEN, dt.date(2022, 1, 1))
    assert january["young_people"] == 52_000
    assert january["delivery_rate_lag1"] == pytest.approx(10 / 50_000 * 1000)  # December 2021
    later = _row(frame, CAMDEN, dt.date(2023, 4, 1))
    assert (later["young_people"], later["population_year"]) == (52_000, 2022)
    assert MISSING not in set(frame["period"])
    # Delivery is known from January 2021, so January and February 2021 have no lag 2.
    assert frame["period"].min() == dt.date(2021, 3, 1)
    assert panel.n_areas == 2 and panel.n_periods == 27
    assert panel.population_note == "2023 uses 2022 population"


def test_filters_by_programme_stream_borough_and_period(small_session) -> None:
    p2 = load_panel(small_session, principal=COMMISSIONER, measure="homicide", programmes=["p2"])
    assert p2.frame.loc[p2.frame["area"] == CAMDEN, "opportunities"].sum() == 0
    s1 = load_panel(
        small_session, principal=COMMISSIONER, measure="homicide", funding_streams=["S1"]
    )
    assert s1.frame.loc[s1.frame["area"] == HACKNEY, "opportunities"].sum() == 0
    one = load_panel(
        small_session,
        principal=COMMISSIONER,
        measure="homicide",
        borough_names=["Camden"],
        start=dt.date(2022, 1, 1),
        end=dt.date(2022, 6, 1),
    )
    assert set(one.frame["area"]) == {CAMDEN}
    assert list(one.frame["count"]) == [1, 2, 4, 5, 6]
    assert one.frame.iloc[0]["delivery_rate_lag1"] > 0  # the lag reaches back before --from
    with pytest.raises(NotFoundError, match="no programme called 'Nope'"):
        load_panel(small_session, principal=COMMISSIONER, measure="homicide", programmes=["Nope"])


def test_quarters_sum_whole_quarters_only(small_session) -> None:
    panel = load_panel(
        small_session, principal=COMMISSIONER, measure="homicide", frequency="quarter", lags=(1,)
    )
    q2 = _row(panel.frame, CAMDEN, dt.date(2021, 4, 1))
    assert (q2["count"], q2["opportunities"]) == (4 + 5 + 6, 30)
    assert q2["delivery_rate_lag1"] == pytest.approx(30 / 50_000 * 1000)
    assert dt.date(2022, 1, 1) not in set(panel.frame["period"])  # March 2022 is missing
    assert any("fewer than 3 months" in n for n in panel.notes)


def test_reading_the_panel_needs_models_run(small_session) -> None:
    with pytest.raises(PermissionDenied):
        load_panel(small_session, principal=FUNDER, measure="homicide")
    with pytest.raises(PermissionDenied):
        run_model(small_session, principal=FUNDER, outcome="homicide", model="fe")


def test_missing_population_is_one_brief_caveat(small_session) -> None:
    result = run_model(small_session, principal=COMMISSIONER, outcome="homicide", model="fe")
    said = [c for c in result.caveats if "population" in c and "2023" in c]
    assert said == ["2023 uses 2022 population (no estimate is loaded for those years)."]
    assert result.to_dict()["rate_unit"] == "per 100,000 residents"
    assert result.n_areas == 2 and result.n_obs == 2 * 28


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "fe", "lag": 40}, "Too few periods for a lag of 40"),
        ({"model": "fe", "outcome": "gun_crime"}, "Every rate in this panel is zero"),
        ({"model": "poisson", "outcome": "gun_crime"}, "Every count in this panel is zero"),
        ({"model": "event"}, "An event study needs a programme"),
        ({"model": "its"}, r"at least 12 periods \(months\) on each side"),
        ({"model": "fe", "outcome": "knife_crime_injury_u25"}, "No knife_crime_injury_u25 counts"),
        ({"model": "magic"}, "Unknown model 'magic'"),
    ],
)
def test_degenerate_inputs_give_a_clear_message(small_session, kwargs, message) -> None:
    args = {"outcome": "homicide", **kwargs}
    with pytest.raises(RegistryError, match=message):
        run_model(small_session, principal=COMMISSIONER, **args)


def test_one_borough_is_refused(small_session) -> None:
    panel = load_panel(
        small_session, principal=COMMISSIONER, measure="homicide", borough_names=["Hackney"]
    )
    with pytest.raises(RegistryError, match="needs at least 2 boroughs; this panel has 1"):
        fit_fe(panel.frame)
    with pytest.raises(RegistryError, match="at least 2 boroughs"):
        fit_count(panel.frame)


def test_no_population_is_refused(small_session) -> None:
    small_session.execute(delete(Population))
    with pytest.raises(RegistryError, match="No population aged 10-24 is stored"):
        run_model(small_session, principal=COMMISSIONER, outcome="homicide", model="fe")


def test_a_missing_measure_band_is_refused(small_session) -> None:
    small_session.execute(delete(Population).where(Population.age_band == "all ages"))
    with pytest.raises(RegistryError, match="No population of all ages is stored"):
        run_model(small_session, principal=COMMISSIONER, outcome="homicide", model="fe")


def test_no_variation_in_delivery_is_refused(small_session) -> None:
    with pytest.raises(RegistryError, match="No variation"):
        run_model(
            small_session,
            principal=COMMISSIONER,
            outcome="homicide",
            model="fe",
            programme="P1",
            start=dt.date(2021, 2, 1),
            end=dt.date(2021, 12, 1),
        )


def test_nearest_population_year_prefers_the_earlier_on_a_tie() -> None:
    import pandas as pd

    from registry.denominators import nearest_years, years_used_note

    stored = pd.DataFrame({"area": [CAMDEN] * 2, "year": [2019, 2021], "people": [100, 300]})
    frame = nearest_years(stored, [2018, 2020, 2022])
    assert list(frame["population_year"]) == [2019, 2019, 2021]
    assert list(frame["people"]) == [100, 100, 300]
    assert set(frame["area"]) == {CAMDEN}  # Hackney has none: left out
    assert years_used_note(frame) == "2018, 2020 use 2019 population; 2022 uses 2021 population"


def test_every_model_type_is_offered_by_the_cli_and_the_page() -> None:
    """The table is the one list: each entry fits one way and is a ``--model`` choice."""
    from registry.analysis.run import MODEL_TYPES
    from registry.cli import cli

    choices = next(p for p in cli.commands["analyse"].params if p.name == "model").type.choices
    for code, kind in MODEL_TYPES.items():
        assert kind.code == code and code in choices
        assert (kind.fit_panel is None) != (kind.fit_series is None), code
        assert kind.name and kind.sentence.endswith("."), code
    page = (Path(__file__).resolve().parent.parent / "dashboards" / "models.py").read_text()
    assert "MODEL_TYPES.values()" in page and '"poisson"' not in page


def test_a_new_model_is_one_entry_in_the_table(small_session, monkeypatch) -> None:
    """What a newcomer adds: a ModelType with its fit function; run_model loads the panel,
    the caveats and the outcome's label for it, and gives the result its population band."""
    from registry.analysis import run

    seen: list[run.PanelFit] = []

    def fit_mean(session, principal, request, fit: run.PanelFit):
        seen.append(fit)
        return run.MODEL_TYPES["poisson"].fit_panel(session, principal, request, fit)

    entry = run.ModelType("mean", "A new model", "does what the headline does.", fit_mean)
    monkeypatch.setitem(run.MODEL_TYPES, "mean", entry)
    result = run_model(small_session, principal=COMMISSIONER, outcome="homicide", model="mean")
    assert seen and seen[0].x == "delivery_rate_lag1" and seen[0].label == "homicide"
    assert seen[0].panel.n_areas == result.n_areas == 2
    assert result.to_dict()["rate_unit"] == "per 100,000 residents"
