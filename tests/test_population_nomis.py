"""Population as Nomis exports it: persons, sexes only, bad rows; every band a measure needs."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from registry import db
from registry.cli import cli
from registry.outcomes import store
from registry.outcomes.common import ImportRefused, Source
from registry.outcomes.detect import detect
from tests.conftest import ADMIN
from tests.outcome_helpers import FIXTURES, table_sizes

NOMIS = FIXTURES / "nomis_mid_year_single_age.csv"
CAMDEN, HACKNEY = "E09000007", "E09000012"


def run(url: str, *args: str):
    return CliRunner().invoke(cli, ["--database-url", url, *args], catch_exceptions=False)


def _raw() -> pd.DataFrame:
    return pd.read_csv(NOMIS, dtype=str, keep_default_na=False)


def _expected(raw: pd.DataFrame, code: str, year: int, ages: range | None) -> int:
    rows = raw[(raw["GEOGRAPHY_CODE"] == code) & (raw["DATE_NAME"] == str(year))]
    if ages is None:
        return int(rows.loc[rows["C_AGE_NAME"] == "All Ages", "OBS_VALUE"].astype(int).sum())
    names = {f"Age {a}" for a in ages}
    return int(rows.loc[rows["C_AGE_NAME"].isin(names), "OBS_VALUE"].astype(int).sum())


def _sizes(db_url: str) -> dict[str, int]:
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        sizes = table_sizes(s)
    engine.dispose()
    return sizes


def _stored(db_url: str) -> dict[tuple[str, int, str], int]:
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        frame = store.export_population(s, principal=ADMIN)
    engine.dispose()
    return {
        (r.borough_code, int(r.year), r.age_band): int(r.people)
        for r in frame.itertuples(index=False)
    }


def _check_bands(db_url: str, raw: pd.DataFrame) -> None:
    people = _stored(db_url)
    for code in (CAMDEN, HACKNEY):
        for year in (2021, 2022):
            assert people[(code, year, "all ages")] == _expected(raw, code, year, None)
            assert people[(code, year, "1-24")] == _expected(raw, code, year, range(1, 25))
            assert people[(code, year, "10-24")] == _expected(raw, code, year, range(10, 25))
    assert {k[2] for k in people} == {"all ages", "1-24", "10-24", "10-17", "18-24"}


def test_nomis_export_is_recognised_and_persons_give_every_band(db_url) -> None:
    found = detect(Source.from_path(NOMIS))
    assert found is not None and (found.kind, found.code) == ("population", "nomis")
    result = run(db_url, "import", "population", str(NOMIS), "--json")  # no --format: detected
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["rows_read"] == 460
    assert report["skipped"] == {"not a London borough": 92}  # the London region's rows
    _check_bands(db_url, _raw())
    again = run(db_url, "import", "population", str(NOMIS), "--format", "nomis", "--json")
    assert json.loads(again.output)["counts_written"] == 0


def test_nomis_sexes_only_are_added(db_url, tmp_path) -> None:
    raw = _raw()
    total = raw["OBS_VALUE"].astype(int)
    male = raw.assign(GENDER_NAME="Male", OBS_VALUE=(total // 2).astype(str))
    female = raw.assign(GENDER_NAME="Female", OBS_VALUE=(total - total // 2).astype(str))
    # "Aged 90+" written "Age 90+" too, as some exports do
    female["C_AGE_NAME"] = female["C_AGE_NAME"].replace({"Aged 90+": "Age 90+"})
    path = tmp_path / "nomis_sexes.csv"
    pd.concat([male, female]).to_csv(path, index=False)
    result = run(db_url, "import", "population", str(path), "--format", "nomis")
    assert result.exit_code == 0, result.output
    _check_bands(db_url, raw)


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("OBS_VALUE", "1,2x", "row 3, column 'OBS_VALUE', value '1,2x': people must be a whole"),
        ("C_AGE_NAME", "Age ninety", "row 3, column 'C_AGE_NAME', value 'Age ninety': an age"),
        ("GENDER_NAME", "Unknown", "row 3, column 'GENDER_NAME', value 'Unknown': the sex must"),
        ("DATE_NAME", "mid-year", "row 3, column 'DATE_NAME', value 'mid-year': a year such"),
    ],
)
def test_nomis_bad_rows_are_refused_with_row_column_reason(
    db_url, tmp_path, column, value, reason
) -> None:
    raw = _raw()
    raw.loc[1, column] = value  # file row 3
    path = tmp_path / "nomis_bad.csv"
    raw.to_csv(path, index=False)
    before = _sizes(db_url)
    result = run(db_url, "import", "population", str(path), "--format", "nomis")
    assert result.exit_code == 1
    assert reason in result.stderr and "Traceback" not in result.stderr
    assert _sizes(db_url) == before


def test_nomis_one_sex_or_a_repeated_row_is_refused(tmp_path) -> None:
    raw = _raw()
    path = tmp_path / "nomis_male.csv"
    raw.assign(GENDER_NAME="Male").to_csv(path, index=False)
    with pytest.raises(ImportRefused, match="Camden 2021 has only male rows"):
        store.parse_population(Source.from_path(path), "nomis")
    path = tmp_path / "nomis_twice.csv"
    pd.concat([raw, raw.iloc[[5]]]).to_csv(path, index=False)
    with pytest.raises(ImportRefused, match="row 462: the same area, year, sex and age as row 7"):
        store.parse_population(Source.from_path(path), "nomis")
    path = tmp_path / "nomis_missing.csv"
    raw.drop(columns="OBS_VALUE").to_csv(path, index=False)
    with pytest.raises(ImportRefused, match=r"missing column\(s\) OBS_VALUE of a Nomis"):
        store.parse_population(Source.from_path(path), "nomis")


def test_nomis_without_young_ages_says_which_bands_it_could_not_derive(tmp_path) -> None:
    raw = _raw()
    young = raw["C_AGE_NAME"].isin([f"Age {a}" for a in range(1, 10)])
    path = tmp_path / "nomis_part.csv"
    raw[~young].to_csv(path, index=False)
    parsed = store.parse_population(Source.from_path(path), "nomis", bands=["1-24"])
    assert parsed.skipped["band 1-24 not derived: ages missing (area-years)"] == 4
    assert (CAMDEN, 2021, "1-24") not in parsed.people
    assert (CAMDEN, 2021, "10-24") in parsed.people


def test_ons_file_gives_the_measures_bands_too(db_url) -> None:
    result = run(db_url, "import", "population", str(FIXTURES / "ONS2020_mid_year_single_age.csv"))
    assert result.exit_code == 0, result.output
    raw = pd.read_csv(
        FIXTURES / "ONS2020_mid_year_single_age.csv",
        encoding="cp1252",
        thousands=",",
        dtype={"Code": str},
    ).set_index("Code")
    people = _stored(db_url)
    assert people[(CAMDEN, 2020, "1-24")] == raw.loc[CAMDEN, [str(a) for a in range(1, 25)]].sum()
    assert people[(CAMDEN, 2020, "all ages")] == raw.loc[CAMDEN, "All ages"]


def test_a_nomis_file_under_the_wrong_format_is_named(db_url) -> None:
    args = ["import", "population", str(NOMIS), "--format", "ons-single-year", "--year", "2021"]
    result = run(db_url, *args)
    assert result.exit_code == 1
    assert "it looks like a Nomis population file (use --format nomis)" in result.stderr
    crime = run(db_url, "import", "crime", str(NOMIS), "--format", "long")
    assert "(import it with `vru import population --format nomis`)" in crime.stderr


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (NOMIS.read_bytes() + b"\x00\n", "NUL byte"),
        ((",".join(f"c{i}" for i in range(5000)) + "\n").encode(), "columns; the limit is 1,000"),
    ],
    ids=["nul", "wide"],
)
def test_nomis_parsing_is_bounded_like_the_other_imports(content, reason) -> None:
    with pytest.raises(ImportRefused, match=reason):
        store.parse_population(Source.from_bytes("nomis.csv", content), "nomis")
