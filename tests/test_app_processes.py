"""Correct across processes: a change saved by another process shows on this one's next rerun.

Several `vru serve` processes share one database (README, "Deploying"); each keeps its own page
caches. They are keyed on the database's data version, read afresh on every run, so nothing a
process cached can hide a change another process saved.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from registry import db
from registry.periods import parse_month
from registry.schema import Borough, Delivery, Programme
from tests.conftest import COMMISSIONER

pytestmark = pytest.mark.slow  # starts app servers: seconds a test

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
VRU = str(Path(sys.executable).parent / "vru")


def opportunities_shown(at: AppTest) -> int:
    metric = next(m for m in at.metric if m.label == "Opportunities delivered")
    return int(str(metric.value).replace(",", ""))


def test_a_save_by_another_process_shows_on_the_next_rerun(seeded_url, monkeypatch, tmp_path):
    monkeypatch.setenv("VRU_DATABASE_URL", seeded_url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["principal"] = COMMISSIONER
    at.run()
    at.switch_page("dashboards/overview.py").run()
    last = at.selectbox(key="ov_end").value
    at.selectbox(key="ov_start").set_value(last).run()
    before = opportunities_shown(at)

    engine = db.make_engine(seeded_url)
    with db.session_scope(engine) as s:
        row = s.execute(
            select(Programme.name, Borough.name, Delivery.opportunities)
            .join(Programme, Delivery.programme_id == Programme.id)
            .join(Borough, Delivery.borough_id == Borough.id)
            .where(Delivery.deleted_at.is_(None), Delivery.month == parse_month(last))
            .limit(1)
        ).one()
    engine.dispose()
    upload = tmp_path / "more.csv"
    upload.write_text(
        f"programme,borough,month,opportunities\n{row[0]},{row[1]},{last},{row[2] + 1000}\n",
        encoding="utf-8",
    )
    # Another process (as another `vru serve` would be) saves; this one is not told.
    done = subprocess.run(
        [VRU, "import", "deliveries", str(upload)],
        env=dict(os.environ, VRU_DATABASE_URL=seeded_url),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr

    at.run()
    assert opportunities_shown(at) == before + 1000
