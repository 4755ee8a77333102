"""The table of import formats is complete: every entry has the parts outside the table that
`registry.outcomes.formats` lists (a recognisable sample file, CLI choices, README rows, mapping
defaults, a source), so an entry added without them fails here."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from registry.cli import cli
from registry.errors import RegistryError
from registry.outcomes import formats, store
from registry.outcomes.common import ImportRefused, Source
from registry.outcomes.detect import detect
from registry.outcomes.formats import FORMATS, ImportFormat
from registry.outcomes.mapping import default_rows
from registry.outcomes.sources import SOURCES
from tests.outcome_helpers import FIXTURES

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")

# A published file of each format (tests/fixtures/outcomes), recognised from its header alone.
SAMPLES = {
    ("crime", "mps-borough"): ["mps_borough_to2018.csv", "mps_ward_before_categories.csv"],
    ("crime", "mps-dashboard"): ["mps_dashboard.csv", "mps_dashboard_old_headers.xlsx"],
    ("crime", "police-uk"): ["2023-01-surrey-street.csv"],
    ("crime", "long"): ["long_crime.csv"],
    ("population", "ons-single-year"): ["ONS2020_mid_year_single_age.csv"],
    ("population", "nomis"): ["nomis_mid_year_single_age.csv"],
    ("population", "long"): ["long_population.csv"],
}


def _id(fmt: ImportFormat) -> str:
    return f"{fmt.kind}:{fmt.code}"


def _choices(*path: str, param: str) -> tuple[str, ...]:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    choice = next(p for p in command.params if p.name == param).type
    assert isinstance(choice, click.Choice)
    return tuple(choice.choices)


def _readme_label(fmt: ImportFormat) -> str:
    """How the README's table of formats names it: a code both commands take says which."""
    shared = fmt.kind == "population" and fmt.code in formats.CRIME_FORMATS
    return f"`{fmt.code}`" + (" (population)" if shared else "")


def test_each_format_is_one_entry() -> None:
    keys = [(f.kind, f.code) for f in FORMATS]
    assert len(keys) == len(set(keys))
    assert {f.kind for f in FORMATS} == {"crime", "population"}


@pytest.mark.parametrize("fmt", FORMATS, ids=_id)
def test_each_format_is_recognised_from_a_sample_file(fmt: ImportFormat) -> None:
    names = SAMPLES.get((fmt.kind, fmt.code))
    assert names, f"add a sample file of {_id(fmt)} to SAMPLES"
    for name in names:
        assert detect(Source.from_path(FIXTURES / name)) is fmt, name


@pytest.mark.parametrize("fmt", FORMATS, ids=_id)
def test_each_format_is_a_choice_of_its_command(fmt: ImportFormat) -> None:
    assert fmt.code in _choices("import", fmt.kind, param="fmt")
    if fmt.mapping:
        assert fmt.mapping in _choices("measures", "mapping", "set", param="source_format")
        assert fmt.mapping in _choices("measures", "mapping", "list", param="fmt")
    help_text = CliRunner().invoke(cli, ["import", fmt.kind, "--help"]).output
    assert fmt.code in help_text


@pytest.mark.parametrize("fmt", FORMATS, ids=_id)
def test_the_readme_documents_each_format(fmt: ImportFormat) -> None:
    assert f"| {_readme_label(fmt)} | {fmt.docs} |" in README
    usage = re.search(
        rf"^\| `vru import {fmt.kind} [^|]*?--format ((?:[\w-]+\\\|)*[\w-]+)", README, re.M
    )
    assert usage is not None
    assert fmt.code in usage.group(1).split("\\|")


def test_the_readme_documents_no_format_the_table_lacks() -> None:
    table = README.split("| `--format` | file |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split(" | ", 1)[0].removeprefix("| ") for line in table.splitlines()[2:]]
    assert rows == [_readme_label(f) for f in FORMATS]


def test_mapping_families_are_the_default_mappings_formats() -> None:
    assert {r.source_format for r in default_rows()} == set(formats.MAPPED_FORMATS)


@pytest.mark.parametrize("fmt", formats.of_kind("crime"), ids=_id)
def test_each_crime_format_is_a_source(fmt: ImportFormat) -> None:
    assert fmt.code in SOURCES


@pytest.mark.parametrize("fmt", FORMATS, ids=_id)
def test_population_import_without_format_takes_its_files_and_redirects_crime(
    fmt: ImportFormat,
) -> None:
    source = Source.from_path(FIXTURES / SAMPLES[(fmt.kind, fmt.code)][0])
    if fmt.kind == "population":
        assert store.detect_population_format(source) == fmt.code
        return
    with pytest.raises(ImportRefused) as refused:
        store.detect_population_format(source)
    assert (
        "the header is not that of an ONS population, a Nomis population or a long population "
        f"file; it looks like {fmt.called} file (import it with `vru import crime --format "
        f"{fmt.code}`)"
    ) in str(refused.value)


def test_an_unknown_format_is_refused_with_the_choices() -> None:
    with pytest.raises(
        RegistryError, match="Unknown crime format 'csv'; choose one of mps-borough"
    ):
        formats.crime_format("csv")
    with pytest.raises(RegistryError, match="choose one of ons-single-year, nomis, long"):
        formats.population_format("mps-borough")


def test_a_header_of_no_format_asks_for_the_format() -> None:
    source = Source.from_bytes("x.csv", b"a,b\n1,2\n")
    with pytest.raises(ImportRefused, match=r"give --format \(ons-single-year, nomis, long\)"):
        store.detect_population_format(source)


def test_a_folder_rule_takes_only_its_files() -> None:
    rule = formats.crime_format("police-uk").folder
    assert rule is not None
    assert rule.takes("2023-01-METROPOLITAN-street.csv")
    assert not rule.takes("2023-01-metropolitan-outcomes.csv")
    assert all(f.folder is None for f in FORMATS if f.code != "police-uk")
