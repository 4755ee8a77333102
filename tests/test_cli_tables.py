"""Every `vru` command that lists rows prints them under a header, with figures written the one
way (thousands separators) (issue #15)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from registry import db, deliveries, demo
from registry.auth import SYSTEM
from registry.cli import cli
from registry.schema import Delivery

LISTS = {
    ("users", "list"): ["User", "Role", "Funder", "State"],
    ("funding-streams", "list"): ["Funding", "stream", "Funder", "Programmes"],
    ("programmes", "list"): ["Programme", "Funding", "stream", "Dates", "Status"],
    ("months", "missing", "--from", "2024-01", "--to", "2024-03"): [
        "Month", "Programme", "Borough", "Status", "Due", "Received",
    ],
    ("outcomes", "batches"): [
        "Batch", "Loaded", "Kind", "Format", "Release", "Release", "date", "File", "Rows", "read",
        "Revised",
    ],
    ("measures", "list"): [
        "Code", "Measure", "Unit", "Rates", "per", "Source", "of", "record", "Source", "order",
        "Series", "breaks",
    ],
    ("measures", "mapping", "list"): ["Format", "Source", "category", "Measure", "Set", "by"],
    ("audit", "--limit", "5"): [
        "Id", "When", "(UTC)", "Who", "Action", "About", "Change", "Detail",
    ],
}  # fmt: skip


@pytest.fixture
def url(seeded_url):
    engine = db.make_engine(seeded_url)
    with db.session_scope(engine) as s:
        demo.add_demo_users(s, principal=SYSTEM)
        # One return taken back, so `months missing` has a row to list.
        row = s.scalars(select(Delivery).where(Delivery.month == dt.date(2024, 2, 1))).first()
        deliveries.delete_delivery(
            s,
            principal=SYSTEM,
            programme=row.programme.name,
            borough=row.borough.name,
            month=row.month,
            reason="test",
        )
    engine.dispose()
    return seeded_url


def test_every_list_command_prints_a_header(url) -> None:
    for args, header in LISTS.items():
        result = CliRunner().invoke(cli, ["--database-url", url, *args], catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
        lines = result.output.splitlines()
        assert lines[0].split() == header, args
        assert set(lines[1]) == {"-", " "}, args
        assert len(lines) > 2, args


def test_list_figures_have_thousands_separators(url) -> None:
    result = CliRunner().invoke(
        cli, ["--database-url", url, "outcomes", "batches"], catch_exceptions=False
    )
    rows_read = result.output.splitlines()[2]
    assert re.search(r"\b\d{1,3}(,\d{3})+\b", rows_read), rows_read
