"""The audit trail in words (issue #15): each event names the programme, borough and month it is
about and shows its change before → after, on the page and in `vru audit`; the CSV keeps the raw
record too."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from registry import audit, db, deliveries, programmes
from registry.cli import cli
from tests.conftest import ADMIN, STAFF
from tests.entry_helpers import OPEN, add_programmes

# Slow lane: pages rendered with AppTest; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
APRIL = dt.date(2022, 4, 1)


def _history(url: str) -> None:
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        add_programmes(s)
    for opportunities, participants in ((60, 30), (61, 31)):
        with db.session_scope(engine) as s:
            read = deliveries.get_delivery(
                s, principal=STAFF, programme=OPEN, borough="Hackney", month=APRIL
            )
            deliveries.save_delivery(
                s,
                principal=STAFF,
                programme=OPEN,
                borough="Hackney",
                month=APRIL,
                opportunities=opportunities,
                participants=participants,
                read=read,
            )
    with db.session_scope(engine) as s:
        deliveries.delete_delivery(
            s,
            principal=STAFF,
            programme=OPEN,
            borough="Hackney",
            month=APRIL,
            reason="entered twice",
        )
        deliveries.sign_off_month(s, principal=ADMIN, month=APRIL, note="checked")
        programmes.edit_programme(s, principal=STAFF, name=OPEN, changes={"partner": "Partner Ltd"})
    engine.dispose()


def _events(url: str) -> list[dict]:
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        rows = audit.list_events(s, principal=ADMIN)
    engine.dispose()
    return rows


def test_events_name_what_they_are_about_and_show_before_and_after(db_url) -> None:
    _history(db_url)
    events = {(r["action"], r["entity"]): r for r in _events(db_url)}
    created = events["create", "delivery"]
    assert created["about"] == f"{OPEN}, Hackney, 2022-04"
    assert created["change"] == "opportunities 60; participants 30"
    amended = events["amend", "delivery"]
    assert amended["about"] == f"{OPEN}, Hackney, 2022-04"
    assert amended["change"] == "opportunities 60 → 61; participants 30 → 31"
    deleted = events["delete", "delivery"]
    assert deleted["about"] == f"{OPEN}, Hackney, 2022-04"
    assert deleted["change"] == (
        "deleted (was opportunities 61; participants 31; spend (£) (blank)); reason: entered twice"
    )
    signed = events["sign_off", "month_sign_off"]
    assert (signed["about"], signed["change"]) == ("Month 2022-04", "month 2022-04; note checked")
    edited = events["amend", "programme"]
    assert (edited["about"], edited["change"]) == (OPEN, "partner (blank) → Partner Ltd")


def test_vru_audit_prints_a_table_in_words(db_url) -> None:
    _history(db_url)
    result = CliRunner().invoke(cli, ["--database-url", db_url, "audit"], catch_exceptions=False)
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["Id", "When", "(UTC)", "Who"]
    assert set(lines[1]) <= {"-", " "}
    assert any("opportunities 60 → 61; participants 30 → 31" in line for line in lines)


def test_the_audit_page_shows_words_not_ids_and_json(db_url, monkeypatch) -> None:
    _history(db_url)
    monkeypatch.setenv("VRU_DATABASE_URL", db_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["principal"] = ADMIN
    at.run()
    at.switch_page("dashboards/audit_log.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert "entity_id" not in table.columns and "before" not in table.columns
    assert {"about", "change"} <= set(table.columns)
    amended = table[table["action"] == "amend"]
    assert f"{OPEN}, Hackney, 2022-04" in set(amended["about"])
    assert "opportunities 60 → 61; participants 30 → 31" in set(amended["change"])
    assert not table["change"].str.contains("{", regex=False).any()
