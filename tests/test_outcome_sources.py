"""Sources kept apart and releases ordered by publication (issue #13, items 1, 2 and 7).

The two overwrites the issue reports, as tests: a City of London Police police.uk file whose
LSOAs cross into Met boroughs, imported after the Met's borough file; and an older Met release
imported after a newer one. What users see (series, exports, Home) must be the source of
record's figures from the newest release, whatever the order; the rest is kept as history.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from registry import db
from registry.analysis.series import borough_series, monthly_series
from registry.cli import cli
from registry.errors import PermissionDenied, RegistryError
from registry.figures.explore import explore_options, outcomes_by_month
from registry.figures.home import home_figures
from registry.figures.overview import overview
from registry.outcomes import measures, sources, store
from registry.outcomes.common import Source
from registry.schema import AuditEvent, ImportBatch, OutcomeCount, OutcomeRevision
from tests.conftest import ADMIN, STAFF, _fresh
from tests.outcome_helpers import FIXTURES, mps_borough_expected, police_uk_expected

RELEASES = FIXTURES / "releases"
NEWER = [
    RELEASES / "2025-11" / "MPS Borough Level Crime (Historical).csv",
    RELEASES / "2025-11" / "MPS Borough Level Crime (most recent 24 months).csv",
]
OLDER = RELEASES / "2024-03" / "MPS Borough Level Crime (most recent 24 months).csv"
CITY = RELEASES / "2023-12-city-of-london-street.csv"
ISLINGTON, SOUTHWARK = "E09000019", "E09000028"


def run(url: str, *args: str):
    return CliRunner().invoke(cli, ["--database-url", url, *args], catch_exceptions=False)


def _import(url: str, paths: list[Path], fmt: str, **kwargs) -> list[store.ImportReport]:
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        reports = store.import_crime(
            s, principal=ADMIN, sources=[Source.from_path(p) for p in paths], fmt=fmt, **kwargs
        )
    engine.dispose()
    return reports


def _expected(paths: list[Path]) -> dict[tuple[str, str, dt.date], int]:
    """The files' borough counts computed with pandas; later files' months win."""
    totals: dict[tuple[str, str, dt.date], int] = {}
    for path in paths:
        totals |= mps_borough_expected(path, "BoroughName", "MajorText", "MinorText")[0]
    return totals


def _seen(url: str) -> dict[str, object]:
    """What users see: the export, London, borough and Explore series, Home and Overview."""
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        export = store.export_outcomes(s, principal=ADMIN, include_unallocated=True)
        london = monthly_series(s, principal=ADMIN, measure="possession_of_weapons")
        islington = monthly_series(
            s, principal=ADMIN, measure="possession_of_weapons", borough=ISLINGTON
        )
        home = [(m.code, m.total, m.unallocated) for m in home_figures(s, principal=ADMIN).measures]
        explore = outcomes_by_month(s, principal=ADMIN, measure="possession_of_weapons")
        boroughs = borough_series(
            s,
            principal=ADMIN,
            measure="possession_of_weapons",
            start=dt.date(2022, 1, 1),
            end=dt.date(2025, 11, 1),
        )
        tiles = overview(s, principal=ADMIN, start=dt.date(2024, 12, 1), end=dt.date(2025, 11, 1))
        options = explore_options(s, principal=ADMIN)
    engine.dispose()
    return {
        "export": export.to_dict("records"),
        "london": london.to_dict("records"),
        "islington": islington.to_dict("records"),
        "home": home,
        "explore": explore.to_dict("records"),
        "boroughs": {k: v.to_dict("records") for k, v in boroughs.items()},
        "overview": tiles.outcomes,
        "months": (options.first_month, options.last_month, options.measures),
    }


def _stored(url: str, source: str) -> dict[tuple[int, int, dt.date], int]:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                OutcomeCount.measure_id,
                OutcomeCount.borough_id,
                OutcomeCount.month,
                OutcomeCount.count,
            ).where(OutcomeCount.source == source)
        ).all()
    engine.dispose()
    return {(m, b, t): n for m, b, t, n in rows}


def test_police_uk_over_the_border_never_changes_the_met_counts(db_url) -> None:
    _import(db_url, NEWER, "mps-borough")
    met_before, seen_before = _stored(db_url, "mps-borough"), _seen(db_url)
    assert [t.code for t in seen_before["overview"]] == ["homicide", "possession_of_weapons"]

    (report,) = _import(db_url, [CITY], "police-uk")

    assert report.source == "police-uk" and report.revised == 0
    assert _stored(db_url, "mps-borough") == met_before
    assert _seen(db_url) == seen_before
    islington = [r for r in seen_before["islington"] if r["month"] == dt.date(2023, 12, 1)]
    assert (
        islington[0]["count"]
        == _expected(NEWER)[("possession_of_weapons", ISLINGTON, dt.date(2023, 12, 1))]
    )
    # The police.uk counts are kept, listed and comparable.
    police, _unallocated, _skipped = police_uk_expected([CITY])
    assert len(_stored(db_url, "police-uk")) == len(police)
    listed = json.loads(run(db_url, "outcomes", "sources", "--json").output)
    assert {(r["measure"], r["source"], r["of_record"]) for r in listed} == {
        ("homicide", "mps-borough", True),
        ("possession_of_weapons", "mps-borough", True),
        ("possession_of_weapons", "police-uk", False),
    }
    result = run(
        db_url,
        *("outcomes", "compare", "--measure", "possession_of_weapons"),
        *("--source", "mps-borough", "--source", "police-uk", "--json"),
    )
    assert result.exit_code == 0, result.output
    met = _expected(NEWER)
    december = dt.date(2023, 12, 1)
    assert json.loads(result.output) == [
        {
            "borough": name,
            "month": "2023-12",
            "mps-borough": met[("possession_of_weapons", code, december)],
            "police-uk": police[("possession_of_weapons", code, december)],
            "difference": police[("possession_of_weapons", code, december)]
            - met[("possession_of_weapons", code, december)],
        }
        for name, code in (("Islington", ISLINGTON), ("Southwark", SOUTHWARK))
    ]
    out = Path("police.csv")
    run(db_url, "outcomes", "export", str(out), "--source", "police-uk")
    exported = pd.read_csv(out)
    assert set(exported["borough"]) == {"City of London", "Islington", "Southwark"}


def _revisions(url: str) -> set[tuple[int, int | None, str | None, dt.date, int, int]]:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                OutcomeRevision.measure_id,
                OutcomeRevision.borough_id,
                OutcomeRevision.source_area,
                OutcomeRevision.month,
                OutcomeRevision.old_count,
                OutcomeRevision.new_count,
            )
        ).all()
    engine.dispose()
    return {tuple(r) for r in rows}


@pytest.fixture
def second_url(db_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A second fresh database on ``db_url``'s backend."""
    yield from _fresh(db_url.split(":")[0], request, tmp_path, migrated=True)


