"""Each published layout, imported as it comes: stored totals equal totals computed with pandas
directly from the fixture, and every source row is accounted for."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from registry.outcomes import store
from registry.outcomes.common import Source
from tests.conftest import ADMIN
from tests.outcome_helpers import (
    FIXTURES,
    dashboard_expected,
    mps_borough_expected,
    police_uk_expected,
    stored,
)


def _import(session, fmt: str, *names: str, **kwargs) -> list[store.ImportReport]:
    sources = [Source.from_path(FIXTURES / n) for n in names]
    reports = store.import_crime(session, principal=ADMIN, sources=sources, fmt=fmt, **kwargs)
    session.commit()
    return reports


def _accounted(report: store.ImportReport, borough_rows: int) -> None:
    assert report.rows_read == borough_rows + sum(report.unallocated.values()) + sum(
        report.skipped.values()
    )


@pytest.mark.parametrize(
    ("name", "area_col", "major", "minor", "layout"),
    [
        ("mps_borough_to2018.csv", "Borough", "Major Category", "Minor Category", "to 2018"),
        (
            "mps_borough_2019_historical.csv",
            "LookUp_BoroughName",
            "MajorText",
            "MinorText",
            "2019 to early 2024",
        ),
        ("mps_borough_recent24_202403.csv", "BoroughName", "MajorText", "MinorText", "2024 on"),
        (
            "mps_ward_before_categories.csv",
            "LookUp_BoroughName",
            "MajorText",
            "MinorText",
            "ward-level",
        ),
        (
            "mps_ward_after_categories.csv",
            "LookUp_BoroughName",
            "MajorText",
            "MinorText",
            "ward-level",
        ),
        ("mps_lsoa.csv", "Borough", "MajorText", "MinorText", "LSOA-level"),
    ],
)
def test_mps_borough_layouts_match_pandas_totals(session, name, area_col, major, minor, layout):
    (report,) = _import(session, "mps-borough", name)
    expected, expected_unallocated = mps_borough_expected(FIXTURES / name, area_col, major, minor)
    counts, unallocated = stored(session)
    assert counts == expected
    assert unallocated == expected_unallocated
    assert report.layout == layout
    assert report.counts_written == len(expected) + len(expected_unallocated)
    assert report.batch is not None


def test_pseudo_areas_become_london_unallocated_and_are_reported(session) -> None:
    (old,) = _import(session, "mps-borough", "mps_borough_to2018.csv")
    assert old.unallocated == {"Aviation Security (SO18)": 1}
    (new,) = _import(session, "mps-borough", "mps_borough_recent24_202403.csv")
    assert new.unallocated == {"Unknown": 2}
    assert new.skipped == {"category not mapped to a measure": 3}
    _accounted(new, borough_rows=11 - 2 - 3)
    _counts, unallocated = stored(session)
    assert {area for (_m, area, _t) in unallocated} == {"Unknown", "Aviation Security (SO18)"}


def test_unmapped_categories_are_listed_and_skipped(session) -> None:
    (report,) = _import(session, "mps-borough", "mps_borough_to2018.csv")
    assert report.unmapped == ["Fraud & Forgery / Counted per Victim"]
    # Known categories that feed no measure (Burglary, Common Assault...) are not "unmapped".
    assert report.skipped == {"category not mapped to a measure": 5}


@pytest.mark.parametrize("name", ["mps_dashboard.csv", "mps_dashboard_old_headers.xlsx"])
def test_dashboard_csv_and_xlsx_match_pandas_totals(session, name) -> None:
    (report,) = _import(session, "mps-dashboard", name)
    path = FIXTURES / name
    frame = pd.read_excel(path) if name.endswith(".xlsx") else pd.read_csv(path)
    expected, expected_unallocated = dashboard_expected(frame)
    counts, unallocated = stored(session)
    assert counts == expected
    assert unallocated == expected_unallocated
    assert report.skipped["Safer Neighbourhood Teams rows"] == 28
    assert report.skipped["Positive Outcomes rows"] == 42
    assert report.unmapped == ["Firearm Discharge (New Subgroup)"]
    _accounted(report, borough_rows=len(expected))


def test_police_uk_files_and_folder_aggregate_to_borough_month(session, tmp_path) -> None:
    folder = tmp_path / "police"
    folder.mkdir()
    names = sorted(p.name for p in FIXTURES.glob("2023-0*-street.csv"))
    for n in names:
        shutil.copy(FIXTURES / n, folder / n)
    sources = [Source.from_path(folder / n) for n in names]
    (report,) = store.import_crime(
        session, principal=ADMIN, sources=sources, fmt="police-uk", release="2023-02"
    )
    session.commit()
    expected, expected_unallocated, skipped = police_uk_expected([FIXTURES / n for n in names])
    counts, unallocated = stored(session)
    assert counts == expected
    assert unallocated == expected_unallocated
    assert report.skipped == {k: v for k, v in skipped.items() if v}
    assert report.unallocated == {"No Location": sum(expected_unallocated.values())}
    # Every row in exactly one place.
    _accounted(report, borough_rows=sum(expected.values()))
    assert report.rows_read == sum(len(pd.read_csv(FIXTURES / n)) for n in names)
    # A London borough's LSOA in another force's file still counts (Kingston in Surrey's file).
    assert any(g == "E09000021" for (_m, g, _t) in counts)


def test_police_uk_small_chunks_give_the_same_totals(session) -> None:
    from registry.outcomes import police_uk
    from registry.outcomes.mapping import mapper_for

    names = sorted(p.name for p in FIXTURES.glob("2023-0*-street.csv"))
    sources = [Source.from_path(FIXTURES / n) for n in names]
    whole = police_uk.parse(sources, mapper_for(session, "police-uk"))
    chunked = police_uk.parse(sources, mapper_for(session, "police-uk"), chunk_rows=7)
    assert chunked.counts == whole.counts
    assert chunked.unallocated == whole.unallocated
    assert chunked.skipped == whole.skipped


def test_long_file_imports_boroughs_and_unallocated(session) -> None:
    (report,) = _import(session, "long", "long_crime.csv")
    counts, unallocated = stored(session)
    frame = pd.read_csv(FIXTURES / "long_crime.csv")
    assert sum(counts.values()) + sum(unallocated.values()) == frame["count"].sum()
    assert report.unallocated == {"Unknown": 1}
    assert len(counts) == 4


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("Aviation Security(SO18)", "Aviation Security (SO18)"),
        ("AVIATION SECURITY (SO18)", "Aviation Security (SO18)"),
        ("London Heathrow and London City Airports", "London Heathrow and London City Airports"),
        ("Unknown", "Unknown"),
        ("Other / NK", "Other / NK"),
        ("N/K (Legacy Only)", "N/K (Legacy Only)"),
        ("Non Met Police Force", "Non Met Police Force"),
        ("Camden", None),
    ],
)
def test_every_met_pseudo_area_is_recognised(written, canonical) -> None:
    from registry.boroughs import pseudo_area_name

    assert pseudo_area_name(written) == canonical


def test_cli_takes_a_folder_of_police_uk_files(db_url, tmp_path) -> None:
    import json

    from click.testing import CliRunner

    from registry.cli import cli

    for path in FIXTURES.glob("2023-01-*-street.csv"):
        shutil.copy(path, tmp_path / path.name)
    # A data.police.uk download also holds outcomes files: the folder import leaves them out.
    outcomes = tmp_path / "2023-01-surrey-outcomes.csv"
    shutil.copy(FIXTURES / "2023-01-surrey-street.csv", outcomes)
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    result = CliRunner().invoke(
        cli,
        [
            "--database-url",
            db_url,
            "import",
            "crime",
            str(tmp_path),
            "--format",
            "police-uk",
            "--json",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["rows_read"] == sum(
        len(pd.read_csv(p)) for p in FIXTURES.glob("2023-01-*-street.csv")
    )
    assert report["skipped"]["files in the folder that are not *-street.csv (ignored)"] == 2
    text = CliRunner().invoke(
        cli,
        ["--database-url", db_url, "import", "crime", str(tmp_path), "--format", "police-uk"],
        catch_exceptions=False,
    )
    assert "2023-01-surrey-outcomes.csv, notes.csv" in text.output


def test_a_workbook_or_binary_file_given_to_a_csv_format_says_so(db_url, tmp_path) -> None:
    from click.testing import CliRunner

    from registry.cli import cli

    workbook = tmp_path / "t.xlsx"
    pd.DataFrame({"Borough": ["Camden"], "Count": [1]}).to_excel(workbook, index=False)
    binary = tmp_path / "t.csv"
    binary.write_bytes(b"\x00\x01\x02\xff" * 100)

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--database-url", db_url, *args])
        assert result.exit_code == 1
        return result.stderr

    for fmt in ("mps-borough", "police-uk", "long"):
        message = run("import", "crime", str(workbook), "--format", fmt)
        assert f"This is an Excel workbook; --format {fmt} takes the CSV file" in message
        assert "cells where the header" not in message
        assert "not a text file" in run("import", "crime", str(binary), "--format", fmt)
    message = run("import", "population", str(workbook), "--format", "ons-single-year")
    assert "This is an Excel workbook; --format ons-single-year takes the CSV file" in message
