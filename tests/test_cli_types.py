"""One parameter type per kind of value: the same usage error (exit 2) for a bad month, role,
period or measure in every command, and nothing reported as done before the commit."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy.exc import OperationalError

from registry import db
from registry.cli import cli
from registry.cli.params import PERIODS, period

BAD_MONTH = "'2024-13' has month 13; months run from 01 to 12."

MONTH_COMMANDS = [
    ["report", "--all", "--format", "csv", "--out", "out", "--from", "2024-13", "--to", "2024-12"],
    ["trend", "--measure", "homicide", "--end", "2024-13", "--baseline-end", "2023-12"],
    ["analyse", "--outcome", "homicide", "--model", "its", "--at", "2024-13"],
    ["months", "sign-off", "2024-13"],
    ["months", "reopen", "2024-13", "--reason", "typo"],
    ["months", "missing", "--from", "2024-13", "--to", "2025-01"],
    ["measures", "add-break", "homicide", "2024-13", "a note"],
]


def invoke(tmp_path, *args: str):
    url = f"sqlite:///{tmp_path / 'never-opened.db'}"
    return CliRunner().invoke(cli, ["--database-url", url, *args], catch_exceptions=False)


@pytest.mark.parametrize("args", MONTH_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_bad_month_is_the_same_usage_error_everywhere(tmp_path, args) -> None:
    result = invoke(tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert BAD_MONTH in result.stderr
    assert not (tmp_path / "never-opened.db").exists()  # refused before touching the database


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["users", "add", "bob", "--role", "boss", "--password", "x"], "'boss' is not one of"),
        (["users", "set-role", "bob", "boss"], "'boss' is not one of"),
        (["report", "--all", "--format", "csv", "--out", "o", "--by", "week"], "'week'"),
        (["analyse", "--outcome", "homicide", "--model", "its", "--by", "year"], "'year'"),
        (["trend", "--measure", " ", "--end", "2024-01", "--baseline-end", "2023-01"], "measure"),
    ],
)
def test_bad_role_period_or_measure_is_a_usage_error(tmp_path, args, says) -> None:
    result = invoke(tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert says in result.stderr


def test_period_choices_come_from_the_one_list() -> None:
    assert period("month", "quarter").choices == ("month", "quarter")
    assert set(PERIODS) == {"month", "quarter", "financial_year"}
    with pytest.raises(ValueError, match="week"):
        period("week")


@pytest.mark.parametrize(
    "args",
    [
        ["funding-streams", "add", "Fund A", "--funder", "Mayor"],
        ["measures", "add", "stabbings", "--label", "Stabbings", "--definition", "Counted"],
    ],
)
def test_nothing_is_reported_as_added_when_the_commit_fails(db_url, monkeypatch, args) -> None:
    def commit_fails(point: str) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(db, "fault_pause", commit_fails)
    result = CliRunner().invoke(cli, ["--database-url", db_url, *args], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "Added" not in result.stdout
    assert result.stderr.startswith("Error:")
