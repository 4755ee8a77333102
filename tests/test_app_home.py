"""The app's frame and home page under Streamlit's AppTest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select
from streamlit.testing.v1 import AppTest

from registry import db
from registry.periods import rolling_window
from registry.schema import Delivery, OutcomeCount, OutcomeMeasure, UnallocatedCount
from tests.analysis_db import load_small
from tests.conftest import ADMIN, COMMISSIONER, FUNDER
from tests.entry_helpers import add_programmes

# Slow lane: pages rendered with AppTest; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


def app_as(url: str, monkeypatch: pytest.MonkeyPatch, principal=None) -> AppTest:
    monkeypatch.setenv("VRU_DATABASE_URL", url)
    at = AppTest.from_file(APP, default_timeout=60)
    if principal is not None:
        at.session_state["principal"] = principal
    return at.run()


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption]
    parts += (
        [str(m.value) for m in at.metric]
        + [m.value for m in at.warning]
        + [m.value for m in at.info]
    )
    return "\n".join(parts)


def test_unsigned_visitor_sees_only_sign_in(seeded_url, monkeypatch) -> None:
    at = app_as(seeded_url, monkeypatch)
    assert not at.exception
    assert at.title[0].value == "Sign in to the VRU registry"
    assert not at.metric
    assert "Synthetic demo data" not in texts(at)


def test_home_figures_match_direct_queries(seeded_url, monkeypatch) -> None:
    at = app_as(seeded_url, monkeypatch, COMMISSIONER)
    assert not at.exception
    assert "Synthetic demo data" in texts(at)
    metrics = {m.label: m.value for m in at.metric}
    engine = db.make_engine(seeded_url)
    with db.session_scope(engine) as s:
        total = s.scalar(
            select(func.sum(Delivery.opportunities)).where(Delivery.deleted_at.is_(None))
        )
        assert metrics["Positive opportunities delivered to date"] == f"{total:,}"
        for measure in s.scalars(select(OutcomeMeasure)):
            latest = s.scalar(
                select(func.max(OutcomeCount.month)).where(OutcomeCount.measure_id == measure.id)
            )
            if latest is None:  # a measure the demo data has no counts for
                assert measure.label not in metrics
                assert measure.label in texts(at)
                continue
            window = rolling_window(latest)
            boroughs = (
                s.scalar(
                    select(func.sum(OutcomeCount.count)).where(
                        OutcomeCount.measure_id == measure.id,
                        OutcomeCount.month.between(window.start, window.end),
                    )
                )
                or 0
            )
            unallocated = (
                s.scalar(
                    select(func.coalesce(func.sum(UnallocatedCount.count), 0)).where(
                        UnallocatedCount.measure_id == measure.id,
                        UnallocatedCount.month.between(window.start, window.end),
                    )
                )
                or 0
            )
            assert metrics[measure.label] == f"{boroughs + unallocated:,}"
            assert f"{window.label()}; {unallocated:,} of them in no borough." in texts(at)
    engine.dispose()


def test_home_on_an_empty_database_gives_guidance(db_url, monkeypatch) -> None:
    at = app_as(db_url, monkeypatch, ADMIN)
    assert not at.exception
    assert "The registry is empty" in texts(at)
    assert "Synthetic demo data" not in texts(at)


def test_home_with_programmes_but_no_outcome_counts_says_so(db_url, monkeypatch) -> None:
    engine = db.make_engine(db_url)
    with db.make_session_factory(engine)() as s:
        add_programmes(s)
    engine.dispose()
    at = app_as(db_url, monkeypatch, ADMIN)
    assert not at.exception
    assert "No outcome counts are loaded yet" in texts(at)
    assert "Programmes in the registry" in [m.label for m in at.metric]


def test_home_says_when_the_last_12_months_are_only_partly_stored(db_url, monkeypatch) -> None:
    load_small(db_url)  # counts to 2023-06; the window 2022-07..2023-06 then loses three months
    engine = db.make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            delete(OutcomeCount).where(
                OutcomeCount.month.between(dt.date(2023, 1, 1), dt.date(2023, 3, 1))
            )
        )
    engine.dispose()
    at = app_as(db_url, monkeypatch, ADMIN)
    assert not at.exception
    assert "Only 9 of the 12 months to June 2023 are stored, so this is part of a year." in texts(
        at
    )


def test_funder_home_points_to_downloads(seeded_url, monkeypatch) -> None:
    at = app_as(seeded_url, monkeypatch, FUNDER)
    assert not at.exception
    assert not at.metric
    assert "Downloads page" in texts(at)


def test_sign_in_and_out_with_a_password(db_url, monkeypatch) -> None:
    engine = db.make_engine(db_url)
    from registry import auth

    with db.session_scope(engine) as s:
        auth.add_user(
            s, principal=auth.SYSTEM, username="alice", role="admin", password="a-long-password"
        )
    engine.dispose()
    at = app_as(db_url, monkeypatch)
    at.text_input(key="sign_in_username").input("alice")
    at.text_input(key="sign_in_password").input("wrong-password!")
    at.button[0].click().run()
    assert "Wrong username or password" in at.error[0].value
    assert "_vru_principal" not in at.session_state
    at.text_input(key="sign_in_password").input("a-long-password")
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["_vru_principal"].role == "admin"
    assert at.title[0].value == "VRU registry"
    at.sidebar.button(key="sign_out").click().run()
    assert at.title[0].value == "Sign in to the VRU registry"