def test_older_release_imported_after_a_newer_one_changes_nothing_users_see(
    db_url, second_url
) -> None:
    newer_reports = _import(db_url, NEWER, "mps-borough")
    assert [r.release_date for r in newer_reports] == [dt.date(2025, 11, 1)] * 2
    seen_before = _seen(db_url)

    result = run(db_url, "import", "crime", str(OLDER), "--format", "mps-borough")

    assert result.exit_code == 0, result.output
    older, newer = _expected([OLDER]), _expected(NEWER)
    differ = {k for k in older if k in newer and older[k] != newer[k]}
    assert differ, "the fixtures must hold revised counts"
    borough_kept = len(differ)
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        batch = s.scalars(select(ImportBatch).order_by(ImportBatch.id.desc())).first()
        release, details = batch.release_date, dict(batch.details)
    engine.dispose()
    assert release == dt.date(2024, 3, 1)
    kept = details["kept_newer"]
    assert kept >= borough_kept and details["revised"] == 0
    assert f"kept {kept:,} counts from a newer mps-borough release" in result.output
    assert "release: 2024-03-01 (inferred from the file" in result.output
    assert _seen(db_url) == seen_before
    history = _revisions(db_url)
    assert len(history) == kept
    borough_history = {(r[3], r[4], r[5]) for r in history if r[1] is not None}
    assert borough_history == {(k[2], older[k], newer[k]) for k in differ}

    # The same releases in publication order give the same figures and the same history.
    (first,) = _import(second_url, [OLDER], "mps-borough")
    later = _import(second_url, NEWER, "mps-borough")
    assert first.kept_newer == 0 and sum(r.kept_newer for r in later) == 0
    assert sum(r.revised for r in later) == kept
    assert _seen(second_url) == seen_before
    assert _revisions(second_url) == history


def test_release_date_given_overrides_and_is_checked(db_url) -> None:
    (report,) = _import(
        db_url, [OLDER], "mps-borough", release_date=dt.date(2026, 1, 5), dry_run=True
    )
    assert report.release_date == dt.date(2026, 1, 5) and not report.release_inferred
    with pytest.raises(RegistryError, match="in the future"):
        _import(db_url, [OLDER], "mps-borough", release_date=dt.date.today() + dt.timedelta(days=2))
    # Given as the newer release, the 2024-03 file now wins over the 2025-11 pair.
    _import(db_url, NEWER, "mps-borough")
    (report,) = _import(db_url, [OLDER], "mps-borough", release_date=dt.date(2025, 12, 1))
    assert report.revised > 0 and report.kept_newer == 0


