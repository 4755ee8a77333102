"""Every read, report and analysis ``vru`` command on a half-filled registry.

The pages' twin (tests/test_app_partial_data.py): programmes before any crime data, outcome files
before any delivery, no population. Each command must either succeed or refuse in a few plain
lines (exit 1), never crash, never print a traceback, never leave a half-written file behind.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete

from registry import auth, db
from registry.cli import cli
from registry.schema import Delivery, OutcomeCount, Population, UnallocatedCount
from tests.analysis_db import load_small

# What each state removes from the small analysis registry (None: load nothing at all).
STATES: dict[str, tuple[type, ...] | None] = {
    "empty": None,
    "programmes only": (Delivery, OutcomeCount, UnallocatedCount, Population),
    "deliveries, no outcomes": (OutcomeCount, UnallocatedCount, Population),
    "outcomes, no deliveries": (Delivery,),
    "no population": (Population,),
}

WINDOW = ["--from", "2022-04", "--to", "2023-03"]
TREND = ["trend", "--measure", "homicide", "--end", "2023-06", "--baseline-end", "2022-06"]
# Each command as a user would type it; OUT is replaced by a path in the test's folder.
COMMANDS: dict[str, list[str]] = {
    "db current": ["db", "current"],
    "users list": ["users", "list"],
    "users list --json": ["users", "list", "--json"],
    "audit": ["audit"],
    "audit --csv": ["audit", "--csv", "OUT.csv"],
    "funding-streams list": ["funding-streams", "list"],
    "funding-streams list --json": ["funding-streams", "list", "--json"],
    "programmes list": ["programmes", "list"],
    "programmes list --json": ["programmes", "list", "--json"],
    "export deliveries csv": ["export", "deliveries", "OUT.csv"],
    "export deliveries xlsx": ["export", "deliveries", "OUT.xlsx"],
    "months missing": ["months", "missing", "--from", "2021-01", "--to", "2023-06"],
    "outcomes export": ["outcomes", "export", "OUT.csv", "--include-unallocated"],
    "outcomes export --measure": ["outcomes", "export", "OUT.csv", "--measure", "homicide"],
    "outcomes batches": ["outcomes", "batches"],
    "outcomes batches --json": ["outcomes", "batches", "--json"],
    "outcomes revisions --json": ["outcomes", "revisions", "--json"],
    "population export": ["population", "export", "OUT.csv"],
    "measures list": ["measures", "list"],
    "measures list --json": ["measures", "list", "--json"],
    "measures mapping list": ["measures", "mapping", "list"],
    "trend": TREND,
    "trend --json": [*TREND, "--json"],
    "trend --borough": [*TREND, "--borough", "Camden"],
    "trend --window 6": [*TREND, "--window", "6"],
    **{
        f"analyse {model}": ["analyse", "--outcome", "homicide", "--model", model]
        for model in ("fe", "poisson", "negbin")
    },
    "analyse fe --json --by quarter": [
        *("analyse", "--outcome", "homicide", "--model", "fe", "--json", "--by", "quarter"),
    ],
    "analyse its": ["analyse", "--outcome", "homicide", "--model", "its", "--at", "2022-01"],
    "analyse event": ["analyse", "--outcome", "homicide", "--model", "event", "--programme", "P1"],
    "report --all csv": ["report", "--all", "--format", "csv", "--out", "OUT.zip"],
    "report --all xlsx window": [
        *("report", "--all", *WINDOW, "--format", "xlsx", "--out", "OUT.xlsx"),
    ],
    "report --programme pdf window": [
        *("report", "--programme", "P1", *WINDOW, "--format", "pdf", "--out", "OUT.pdf"),
    ],
    "report --funding-stream quarter": [
        *("report", "--funding-stream", "S2", *WINDOW, "--by", "quarter"),
        *("--format", "csv", "--out", "OUT"),
    ],
}
# Numbers a reader must never be shown as if they were figures.
NOT_A_NUMBER = re.compile(r"\b(nan|inf|NaN|NaT|None)\b")


# Who runs the command: the local operator (admin rights) or a funder, whose view is scoped.
WHO = {"operator": [], "funder": ["--as", "fran"]}


@pytest.fixture(params=list(STATES))
def state_url(request: pytest.FixtureRequest, db_url: str) -> str:
    removed = STATES[request.param]
    if removed is not None:
        load_small(db_url)
    engine = db.make_engine(db_url)
    with engine.begin() as conn:
        for table in removed or ():
            conn.execute(delete(table))
    with db.session_scope(engine) as session:
        auth.add_user(
            session,
            principal=auth.SYSTEM,
            username="fran",
            role="funder",
            password="funder-password-1",
            funder="F1",
        )
    engine.dispose()
    return db_url


@pytest.mark.slow
@pytest.mark.parametrize("who", list(WHO))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_command_on_a_half_filled_registry(
    state_url: str, tmp_path: Path, command: str, who: str
) -> None:
    out = tmp_path / "out"
    args = [a.replace("OUT", str(out)) for a in COMMANDS[command]]
    result = CliRunner().invoke(cli, ["--database-url", state_url, *WHO[who], *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{command} raised {result.exception!r}"
    )
    assert result.exit_code in (0, 1), (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert "Unexpected error" not in result.output, result.output
    assert not NOT_A_NUMBER.search(result.stdout if "--json" not in args else ""), result.stdout
    if result.exit_code == 1:
        lines = result.stderr.strip().splitlines()
        assert lines and lines[0].startswith("Error: "), result.output
        assert len(lines) <= 3, result.stderr
        # A refusal writes nothing: no file, or no folder, left behind.
        assert not list(tmp_path.glob("out*")), result.output


def run(url: str, *args: str):
    return CliRunner().invoke(cli, ["--database-url", url, *args])


@pytest.mark.parametrize("state_url", ["programmes only", "outcomes, no deliveries"], indirect=True)
def test_months_missing_names_programmes_that_never_reported(state_url: str) -> None:
    result = run(state_url, "months", "missing", "--from", "2021-01", "--to", "2023-06")
    assert result.exit_code == 0, result.output
    assert "0 missing, 0 late." in result.stdout
    assert "Not counted: P1, P2 ran in this period but never reported a delivery" in result.stdout
    # Before either programme started there is nobody to name.
    early = run(state_url, "months", "missing", "--from", "2020-01", "--to", "2020-12")
    assert early.stdout.strip() == "0 missing, 0 late."


@pytest.mark.parametrize("state_url", ["no population"], indirect=True)
def test_months_missing_names_no_programme_when_all_reported(state_url: str) -> None:
    result = run(state_url, "months", "missing", "--from", "2021-01", "--to", "2023-06")
    assert result.exit_code == 0, result.output
    assert "Not counted" not in result.stdout


@pytest.mark.parametrize("state_url", ["empty"], indirect=True)
def test_report_on_an_empty_registry_says_so(state_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out.xlsx"
    result = run(state_url, "report", "--all", *WINDOW, "--format", "xlsx", "--out", str(out))
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: There are no programmes to summarise yet."


@pytest.mark.parametrize("state_url", ["no population"], indirect=True)
def test_report_counts_one_borough_in_the_singular(state_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out.pdf"
    result = run(
        state_url, "report", "--programme", "P1", *WINDOW, "--format", "pdf", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "120 opportunities in 1 borough;" in result.stdout


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["programmes", "list"], "No programmes to list."),
        (["funding-streams", "list"], "No funding streams to list."),
        (["outcomes", "batches"], "No imports of outcome or population data yet."),
        (["outcomes", "revisions"], "No stored count has been revised by a newer release."),
        (["audit", "--actor", "nobody"], "No audit events match."),
    ],
)
@pytest.mark.parametrize("state_url", ["empty"], indirect=True)
def test_an_empty_list_says_so_in_words_and_is_an_empty_json_list(
    state_url: str, args: list[str], line: str
) -> None:
    result = run(state_url, *args)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == line
    if args[0] != "audit":
        as_json = run(state_url, *args, "--json")
        assert as_json.exit_code == 0, as_json.output
        assert as_json.stdout.strip() == "[]"


@pytest.mark.parametrize("state_url", ["empty", "programmes only"], indirect=True)
def test_funder_asking_for_everything_is_told_to_choose_a_stream(
    state_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "out.zip"
    result = run(state_url, "--as", "fran", "report", "--all", "--format", "csv", "--out", str(out))
    assert result.exit_code == 1
    assert "choose one" in result.stderr, result.stderr


@pytest.mark.parametrize("state_url", ["programmes only"], indirect=True)
def test_months_missing_refuses_a_period_that_ends_before_it_starts(state_url: str) -> None:
    result = run(state_url, "months", "missing", "--from", "2023-06", "--to", "2023-01")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: The period ends (2023-01) before it starts (2023-06)."


@pytest.mark.parametrize("state_url", ["no population"], indirect=True)
def test_report_on_a_period_the_scope_did_not_deliver_in_says_so(
    state_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "out.pdf"
    window = ["--from", "2020-04", "--to", "2021-03"]  # P2 starts in June 2021
    result = run(
        state_url, "report", "--programme", "P2", *window, "--format", "pdf", "--out", str(out)
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: Programme: P2 delivered nothing in 2020-04 to 2021-03."
    assert not out.exists()
