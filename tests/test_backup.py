"""`vru db backup` and `vru db restore`: every table comes back exactly, on each backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, MetaData, select

from registry import db
from registry.cli import cli
from tests.conftest import WORKER, create_pg_database, drop_pg_database


@pytest.fixture
def empty_twin(seeded_url: str, tmp_path: Path) -> Iterator[str]:
    """A database with no tables on the same backend as ``seeded_url``."""
    if seeded_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    name = f"vru_test_{WORKER}_{uuid.uuid4().hex[:10]}"
    yield create_pg_database(name)
    drop_pg_database(name)


def run(url: str, *args: str):
    return CliRunner().invoke(cli, ["--database-url", url, *args], catch_exceptions=False)


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every row of every table, in primary-key order."""
    engine: Engine = db.make_engine(url)
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as conn:
        tables = {
            name: conn.execute(
                select(table).order_by(*(table.primary_key.columns or table.columns))
            ).all()
            for name, table in metadata.tables.items()
        }
    engine.dispose()
    return tables


def test_round_trip_restores_every_table(seeded_url, empty_twin, tmp_path: Path) -> None:
    backup_file = tmp_path / "registry.backup"
    result = run(seeded_url, "db", "backup", str(backup_file))
    assert result.exit_code == 0, result.output
    before = snapshot(seeded_url)
    assert before["audit_event"][-1].action == "backup"  # audited, and the backup holds it

    result = run(empty_twin, "db", "restore", str(backup_file))
    assert result.exit_code == 0, result.output
    assert f"schema revision {db.head_revision()}" in result.output
    after = snapshot(empty_twin)

    assert set(after) == set(before) and len(before) > 10
    for name, rows in before.items():
        if name != "audit_event":
            assert after[name] == rows, name
    # The restore is recorded after what was restored, continuing the id sequence and the chain.
    *restored, event = after["audit_event"]
    assert restored == before["audit_event"]
    assert (event.action, event.id) == ("restore", before["audit_event"][-1].id + 1)
    assert run(empty_twin, "audit", "verify").exit_code == 0
    assert sum(len(rows) for rows in before.values()) > 1000


def test_restore_refuses_a_database_with_tables_unless_forced(
    seeded_url, empty_twin, tmp_path
) -> None:
    backup_file = tmp_path / "registry.backup"
    assert run(seeded_url, "db", "backup", str(backup_file)).exit_code == 0
    expected = snapshot(seeded_url)["delivery"]
    target = empty_twin
    assert run(target, "db", "upgrade").exit_code == 0  # tables, no data

    refused = CliRunner().invoke(cli, ["--database-url", target, "db", "restore", str(backup_file)])
    assert refused.exit_code == 1
    assert refused.stderr.startswith("Error: The database already holds")
    assert "--force" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert snapshot(target)["delivery"] == []

    forced = run(target, "db", "restore", str(backup_file), "--force")
    assert forced.exit_code == 0, forced.output
    assert snapshot(target)["delivery"] == expected
    assert snapshot(target)["audit_event"][-1].detail.endswith("(--force)")


def test_refusals_are_one_plain_line(db_url, tmp_path: Path) -> None:
    existing = tmp_path / "taken.backup"
    existing.write_bytes(b"already here")
    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("hello")
    wrong_kind = tmp_path / "other.backup"
    wrong_kind.write_bytes(
        b"PGDMP..." if db_url.startswith("sqlite") else b"SQLite format 3\x00" + b"\x00" * 100
    )
    cases = [
        (("backup", str(existing)), "already exists; choose a new file name"),
        (("restore", str(tmp_path / "missing.backup")), "There is no backup file"),
        (("restore", str(not_a_backup), "--force"), "is not a registry backup"),
        (("restore", str(wrong_kind), "--force"), "cannot be restored into this"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(cli, ["--database-url", db_url, "db", *args])
        assert result.exit_code == 1, args
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert existing.read_bytes() == b"already here"


def test_backup_is_for_the_local_operator_only(db_url, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--database-url", db_url, "--as", "alice", "db", "backup", str(tmp_path / "b")]
    )
    assert result.exit_code == 1 and "operator of this machine" in result.stderr
    assert not (tmp_path / "b").exists()
