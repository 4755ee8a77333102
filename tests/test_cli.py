"""The `vru` command line: exit codes, one-line errors, the database it is pointed at."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from registry import db
from registry.cli import cli
from registry.schema import AppUser, AuditEvent, Delivery


def run(url: str, *args: str, input: str | None = None):
    return CliRunner().invoke(
        cli, ["--database-url", url, *args], input=input, catch_exceptions=False
    )


def test_db_upgrade_current_downgrade(empty_db_url) -> None:
    result = run(empty_db_url, "db", "current")
    assert result.exit_code == 0 and result.output.startswith("base (behind")
    result = run(empty_db_url, "db", "upgrade")
    assert result.exit_code == 0, result.output
    head = db.head_revision()
    assert f"Database at revision {head}." in result.output
    assert run(empty_db_url, "db", "current").output.strip() == f"{head} (up to date)"
    assert run(empty_db_url, "db", "downgrade", "base").exit_code == 0
    assert run(empty_db_url, "db", "current").output.startswith("base")


@pytest.mark.slow
def test_seed_then_refuse_then_force(db_url) -> None:
    result = run(db_url, "seed")
    assert result.exit_code == 0, result.output
    assert "synthetic demo data" in result.output
    again = run(db_url, "seed")
    assert again.exit_code == 1
    assert again.stderr.strip().startswith("Error: The registry already holds data")
    assert len(again.stderr.strip().splitlines()) == 1
    assert run(db_url, "seed", "--if-empty").exit_code == 0
    assert run(db_url, "seed", "--force").exit_code == 0


def test_commands_refuse_an_unmigrated_database(empty_db_url) -> None:
    result = run(empty_db_url, "seed")
    assert result.exit_code == 1
    assert "run `vru db upgrade` first" in result.stderr
    assert "Traceback" not in result.output


def test_usage_errors_exit_2(db_url) -> None:
    assert run(db_url, "users", "add", "x", "--role", "emperor").exit_code == 2
    assert run(db_url, "no-such-command").exit_code == 2


def test_bad_database_url_is_one_line() -> None:
    result = CliRunner().invoke(cli, ["--database-url", "mysql://x/y", "db", "current"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: VRU_DATABASE_URL must start with")


def test_environment_variable_selects_the_database(db_url, monkeypatch) -> None:
    monkeypatch.setenv("VRU_DATABASE_URL", db_url)
    result = CliRunner().invoke(cli, ["seed"], catch_exceptions=False)
    assert result.exit_code == 0
    engine = db.make_engine(db_url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Delivery)) > 0
    engine.dispose()


def test_users_lifecycle_with_prompted_password(db_url) -> None:
    result = run(
        db_url,
        "users",
        "add",
        "root",
        "--role",
        "admin",
        input="a-long-password\na-long-password\n",
    )
    assert result.exit_code == 0, result.output
    assert "a-long-password" not in result.output.replace("Password", "")
    assert (
        run(
            db_url, "users", "add", "sam", "--role", "staff", "--password", "staff-password-1"
        ).exit_code
        == 0
    )
    assert run(db_url, "users", "set-role", "sam", "commissioner").exit_code == 0
    assert run(db_url, "users", "disable", "sam").exit_code == 0
    assert (
        run(db_url, "users", "reset-password", "sam", "--password", "another-password").exit_code
        == 0
    )
    listing = run(db_url, "users", "list").output
    assert "sam" in listing and "commissioner" in listing and "disabled" in listing
    engine = db.make_engine(db_url)
    with engine.connect() as conn:
        hashes = conn.scalars(select(AppUser.password_hash)).all()
        assert all(h.startswith("$argon2id$") for h in hashes)
        actions = conn.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    engine.dispose()
    assert actions == ["create", "create", "role_change", "disable", "password_reset"]


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["users", "add", "xavier", "--role", "staff", "--password", "short"],
            "at least 10 characters",
        ),
        (
            ["users", "add", "fred", "--role", "funder", "--password", "long-enough-pw"],
            "needs --funder",
        ),
        (["users", "disable", "ghost"], "no user called 'ghost'"),
    ],
)
def test_user_errors_are_one_clear_line(db_url, args, message) -> None:
    result = run(db_url, *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_acting_as_a_user_applies_their_role(db_url) -> None:
    run(db_url, "users", "add", "sam", "--role", "staff", "--password", "staff-password-1")
    result = run(
        db_url,
        "--as",
        "sam",
        "users",
        "add",
        "eve",
        "--role",
        "admin",
        "--password",
        "eve-password-1",
    )
    assert result.exit_code == 1
    assert "sam (staff) may not do this" in result.stderr
    assert run(db_url, "--as", "sam", "seed").exit_code == 1


def test_unknown_revision_and_unopenable_database_are_one_clear_line(db_url, tmp_path) -> None:
    unknown = run(db_url, "db", "upgrade", "nosuch")
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("Error: Migration refused: Can't locate revision")
    missing = CliRunner().invoke(
        cli, ["--database-url", f"sqlite:///{tmp_path}/no/such/folder/x.db", "db", "current"]
    )
    assert missing.exit_code == 1
    assert missing.stderr.startswith("Error: The database cannot be opened")


def test_a_funder_account_must_name_an_existing_funder(db_url) -> None:
    password = ["--password", "funder-password-1"]
    # No funding streams yet: admins may set users up first.
    early = run(
        db_url, "users", "add", "f1", "--role", "funder", "--funder", "Nobody Org", *password
    )
    assert early.exit_code == 0, early.output
    run(db_url, "funding-streams", "add", "Fund A", "--funder", "City Hall")
    run(db_url, "funding-streams", "add", "Fund B", "--funder", "Home Office")
    refused = run(
        db_url, "users", "add", "f2", "--role", "funder", "--funder", "Nobody Org", *password
    )
    assert refused.exit_code == 1
    assert "No funding stream is paid for by 'Nobody Org'" in refused.stderr
    assert "'City Hall', 'Home Office'" in refused.stderr
    assert run(db_url, "users", "set-role", "f1", "funder", "--funder", "Nobody").exit_code == 1
    ok = run(db_url, "users", "add", "f3", "--role", "funder", "--funder", "City Hall", *password)
    assert ok.exit_code == 0, ok.output


def test_serve_listens_on_this_machine_unless_told(db_url, monkeypatch) -> None:
    """`vru serve` listens on 127.0.0.1 by default; --address or VRU_SERVER_ADDRESS widen it."""
    calls: list[list[str]] = []
    monkeypatch.setattr(
        "registry.cli.subprocess.call", lambda command, env: calls.append(command) or 0
    )
    assert run(db_url, "serve").exit_code == 0
    monkeypatch.setenv("VRU_SERVER_ADDRESS", "10.0.0.5")
    assert run(db_url, "serve").exit_code == 0
    assert run(db_url, "serve", "--address", "0.0.0.0", "--port", "8600").exit_code == 0
    addresses = [[a for a in c if a.startswith("--server.address=")] for c in calls]
    assert addresses == [
        ["--server.address=127.0.0.1"],
        ["--server.address=10.0.0.5"],
        ["--server.address=0.0.0.0"],
    ]
    assert "--server.port=8600" in calls[2]
