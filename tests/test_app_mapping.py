"""The measure mapping is editable on the Outcome data page (admins), through the registry
function behind `vru measures mapping set` (issue #15)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboards.common import md
from registry import db
from registry.outcomes import mapping
from tests.conftest import ADMIN
from tests.entry_helpers import dump
from tests.outcome_helpers import FIXTURES

# Slow lane: pages rendered with AppTest; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PAGE = "dashboards/outcome_data.py"
CATEGORY = "Firearm Discharge (New Subgroup)"


def _page(url: str, monkeypatch) -> AppTest:
    monkeypatch.setenv("VRU_DATABASE_URL", url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["principal"] = ADMIN
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def _mapping(url: str) -> dict[tuple[str, str], tuple[str, str]]:
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        rows = mapping.list_mapping(s, principal=ADMIN)
    engine.dispose()
    return {(r["source_format"], r["source_category"]): (r["measure"], r["origin"]) for r in rows}


def test_an_unmapped_category_from_an_import_is_mapped_on_the_page(db_url, monkeypatch) -> None:
    at = _page(db_url, monkeypatch)
    at.file_uploader(key="od_files").set_value(
        [("mps_dashboard.csv", (FIXTURES / "mps_dashboard.csv").read_bytes(), "text/csv")]
    ).run()
    at.button(key="od_preview").click().run()
    assert any(CATEGORY in w.value for w in at.warning)
    at.selectbox(key="map_format").select("mps-dashboard").run()
    # The category the import could not place is offered first.
    assert at.selectbox(key="map_category").options[0] == CATEGORY
    at.selectbox(key="map_category").select(CATEGORY)
    at.selectbox(key="map_measure").select("gun_crime")
    at.button(key="FormSubmitter:mapping_form-Save the mapping").click().run()
    assert not at.exception
    assert md(f"'{CATEGORY}' now feeds Gun crime (gun_crime)") in at.success[0].value
    assert _mapping(db_url)["mps-dashboard", CATEGORY] == ("gun_crime", "override")


def test_a_refused_mapping_changes_nothing(db_url, monkeypatch) -> None:
    at = _page(db_url, monkeypatch)
    engine = db.make_engine(db_url)
    before = dump(engine)
    at.selectbox(key="map_measure").select("homicide")
    at.button(key="FormSubmitter:mapping_form-Save the mapping").click().run()  # no category
    assert not at.exception
    assert "Give the source category" in at.error[0].value
    assert dump(engine) == before
    engine.dispose()
