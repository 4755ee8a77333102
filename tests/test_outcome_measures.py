"""Measures and the category mapping are data: listed, added to and overridden by admins."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from registry.cli import cli
from registry.errors import ConflictError, NotFoundError, PermissionDenied, RegistryError
from registry.outcomes import mapping, measures, store
from registry.outcomes.common import Source
from tests.conftest import ADMIN, COMMISSIONER, STAFF
from tests.outcome_helpers import FIXTURES, stored

LONG_NAME = "Absconding from Lawful Custody and Other Offences Against Justice"


def run(url: str, *args: str):
    return CliRunner().invoke(cli, ["--database-url", url, *args], catch_exceptions=False)


def test_default_measures_with_the_feb_2024_break(session) -> None:
    rows = measures.list_measures(session, principal=COMMISSIONER)
    codes = [m["code"] for m in rows]
    assert codes[:3] == ["homicide", "knife_crime_injury_u25", "gun_crime"]
    assert {"robbery_personal", "violence_with_injury", "possession_of_weapons"} <= set(codes)
    robbery = next(m for m in rows if m["code"] == "robbery_personal")
    assert robbery["breaks"][0]["month"] == "2024-02"


def test_add_measure_and_break(session) -> None:
    measures.add_measure(
        session,
        principal=ADMIN,
        code="lethal_barrel_discharge",
        label="Lethal barrel discharges",
        definition="Discharges of a lethal-barrelled firearm (Met crime dashboard).",
        unit="offences",
    )
    measures.add_break(
        session,
        principal=ADMIN,
        code="lethal_barrel_discharge",
        month=dt.date(2020, 4, 9),
        note="Counting rule changed.",
    )
    rows = {m["code"]: m for m in measures.list_measures(session, principal=ADMIN)}
    assert rows["lethal_barrel_discharge"]["breaks"] == [
        {"month": "2020-04", "note": "Counting rule changed."}
    ]
    with pytest.raises(ConflictError):
        measures.add_measure(
            session, principal=ADMIN, code="lethal_barrel_discharge", label="x", definition="y"
        )
    with pytest.raises(RegistryError, match="not a valid measure code"):
        measures.add_measure(session, principal=ADMIN, code="Bad Code", label="x", definition="y")
    with pytest.raises(PermissionDenied):
        measures.add_measure(session, principal=STAFF, code="abc", label="x", definition="y")


def test_mapping_lists_defaults_and_overrides_replace_them(session) -> None:
    rows = mapping.list_mapping(session, principal=COMMISSIONER, source_format="mps-dashboard")
    by_category = {r["source_category"]: r for r in rows}
    assert by_category["Knife Injury Victims (non DA 1-24)"]["measure"] == "knife_crime_injury_u25"
    assert by_category["Lethal Barrel Discharge"]["measure"] == ""
    mapping.set_mapping(
        session,
        principal=ADMIN,
        source_format="mps-dashboard",
        source_category="lethal barrel discharge",
        measure="gun_crime",
    )
    rows = mapping.list_mapping(session, principal=ADMIN, source_format="mps-dashboard")
    lbd = [r for r in rows if r["source_category"].casefold() == "lethal barrel discharge"]
    assert len(lbd) == 1 and lbd[0]["measure"] == "gun_crime" and lbd[0]["origin"] == "override"
    with pytest.raises(NotFoundError):
        mapping.set_mapping(
            session,
            principal=ADMIN,
            source_format="police-uk",
            source_category="Drugs",
            measure="nope",
        )
    with pytest.raises(RegistryError, match="no category mapping"):
        mapping.set_mapping(
            session, principal=ADMIN, source_format="long", source_category="x", measure=None
        )


def test_override_feeds_a_new_measure_and_matches_names_cut_at_50(session) -> None:
    measures.add_measure(
        session,
        principal=ADMIN,
        code="justice_offences",
        label="Offences against justice",
        definition="Absconding and other offences against justice.",
    )
    mapping.set_mapping(
        session,
        principal=ADMIN,
        source_format="mps-borough",
        source_category=f"Miscellaneous Crimes Against Society / {LONG_NAME}",
        measure="justice_offences",
    )
    (report,) = store.import_crime(
        session,
        principal=ADMIN,
        sources=[Source.from_path(FIXTURES / "mps_borough_2019_historical.csv")],
        fmt="mps-borough",
    )
    session.commit()
    counts, _ = stored(session)
    justice = {k: v for k, v in counts.items() if k[0] == "justice_offences"}
    assert len(justice) == 4  # Lambeth, four months
    assert {k[1] for k in justice} == {"E09000022"}
    assert report.unmapped == []


def test_measures_and_mapping_cli(db_url) -> None:
    result = run(
        db_url,
        "measures",
        "add",
        "lbd",
        "--label",
        "Lethal barrel discharges",
        "--definition",
        "Lethal barrel discharges (Met crime dashboard).",
    )
    assert result.exit_code == 0, result.output
    assert run(db_url, "measures", "add-break", "lbd", "2024-02", "New system.").exit_code == 0
    listed = run(db_url, "measures", "list")
    assert "lbd" in listed.output and "2024-02: New system." in listed.output
    assert listed.output.splitlines()[0].split() == [
        *("Code", "Measure", "Unit", "Rates", "per", "Source", "of", "record", "Source", "order"),
        *("Series", "breaks"),
    ]
    result = run(
        db_url, "measures", "mapping", "set", "mps-dashboard", "Lethal Barrel Discharge", "lbd"
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(
        run(db_url, "measures", "mapping", "list", "--format", "mps-dashboard", "--json").output
    )
    lbd = next(r for r in rows if r["source_category"] == "Lethal Barrel Discharge")
    assert lbd["measure"] == "lbd" and lbd["origin"] == "override"
    assert lbd["note"].startswith("set by cli:")
    result = run(
        db_url,
        "import",
        "crime",
        str(FIXTURES / "mps_dashboard.csv"),
        "--format",
        "mps-dashboard",
        "--json",
    )
    assert json.loads(result.output)["counts_written"] == 12 + 6
    assert run(db_url, "measures", "mapping", "set", "police-uk", "Drugs", "none").exit_code == 0
    assert run(db_url, "measures", "mapping", "set", "police-uk", "Drugs", "nope").exit_code == 1
    assert run(db_url, "measures", "add-break", "lbd", "2024-13", "x").exit_code == 2


def test_each_measure_declares_its_population_band(db_url) -> None:
    rows = {m["code"]: m for m in json.loads(run(db_url, "measures", "list", "--json").output)}
    everyone = ["homicide", "robbery_personal", "violence_with_injury", "possession_of_weapons"]
    assert {rows[c]["population_band"] for c in [*everyone, "gun_crime"]} == {"all ages"}
    assert rows["knife_crime_injury_u25"]["population_band"] == "1-24"


def test_admin_added_measures_default_to_all_ages_and_can_set_a_band(session) -> None:
    measures.add_measure(session, principal=ADMIN, code="teen_robbery", label="x", definition="y")
    assert measures.get_measure(session, "teen_robbery").population_band == "all ages"
    measures.set_population_band(session, principal=ADMIN, code="teen_robbery", band=" 10 - 17 ")
    assert measures.get_measure(session, "teen_robbery").population_band == "10-17"
    with pytest.raises(RegistryError, match="'17-10' is not a population band"):
        measures.set_population_band(session, principal=ADMIN, code="teen_robbery", band="17-10")
    with pytest.raises(RegistryError, match="not a population band"):
        measures.add_measure(
            session, principal=ADMIN, code="x_y", label="x", definition="y", population_band="old"
        )
    with pytest.raises(PermissionDenied):
        measures.set_population_band(session, principal=STAFF, code="homicide", band="1-24")
