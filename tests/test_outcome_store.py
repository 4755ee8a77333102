"""Refusals leave the database unchanged; releases revise with history; re-imports change
nothing; the CLI prints exactly the documented JSON; exports round-trip."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from registry import db
from registry.cli import cli
from registry.outcomes import store
from registry.outcomes.common import ImportRefused, Source
from registry.schema import OutcomeRevision, Population
from tests.conftest import ADMIN
from tests.outcome_helpers import FIXTURES, stored, table_sizes

JSON_KEYS = [
    "batch",
    "rows_read",
    "counts_written",
    "unchanged",
    "revised",
    "kept_newer",
    "source",
    "release_date",
    "unallocated",
    "skipped",
    "unmapped",
]


def run(url: str, *args: str):
    return CliRunner().invoke(cli, ["--database-url", url, *args], catch_exceptions=False)


def sizes(url: str) -> dict[str, int]:
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        result = table_sizes(s)
    engine.dispose()
    return result


def test_cli_json_is_exactly_the_documented_object(db_url) -> None:
    result = run(
        db_url,
        "import",
        "crime",
        str(FIXTURES / "mps_borough_recent24_202403.csv"),
        "--format",
        "mps-borough",
        "--release",
        "MPS 2024-03",
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert list(report) == JSON_KEYS
    assert report["rows_read"] == 11
    assert report["revised"] == 0 and report["unchanged"] == 0
    assert report["unallocated"] == {"Unknown": 2}
    assert report["skipped"] == {"category not mapped to a measure": 3}
    assert report["unmapped"] == []


def test_later_release_wins_and_earlier_value_is_kept(db_url) -> None:
    first = json.loads(
        run(
            db_url,
            "import",
            "crime",
            str(FIXTURES / "mps_borough_recent24_202403.csv"),
            "--format",
            "mps-borough",
            "--release",
            "MPS 2024-03",
            "--json",
        ).output
    )
    second = json.loads(
        run(
            db_url,
            "import",
            "crime",
            str(FIXTURES / "mps_borough_recent24_202404.csv"),
            "--format",
            "mps-borough",
            "--release",
            "MPS 2024-04",
            "--json",
        ).output
    )
    assert second["revised"] == 2
    assert second["unchanged"] == first["counts_written"] - 2
    assert second["counts_written"] == 2 + 8  # two revisions, one new month for 8 series
    later = pd.read_csv(FIXTURES / "mps_borough_recent24_202404.csv")
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        counts, unallocated = stored(s)
        revisions = list(s.scalars(select(OutcomeRevision)))
        history = store.list_revisions(s, principal=ADMIN)
    engine.dispose()
    hackney = later[(later["BoroughName"] == "Hackney") & (later["MinorText"] == "HOMICIDE")]
    assert counts[("homicide", "E09000012", dt.date(2024, 1, 1))] == int(hackney["202401"].iloc[0])
    assert len(revisions) == 2
    assert {r.new_count - r.old_count for r in revisions} == {1, 2}
    assert {r.old_batch_id for r in revisions} == {first["batch"]}
    assert {r.new_batch_id for r in revisions} == {second["batch"]}
    assert {h["old_release"] for h in history} == {"MPS 2024-03"}
    assert {h["new_release"] for h in history} == {"MPS 2024-04"}
    assert "London (unallocated: Unknown)" in {h["area"] for h in history}
    assert len(unallocated) == 2 * 4  # homicide and violence with injury, four months


def test_identical_reimport_changes_nothing(db_url) -> None:
    args = [
        "import",
        "crime",
        str(FIXTURES / "mps_borough_to2018.csv"),
        "--format",
        "mps-borough",
        "--json",
    ]
    first = json.loads(run(db_url, *args).output)
    before = sizes(db_url)
    again = json.loads(run(db_url, *args).output)
    assert sizes(db_url) == before
    assert again["batch"] == first["batch"]
    assert again["counts_written"] == 0
    assert again["unchanged"] == first["counts_written"]


def test_dry_run_writes_nothing(db_url) -> None:
    before = sizes(db_url)
    result = run(
        db_url,
        "import",
        "crime",
        str(FIXTURES / "mps_lsoa.csv"),
        "--format",
        "mps-borough",
        "--dry-run",
    )
    assert result.exit_code == 0
    assert "Dry run: nothing was written." in result.output
    assert sizes(db_url) == before


def _refused(db_url, *args: str, expect: str) -> None:
    before = sizes(db_url)
    result = run(db_url, *args)
    assert result.exit_code == 1, result.output
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert expect in message, message
    assert sizes(db_url) == before


def _edit(tmp_path, name: str, old: str, new: str, count: int = 1) -> str:
    text = (FIXTURES / name).read_bytes().decode("utf-8")
    assert old in text
    path = tmp_path / name
    path.write_bytes(text.replace(old, new, count).encode("utf-8"))
    return str(path)


def _set_cell(tmp_path, name: str, row: int, column: int, value: str) -> str:
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    cells = lines[row - 1].split(",")
    cells[column] = value
    lines[row - 1] = ",".join(cells)
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_negative_count_refused_with_row_and_column(db_url, tmp_path) -> None:
    path = _set_cell(tmp_path, "mps_borough_recent24_202403.csv", 2, 3, "-1")
    _refused(
        db_url,
        "import",
        "crime",
        path,
        "--format",
        "mps-borough",
        expect="row 2, column '202312', value '-1': a count must be a whole number",
    )


def test_a_row_wider_than_the_header_is_refused(db_url, tmp_path) -> None:
    path = _edit(tmp_path, "mps_borough_recent24_202403.csv", "Westminster,", "Westminster,1,")
    _refused(
        db_url, "import", "crime", path, "--format", "mps-borough", expect="cells where the header"
    )


def test_non_numeric_count_in_long_file_refused(db_url, tmp_path) -> None:
    path = _edit(tmp_path, "long_crime.csv", "2022-05,3", "2022-05,three")
    _refused(
        db_url,
        "import",
        "crime",
        path,
        "--format",
        "long",
        expect="row 4, column 'count', value 'three'",
    )


def test_unknown_area_refused_with_suggestion(db_url, tmp_path) -> None:
    path = _edit(tmp_path, "mps_borough_to2018.csv", "Westminster,", "Westminmster,")
    _refused(
        db_url,
        "import",
        "crime",
        path,
        "--format",
        "mps-borough",
        expect="did you mean 'Westminster'?",
    )


def test_missing_columns_refused(db_url, tmp_path) -> None:
    path = _edit(tmp_path, "2023-01-surrey-street.csv", "LSOA name,", "LSOA_name,")
    _refused(
        db_url,
        "import",
        "crime",
        path,
        "--format",
        "police-uk",
        expect="missing column(s) LSOA name",
    )


def test_wrong_format_refused_with_a_hint(db_url) -> None:
    _refused(
        db_url,
        "import",
        "crime",
        str(FIXTURES / "2023-01-surrey-street.csv"),
        "--format",
        "mps-borough",
        expect="it looks like a 'police-uk' file (use --format police-uk)",
    )
    _refused(
        db_url,
        "import",
        "crime",
        str(FIXTURES / "mps_dashboard.csv"),
        "--format",
        "long",
        expect="it looks like a 'mps-dashboard' file",
    )
    result = run(db_url, "import", "crime", str(FIXTURES / "long_crime.csv"), "--format", "csv")
    assert result.exit_code == 2


def test_wrong_format_hint_never_names_what_is_already_in_use(db_url) -> None:
    long_population = str(FIXTURES / "long_population.csv")
    result = run(
        db_url,
        "import",
        "population",
        long_population,
        "--format",
        "ons-single-year",
        "--year",
        "2020",
    )
    assert result.exit_code == 1
    assert "it looks like a long population file (use --format long)" in result.stderr
    assert "vru import population" not in result.stderr
    result = run(db_url, "import", "crime", long_population, "--format", "long")
    assert result.exit_code == 1
    assert "(import it with `vru import population --format long`)" in result.stderr
    long_crime = str(FIXTURES / "long_crime.csv")
    result = run(db_url, "import", "population", long_crime, "--format", "long")
    assert result.exit_code == 1
    assert "(import it with `vru import crime --format long`)" in result.stderr


def test_one_bad_file_among_many_writes_nothing(db_url, tmp_path) -> None:
    bad = _edit(tmp_path, "mps_lsoa.csv", "E09000033", "E09000099")
    _refused(
        db_url,
        "import",
        "crime",
        str(FIXTURES / "mps_borough_to2018.csv"),
        bad,
        "--format",
        "mps-borough",
        expect="E09000099",
    )


def test_police_uk_bad_month_refused(db_url, tmp_path) -> None:
    path = _edit(tmp_path, "2023-01-surrey-street.csv", ",2023-01,", ",2023-13,")
    _refused(db_url, "import", "crime", path, "--format", "police-uk", expect="'2023-13'")


def test_only_admins_may_import(db_url) -> None:
    from tests.conftest import COMMISSIONER

    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s, pytest.raises(Exception, match="may not"):
        store.import_crime(
            s,
            principal=COMMISSIONER,
            sources=[Source.from_path(FIXTURES / "long_crime.csv")],
            fmt="long",
        )
    engine.dispose()


# --- population --------------------------------------------------------------------------------


def test_ons_population_sums_single_years(db_url) -> None:
    result = run(
        db_url,
        "import",
        "population",
        str(FIXTURES / "ONS2020_mid_year_single_age.csv"),
        "--format",
        "ons-single-year",
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["skipped"] == {"not a London borough": 3}
    raw = pd.read_csv(
        FIXTURES / "ONS2020_mid_year_single_age.csv",
        encoding="cp1252",
        thousands=",",
        dtype={"Code": str},
    )
    raw = raw[raw["Code"].fillna("").str.startswith("E09")].set_index("Code")
    expected = raw[[str(a) for a in range(10, 25)]].sum(axis=1)
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        frame = store.export_population(s, principal=ADMIN)
    engine.dispose()
    band = frame[frame["age_band"] == "10-24"].set_index("borough_code")["people"]
    assert band.to_dict() == expected.astype(int).to_dict()
    assert set(frame["year"]) == {2020}
    assert "Camden" in set(frame["borough"])


def test_ons_population_needs_a_year_unless_the_name_has_one(db_url, tmp_path) -> None:
    path = tmp_path / "mid_year_single_age.csv"
    shutil.copy(FIXTURES / "ONS2020_mid_year_single_age.csv", path)
    _refused(
        db_url,
        "import",
        "population",
        str(path),
        "--format",
        "ons-single-year",
        expect="give --year YYYY",
    )
    result = run(
        db_url, "import", "population", str(path), "--format", "ons-single-year", "--year", "2021"
    )
    assert result.exit_code == 0, result.output
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        years = set(s.scalars(select(Population.year).distinct()))
    engine.dispose()
    assert years == {2021}


def test_population_export_round_trips_through_long_import(db_url, tmp_path) -> None:
    assert (
        run(
            db_url,
            "import",
            "population",
            str(FIXTURES / "long_population.csv"),
            "--format",
            "long",
        ).exit_code
        == 0
    )
    out = tmp_path / "population.csv"
    assert run(db_url, "population", "export", str(out)).exit_code == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["borough_code", "borough", "year", "age_band", "people"]
    assert frame["people"].sum() == pd.read_csv(FIXTURES / "long_population.csv")["people"].sum()
    again = run(db_url, "import", "population", str(out), "--format", "long", "--json")
    report = json.loads(again.output)
    assert report["counts_written"] == 0 and report["unchanged"] == 3


def test_outcomes_export_with_and_without_unallocated(db_url, tmp_path) -> None:
    run(db_url, "import", "crime", str(FIXTURES / "long_crime.csv"), "--format", "long")
    out = tmp_path / "out.csv"
    assert run(db_url, "outcomes", "export", str(out)).exit_code == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["measure", "borough", "month", "count"]
    assert len(frame) == 4
    run(
        db_url,
        "outcomes",
        "export",
        str(out),
        "--measure",
        "knife_crime_injury_u25",
        "--include-unallocated",
    )
    frame = pd.read_csv(out)
    assert frame.to_dict("records") == [
        {
            "measure": "knife_crime_injury_u25",
            "borough": "London (unallocated: Unknown)",
            "month": "2022-05",
            "count": 1,
        }
    ]
    bad = run(db_url, "outcomes", "export", str(out), "--measure", "nope")
    assert bad.exit_code == 1


def test_import_errors_are_import_refused() -> None:
    with pytest.raises(ImportRefused) as info:
        store.parse_population(Source.from_bytes("x.csv", b"a,b\n1,2\n"), "long")
    assert "missing column(s) borough, year, age_band, people" in str(info.value)


def test_dry_run_json_has_no_batch_and_long_release_is_refused(db_url) -> None:
    path = str(FIXTURES / "long_crime.csv")
    dry = json.loads(
        run(db_url, "import", "crime", path, "--format", "long", "--dry-run", "--json").output
    )
    assert dry["batch"] is None and dry["counts_written"] == 5
    _refused(
        db_url,
        "import",
        "crime",
        path,
        "--format",
        "long",
        "--release",
        "x" * 101,
        expect="at most 100 characters",
    )