def test_infer_release_follows_formats_md() -> None:
    assert sources.infer_release(
        "mps-borough", "MPS Borough Level Crime (Historical).csv", dt.date(2023, 11, 1)
    ) == dt.date(2025, 11, 1)
    assert sources.infer_release(
        "mps-borough", "MPS_Borough_Level_Crime_Historic.csv", dt.date(2023, 11, 1)
    ) == dt.date(2025, 11, 1)
    assert sources.infer_release(
        "mps-borough", "MPS Borough Level Crime (most recent 24 months).csv", dt.date(2025, 11, 1)
    ) == dt.date(2025, 11, 1)
    assert sources.infer_release("police-uk", "2023-12-city.csv", dt.date(2023, 12, 1)) == (
        dt.date(2023, 12, 1)
    )


def test_long_counts_are_of_record_until_a_preferred_source_holds_some(db_url) -> None:
    _import(db_url, [FIXTURES / "long_crime.csv"], "long")
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        listed = {m["code"]: m for m in measures.list_measures(s, principal=ADMIN)}
    assert listed["homicide"]["source_of_record"] == "long"
    _import(db_url, NEWER, "mps-borough")
    with db.session_scope(engine) as s:
        record = {
            m["code"]: m["source_of_record"] for m in measures.list_measures(s, principal=ADMIN)
        }
        series = monthly_series(s, principal=ADMIN, measure="homicide")
    engine.dispose()
    assert record["homicide"] == "mps-borough"
    newer = _expected(NEWER)
    december = sum(
        n for (m, _g, t), n in newer.items() if m == "homicide" and t == dt.date(2023, 12, 1)
    )
    row = series[series["month"] == dt.date(2023, 12, 1)].iloc[0]
    assert row["boroughs"] == december


def test_source_order_is_admin_only_checked_and_audited(db_url) -> None:
    _import(db_url, NEWER, "mps-borough")
    _import(db_url, [CITY], "police-uk")
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s, pytest.raises(PermissionDenied):
        sources.set_source_order(
            s, principal=STAFF, code="possession_of_weapons", order=["police-uk"]
        )
    for bad, reason in (
        (["police-uk", "mps-borough"], "cannot come before a Met source"),
        (["mps-borough", "mps-borough"], "named twice"),
        (["borough-file"], "Unknown source"),
    ):
        with db.session_scope(engine) as s, pytest.raises(RegistryError, match=reason):
            sources.set_source_order(s, principal=ADMIN, code="possession_of_weapons", order=bad)
    result = run(db_url, "measures", "source", "possession_of_weapons", "police-uk")
    assert result.exit_code == 0 and "of record: police-uk" in result.output
    with db.session_scope(engine) as s:
        event = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        islington = monthly_series(
            s, principal=ADMIN, measure="possession_of_weapons", borough=ISLINGTON
        )
    engine.dispose()
    assert event.entity == "outcome_measure" and event.after["source_order"] == ["police-uk"]
    assert event.before["source_order"][0] == "mps-borough"
    assert islington.to_dict("records") == [
        {"month": dt.date(2023, 12, 1), "boroughs": 1, "unallocated": 0, "count": 1}
    ]
    listed = json.loads(run(db_url, "measures", "list", "--json").output)
    weapons = next(m for m in listed if m["code"] == "possession_of_weapons")
    assert weapons["source_order"] == ["police-uk"] and weapons["source_of_record"] == "police-uk"
    knife = next(m for m in listed if m["code"] == "knife_crime_injury_u25")
    assert knife["source_order"][0] == "mps-dashboard" and knife["source_of_record"] is None


def test_where_to_load_names_the_dashboard_export_for_knife_and_gun_crime(db_url) -> None:
    _import(db_url, NEWER, "mps-borough")
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        hints = {h["measure"]: h for h in sources.where_to_load(s, principal=ADMIN)}
    engine.dispose()
    for code in ("knife_crime_injury_u25", "gun_crime"):
        assert hints[code]["format"] == "mps-dashboard"
        assert "Monthly Crime Dashboard export" in hints[code]["sentence"]
        assert "--format mps-dashboard" in hints[code]["sentence"]
    assert "homicide" not in hints


