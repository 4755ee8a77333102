"""Every page renders, with guidance rather than an error, while the registry is half-filled.

Staff add programmes before any crime data arrives, outcome files are imported before any
delivery, population may be missing: each state must give plain guidance, never an exception.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import delete
from streamlit.testing.v1 import AppTest

from registry import db
from registry.schema import Delivery, OutcomeCount, Population, UnallocatedCount
from tests.analysis_db import load_small
from tests.conftest import ADMIN

# Slow lane: every page rendered with AppTest; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PAGES = [
    "dashboards/home.py",
    "dashboards/overview.py",
    "dashboards/explore.py",
    "dashboards/models.py",
    "dashboards/entry.py",
    "dashboards/programmes.py",
    "dashboards/completeness.py",
    "dashboards/downloads.py",
    "dashboards/outcome_data.py",
    "dashboards/users.py",
    "dashboards/audit_log.py",
]
# What each state removes from the small analysis registry.
STATES = {
    "programmes only": (Delivery, OutcomeCount, UnallocatedCount, Population),
    "deliveries, no outcomes": (OutcomeCount, UnallocatedCount, Population),
    "outcomes, no deliveries": (Delivery,),
    "no population": (Population,),
}


@pytest.fixture(params=list(STATES))
def partial_url(request: pytest.FixtureRequest, db_url: str) -> str:
    load_small(db_url)
    engine = db.make_engine(db_url)
    with engine.begin() as conn:
        for table in STATES[request.param]:
            conn.execute(delete(table))
    engine.dispose()
    return db_url


def open_as_admin(url: str, monkeypatch: pytest.MonkeyPatch, page: str) -> AppTest:
    monkeypatch.setenv("VRU_DATABASE_URL", url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["principal"] = ADMIN
    at.run()
    assert not at.exception, at.exception
    return at.switch_page(page).run()


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_a_half_filled_registry(partial_url, monkeypatch, page) -> None:
    at = open_as_admin(partial_url, monkeypatch, page)
    check(at, page)
    # Rates divide by a population that may be missing (the radio is absent when Explore has
    # nothing to show and says so instead).
    if any(r.key == "figure" for r in at.radio):
        at.radio(key="figure").set_value("rates").run()
        check(at, page)


NOT_A_NUMBER = re.compile(r"\b(nan|NaN|NaT|inf|<NA>|None)\b")


def check(at: AppTest, page: str) -> None:
    """No exception, no error box, and no 'nan' (or None) printed where a figure should be."""
    assert not at.exception, (page, at.exception)
    assert not at.error, (page, [e.value for e in at.error])
    texts = [e.value for e in (*at.caption, *at.markdown, *at.info, *at.warning)]
    texts += [f"{m.label} {m.value} {m.delta or ''}" for m in at.metric]
    printed = [t for t in texts if NOT_A_NUMBER.search(str(t))]
    assert not printed, (page, printed)


@pytest.mark.parametrize("partial_url", ["outcomes, no deliveries"], indirect=True)
def test_overview_says_no_delivery_is_recorded_rather_than_none_delivered(
    partial_url, monkeypatch
) -> None:
    at = open_as_admin(partial_url, monkeypatch, "dashboards/overview.py")
    assert not at.exception
    assert any("No delivery is recorded" in c.value for c in at.caption)


def test_overview_says_when_its_12_months_are_only_partly_stored(db_url, monkeypatch) -> None:
    load_small(db_url)  # counts and delivery to 2023-06
    engine = db.make_engine(db_url)
    with engine.begin() as conn:  # a release holds borough and unallocated counts together
        for table in (OutcomeCount, UnallocatedCount):
            conn.execute(
                delete(table).where(table.month.between(dt.date(2023, 1, 1), dt.date(2023, 3, 1)))
            )
    engine.dispose()
    at = open_as_admin(db_url, monkeypatch, "dashboards/overview.py")
    # It opens on complete data (the 12 months to 2022-02); the latest 12 months are asked for.
    assert at.selectbox(key="ov_end").value == "2022-02"
    at.selectbox(key="ov_start").set_value("2022-07")
    at.selectbox(key="ov_end").set_value("2023-06").run()
    check(at, "dashboards/overview.py")
    homicide = next(m for m in at.metric if m.label == "Homicide")
    assert not homicide.delta  # no change from a part-stored window
    assert any(
        "Only 9 of the 12 months to June 2023 are stored: no change is given." in c.value
        for c in at.caption
    )
    table = next(d.value for d in at.dataframe if "months stored" in d.value.columns)
    assert set(table["months stored"]) == {9}
