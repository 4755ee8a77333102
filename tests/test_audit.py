"""The audit trail: complete for every write path, append-only, readable by admins only."""

from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from registry import audit, auth, db, demo
from registry.cli import cli
from registry.errors import PermissionDenied
from registry.models import AuditEvent
from tests.conftest import ADMIN, STAFF


def _events(engine) -> list[tuple[str, str, str]]:
    with db.session_scope(engine) as s:
        rows = s.execute(
            select(AuditEvent.actor, AuditEvent.action, AuditEvent.entity).order_by(AuditEvent.id)
        ).all()
    return [tuple(r) for r in rows]


@pytest.mark.parametrize(
    "write,expected",
    [
        (
            lambda s: auth.add_user(
                s, principal=ADMIN, username="bo", role="staff", password="long-enough-pw"
            ),
            [("alice", "create", "app_user")],
        ),
        (
            lambda s: auth.set_role(s, principal=ADMIN, username="sam", role="commissioner"),
            [("alice", "role_change", "app_user")],
        ),
        (
            lambda s: auth.set_disabled(s, principal=ADMIN, username="sam"),
            [("alice", "disable", "app_user")],
        ),
        (
            lambda s: auth.set_disabled(s, principal=ADMIN, username="sam", disabled=False),
            [("alice", "enable", "app_user")],
        ),
        (
            lambda s: auth.reset_password(
                s, principal=ADMIN, username="sam", password="new-long-password"
            ),
            [("alice", "password_reset", "app_user")],
        ),
        (lambda s: demo.load(s, principal=ADMIN), [("alice", "seed", "import_batch")]),
        (lambda s: demo.add_demo_users(s, principal=ADMIN), [("alice", "create", "app_user")] * 4),
    ],
)
def test_each_write_path_leaves_exactly_its_events(engine, write, expected) -> None:
    with db.session_scope(engine) as s:
        auth.add_user(s, principal=ADMIN, username="sam", role="staff", password="long-enough-pw")
    before = len(_events(engine))
    with db.session_scope(engine) as s:
        write(s)
    assert _events(engine)[before:] == expected


def test_role_change_records_before_and_after(engine) -> None:
    with db.session_scope(engine) as s:
        auth.add_user(s, principal=ADMIN, username="sam", role="staff", password="long-enough-pw")
        auth.set_role(s, principal=ADMIN, username="sam", role="funder", funder="Home Office")
    with db.session_scope(engine) as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "role_change")).one()
        assert event.before["role"] == "staff" and event.after["role"] == "funder"
        assert event.after["funder"] == "Home Office"
        assert event.occurred_at is not None


def test_a_refused_write_leaves_no_event(engine) -> None:
    with pytest.raises(PermissionDenied), db.session_scope(engine) as s:
        auth.add_user(s, principal=STAFF, username="bo", role="admin", password="long-enough-pw")
    assert _events(engine) == []


def test_sign_in_failures_are_audited(engine) -> None:
    with pytest.raises(auth.SignInError):
        auth.sign_in(engine, username="ghost", password="whatever-it-is")
    assert _events(engine) == [("ghost", "sign_in_failed", "app_user")]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET actor = 'mallory'",
        "DELETE FROM audit_event",
    ],
)
def test_audit_events_cannot_be_edited_or_deleted(engine, statement) -> None:
    with db.session_scope(engine) as s:
        auth.add_user(s, principal=ADMIN, username="sam", role="staff", password="long-enough-pw")
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    assert _events(engine) == [("alice", "create", "app_user")]


def test_only_admins_read_the_trail(engine) -> None:
    with db.session_scope(engine) as s:
        with pytest.raises(PermissionDenied):
            audit.list_events(s, principal=STAFF)
        assert audit.list_events(s, principal=ADMIN) == []


def test_cli_audit_filters_and_csv_export(db_url, tmp_path) -> None:
    runner = CliRunner()
    base = ["--database-url", db_url]
    runner.invoke(
        cli,
        [*base, "users", "add", "sam", "--role", "staff", "--password", "long-enough-pw"],
        catch_exceptions=False,
    )
    runner.invoke(cli, [*base, "users", "set-role", "sam", "commissioner"], catch_exceptions=False)
    engine = db.make_engine(db_url)
    with pytest.raises(auth.SignInError):
        auth.sign_in(engine, username="sam", password="=cmd|' /C calc'!A0")
    engine.dispose()
    listing = runner.invoke(cli, [*base, "audit", "--action", "role_change"]).output
    assert "role_change" in listing and "create" not in listing
    out = tmp_path / "audit.csv"
    result = runner.invoke(cli, [*base, "audit", "--csv", str(out)], catch_exceptions=False)
    assert result.exit_code == 0 and "Wrote 3 audit events" in result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["action"] for r in rows] == ["sign_in_failed", "role_change", "create"]
    assert rows[1]["before"].startswith('{"disabled": false')
    denied = runner.invoke(cli, [*base, "--as", "sam", "audit"])
    assert denied.exit_code == 1 and "may not do this (audit.read)" in denied.stderr


def test_csv_neutralises_formulas() -> None:
    text_out = audit.events_csv(
        [
            {
                "id": 1,
                "occurred_at": "t",
                "actor": "=HYPERLINK(1)",
                "action": "create",
                "entity": "x",
                "entity_id": "",
                "before": "",
                "after": "",
                "detail": "@SUM(A1)",
            }
        ]
    )
    assert "'=HYPERLINK(1)" in text_out and "'@SUM(A1)" in text_out