def test_migration_gives_existing_counts_their_batch_source_and_release(empty_db_url) -> None:
    """0008: a count's source is its batch's format (``demo`` for the seed); a batch's release
    is its last month (a Met Historical file's plus 24). Downgrading keeps the source of record.
    """
    engine = db.make_engine(empty_db_url)
    db.upgrade(engine, "0007_returns_received")
    batches = (
        (1, "seed", "demo-csv", "seed"),
        (2, "crime", "mps-borough", "MPS Borough Level Crime (Historical).csv"),
        (3, "crime", "police-uk", "2023-11-city-of-london-street.csv"),
    )
    with engine.begin() as conn:
        for bid, kind, fmt, name in batches:
            conn.exec_driver_sql(
                "INSERT INTO import_batch (id, kind, format, file_name, rows_read, rows_accepted, "
                f"synthetic, created_by, created_at) VALUES ({bid}, '{kind}', '{fmt}', '{name}', "
                "1, 1, false, 'x', '2024-05-20 10:00:00')"
            )
        # Before 0008 one row per measure, borough and month: police.uk had overwritten
        # Islington's November (batch 3), the seed holds homicide.
        for cid, measure, borough, month, n, bid in (
            (1, 1, 19, "2023-10-01", 15, 2),
            (2, 1, 19, "2023-11-01", 1, 3),
            (3, 2, 19, "2023-11-01", 4, 1),
        ):
            conn.exec_driver_sql(
                "INSERT INTO outcome_count (id, measure_id, borough_id, month, count, "
                f"import_batch_id) VALUES ({cid}, {measure}, {borough}, '{month}', {n}, {bid})"
            )
        conn.exec_driver_sql(
            "INSERT INTO outcome_revision (id, measure_id, borough_id, month, old_count, "
            "new_count, old_batch_id, new_batch_id, revised_at) VALUES (1, 1, 19, '2023-11-01', "
            "17, 1, 2, 3, '2024-05-20 10:00:00')"
        )
    db.upgrade(engine)
    with engine.connect() as conn:
        counts = conn.exec_driver_sql("SELECT id, source FROM outcome_count ORDER BY id").all()
        releases = conn.exec_driver_sql(
            "SELECT id, release_date FROM import_batch ORDER BY id"
        ).all()
        revision = conn.exec_driver_sql("SELECT source FROM outcome_revision").scalar()
    assert [tuple(r) for r in counts] == [(1, "mps-borough"), (2, "police-uk"), (3, "demo")]
    assert [(i, str(d)) for i, d in releases] == [
        (1, "2023-11-01"),
        (2, "2025-11-01"),
        (3, "2023-11-01"),
    ]
    assert revision == "mps-borough"
    # Counts of one measure from two sources now sit side by side.
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO outcome_count (id, measure_id, source, borough_id, month, count, "
            "import_batch_id) VALUES (4, 1, 'mps-borough', 19, '2023-11-01', 17, 2)"
        )
    db.downgrade(engine, "0007_returns_received")
    with engine.connect() as conn:
        kept = conn.exec_driver_sql("SELECT id, count FROM outcome_count ORDER BY id").all()
    assert [tuple(r) for r in kept] == [(1, 15), (3, 4), (4, 17)]
    db.upgrade(engine)
    assert db.is_up_to_date(engine)
    engine.dispose()


def test_home_and_outcome_data_pages_name_the_dashboard_export(db_url, monkeypatch) -> None:
    """With only the Met borough file loaded, knife and gun crime have no counts: Home and the
    Outcome data page say which file supplies them and the format; the preview shows the
    release it infers."""
    from streamlit.testing.v1 import AppTest

    from tests.test_app_home import APP, texts

    _import(db_url, NEWER, "mps-borough")
    monkeypatch.setenv("VRU_DATABASE_URL", db_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["principal"] = ADMIN
    at.run()
    assert not at.exception
    infos = [i.value for i in at.info]
    for label in ("Knife crime with injury, victims under 25", "Gun crime"):
        hint = next(i for i in infos if i.startswith(label))
        assert "Monthly Crime Dashboard export" in hint and "--format mps-dashboard" in hint
    at.switch_page("dashboards/outcome_data.py").run()
    assert not at.exception
    assert sum("Monthly Crime Dashboard export" in i.value for i in at.info) == 2
    listed = next(d.value for d in at.dataframe if "of_record" in d.value.columns)
    assert set(zip(listed["measure"], listed["source"], listed["of_record"], strict=True)) == {
        ("homicide", "mps-borough", True),
        ("possession_of_weapons", "mps-borough", True),
    }
    at.file_uploader(key="od_files").set_value([(OLDER.name, OLDER.read_bytes(), "text/csv")]).run()
    at.button(key="od_preview").click().run()
    assert not at.exception
    shown = texts(at)
    assert "Release: 2024-03-01 (inferred from the file" in shown
    assert "Kept" in shown and "newer mps-borough release" in shown
