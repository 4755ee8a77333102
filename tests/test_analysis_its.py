"""ITS reads the outcome series alone: every stored month, whatever delivery is known."""

from __future__ import annotations

import datetime as dt
import json

from click.testing import CliRunner
from sqlalchemy import select

from registry import db
from registry.analysis.run import run_model
from registry.cli import cli
from registry.periods import month_range
from registry.schema import Borough, ImportBatch, MeasureBreak, OutcomeCount, OutcomeMeasure
from tests.analysis_sim import its_series
from tests.conftest import COMMISSIONER

CAMDEN = "E09000007"
BREAK = dt.date(2016, 4, 1)


def _load_series(url: str) -> None:
    """Camden's homicide counts from 2012 to 2022 (no delivery, no population), a break note."""
    series = its_series(21, n_months=132, first=dt.date(2012, 1, 1), base=40, level=-0.3)
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        camden = s.scalar(select(Borough.id).where(Borough.gss_code == CAMDEN))
        measure = s.scalar(select(OutcomeMeasure.id).where(OutcomeMeasure.code == "homicide"))
        batch = ImportBatch(kind="test", created_by="test")
        s.add(batch)
        s.flush()
        s.add_all(
            OutcomeCount(
                measure_id=measure,
                source="long",
                borough_id=camden,
                month=month,
                count=int(count),
                import_batch_id=batch.id,
            )
            for month, count in zip(series["month"], series["count"], strict=True)
        )
        s.add(MeasureBreak(measure_id=measure, month=BREAK, note="new recording rules"))
    engine.dispose()


def test_its_at_2019_09_runs_on_outcomes_from_2012_without_delivery(db_url: str) -> None:
    _load_series(db_url)
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        result = run_model(s, principal=COMMISSIONER, outcome="homicide", model="its")
    engine.dispose()
    assert result.n_obs == len(month_range(dt.date(2012, 1, 1), dt.date(2022, 12, 1)))
    assert result.extra["interruption"] == dt.date(2019, 9, 1)
    assert result.extra["breaks"] == [{"month": BREAK, "note": "new recording rules"}]
    assert result.ci_low <= -0.3 <= result.ci_high
    assert result.n_areas == 1
    runner = CliRunner()
    args = ["--database-url", db_url, "analyse", "--outcome", "homicide", "--model", "its"]
    out = runner.invoke(cli, [*args, "--borough", "Camden", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["area"] == "Camden" and data["verdict"] == "association"
    assert data["verdict_text"].startswith("A change at the interruption: from 2019-09, Camden's")
