"""The README stays true: the quick start works and every command is documented."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from sqlalchemy import func, select

from registry import db
from registry.cli import cli
from registry.demo import DEMO_USERS
from registry.schema import AppUser, Delivery

# Slow lane: runs the quick start on a fresh database; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
VRU = str(Path(sys.executable).parent / "vru")


def _commands(group: click.Group, prefix: str = "vru") -> list[str]:
    names = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            names += _commands(command, f"{prefix} {name}")
        else:
            names.append(f"{prefix} {name}")
    return names


def test_quick_start_shows_the_two_commands_first() -> None:
    quick = README.split("## Quick start", 1)[1]
    commands = re.findall(r"^make (\w+)", quick, flags=re.MULTILINE)
    assert commands[:2] == ["run", "test"]


def test_every_cli_command_is_in_the_readme() -> None:
    missing = [c for c in _commands(cli) if f"`{c}" not in README]
    assert missing == []


def test_demo_accounts_in_the_readme_are_the_real_ones() -> None:
    for username, role, _funder, password in DEMO_USERS:
        assert f"| `{username}` | `{password}` | {role}" in README


def test_quick_start_commands_work_on_a_fresh_database(empty_db_url) -> None:
    """What `make run` does before serving: the installed `vru` script, a fresh database."""
    env = dict(os.environ, VRU_DATABASE_URL=empty_db_url)
    for args in (["db", "upgrade"], ["seed", "--if-empty", "--with-demo-users"], ["db", "current"]):
        done = subprocess.run([VRU, *args], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    assert "(up to date)" in done.stdout
    engine = db.make_engine(empty_db_url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Delivery)) > 10_000
        assert conn.scalar(select(func.count()).select_from(AppUser)) == len(DEMO_USERS)
    engine.dispose()
    again = subprocess.run(
        [VRU, "seed", "--if-empty", "--with-demo-users"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0 and "demo data not loaded" in again.stdout
