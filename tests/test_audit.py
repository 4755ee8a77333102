"""The audit trail: complete for every write path, append-only, readable by admins only."""

from __future__ import annotations

import csv
import datetime as dt
import importlib
import io
import pkgutil
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

import registry
from registry import audit, auth, db, deliveries, demo, programmes
from registry.cli import cli
from registry.errors import PermissionDenied
from registry.outcomes import mapping, measures, sources, store
from registry.outcomes.common import Source
from registry.schema import AuditEvent, Base
from tests.conftest import ADMIN, STAFF
from tests.entry_helpers import OPEN, add_programmes
from tests.outcome_helpers import FIXTURES


def _registry_modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(registry.__path__, "registry.")]


def _events(engine) -> list[tuple[str, str, str]]:
    with db.session_scope(engine) as s:
        rows = s.execute(
            select(AuditEvent.actor, AuditEvent.action, AuditEvent.entity).order_by(AuditEvent.id)
        ).all()
    return [tuple(r) for r in rows]


def test_enabling_a_user_leaves_exactly_its_event(engine) -> None:
    """The other write paths are in WRITE_CASES below; this is set_disabled's second use."""
    with db.session_scope(engine) as s:
        auth.add_user(s, principal=ADMIN, username="sam", role="staff", password="long-enough-pw")
        auth.set_disabled(s, principal=ADMIN, username="sam")
    before = len(_events(engine))
    with db.session_scope(engine) as s:
        auth.set_disabled(s, principal=ADMIN, username="sam", disabled=False)
    assert _events(engine)[before:] == [("alice", "enable", "app_user")]


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
    assert _events(engine) == [(auth.UNKNOWN_USER, "sign_in_failed", "app_user")]


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


# --- every registered write function leaves exactly its events ------------------------------

_DELIVERY_CSV = f"programme,borough,month,opportunities\n{OPEN},Camden,2022-01,4\n".encode()


def _one_delivery(s) -> None:
    deliveries.save_delivery(
        s, principal=STAFF, programme=OPEN, borough="Camden", month="2022-01", opportunities=4
    )


def _edited_grid(s) -> None:
    original = deliveries.programme_grid(s, principal=STAFF, programme=OPEN)
    edited = original.copy()
    edited.loc[0, "opportunities"] = 7
    deliveries.save_grid(s, principal=STAFF, programme=OPEN, original=original, edited=edited)


def _sign_off(s) -> None:
    deliveries.sign_off_month(s, principal=ADMIN, month=dt.date(2022, 1, 1))


def _commit(s) -> None:
    preview = deliveries.preview_upload(
        s, principal=STAFF, content=_DELIVERY_CSV, file_name="d.csv"
    )
    deliveries.commit(s, principal=STAFF, preview=preview)


# name -> (set-up run first, the write, the events the write must leave, in order)
WRITE_CASES: dict[str, tuple[Any, Any, list[tuple[str, str, str]]]] = {
    "registry.auth.add_user": (
        None,
        lambda s: auth.add_user(
            s, principal=ADMIN, username="bo", role="staff", password="long-enough-pw"
        ),
        [("alice", "create", "app_user")],
    ),
    "registry.auth.set_role": (
        None,
        lambda s: auth.set_role(s, principal=ADMIN, username="sam", role="commissioner"),
        [("alice", "role_change", "app_user")],
    ),
    "registry.auth.set_disabled": (
        None,
        lambda s: auth.set_disabled(s, principal=ADMIN, username="sam"),
        [("alice", "disable", "app_user")],
    ),
    "registry.auth.reset_password": (
        None,
        lambda s: auth.reset_password(
            s, principal=ADMIN, username="sam", password="new-long-password"
        ),
        [("alice", "password_reset", "app_user")],
    ),
    "registry.demo.load": (
        None,
        lambda s: demo.load(s, principal=ADMIN),
        [("alice", "seed", "import_batch")],
    ),
    "registry.demo.add_demo_users": (
        None,
        lambda s: demo.add_demo_users(s, principal=ADMIN),
        [("alice", "create", "app_user")] * 4,
    ),
    "registry.outcomes.measures.add_measure": (
        None,
        lambda s: measures.add_measure(
            s, principal=ADMIN, code="test_measure", label="Test", definition="For the test."
        ),
        [("alice", "create", "outcome_measure")],
    ),
    "registry.outcomes.measures.add_break": (
        None,
        lambda s: measures.add_break(
            s,
            principal=ADMIN,
            code=measures.list_measures(s, principal=ADMIN)[0]["code"],
            month=dt.date(2020, 1, 1),
            note="Recording practice changed.",
        ),
        [("alice", "create", "measure_break")],
    ),
    "registry.outcomes.measures.set_population_band": (
        None,
        lambda s: measures.set_population_band(s, principal=ADMIN, code="homicide", band="10-24"),
        [("alice", "amend", "outcome_measure")],
    ),
    "registry.outcomes.sources.set_source_order": (
        None,
        lambda s: sources.set_source_order(
            s, principal=ADMIN, code="homicide", order=["long", "mps-borough"]
        ),
        [("alice", "amend", "outcome_measure")],
    ),
    "registry.outcomes.mapping.set_mapping": (
        None,
        lambda s: mapping.set_mapping(
            s,
            principal=ADMIN,
            source_format="mps-borough",
            source_category="A New Category",
            measure=None,
        ),
        [("alice", "create", "measure_mapping")],
    ),
    "registry.outcomes.store.import_crime": (
        None,
        lambda s: store.import_crime(
            s,
            principal=ADMIN,
            sources=[Source.from_path(FIXTURES / "long_crime.csv")],
            fmt="long",
        ),
        [("alice", "import", "import_batch")],
    ),
    "registry.outcomes.store.import_population": (
        None,
        lambda s: store.import_population(
            s,
            principal=ADMIN,
            source=Source.from_path(FIXTURES / "long_population.csv"),
            fmt="long",
        ),
        [("alice", "import", "import_batch")],
    ),
    "registry.programmes.add_funding_stream": (
        None,
        lambda s: programmes.add_funding_stream(s, principal=STAFF, name="New Fund", funder="X"),
        [("sam", "create", "funding_stream")],
    ),
    "registry.programmes.add_programme": (
        None,
        lambda s: programmes.add_programme(
            s, principal=STAFF, name="New Programme", funding_stream="Test Fund"
        ),
        [("sam", "create", "programme")],
    ),
    "registry.programmes.edit_programme": (
        None,
        lambda s: programmes.edit_programme(
            s, principal=STAFF, name=OPEN, changes={"partner": "Partner Ltd"}
        ),
        [("sam", "amend", "programme")],
    ),
    "registry.programmes.close_programme": (
        None,
        lambda s: programmes.close_programme(
            s, principal=STAFF, name=OPEN, end=dt.date(2023, 3, 31)
        ),
        [("sam", "amend", "programme")],
    ),
    "registry.deliveries.write.commit": (None, _commit, [("sam", "import", "import_batch")]),
    "registry.deliveries.write.import_file": (
        None,
        lambda s: deliveries.import_file(
            s, principal=STAFF, content=_DELIVERY_CSV, file_name="d.csv"
        ),
        [("sam", "import", "import_batch")],
    ),
    "registry.deliveries.entry.save_delivery": (
        None,
        _one_delivery,
        [("sam", "create", "delivery")],
    ),
    "registry.deliveries.entry.save_grid": (
        _one_delivery,
        _edited_grid,
        [("sam", "amend", "delivery")],
    ),
    "registry.deliveries.entry.delete_delivery": (
        _one_delivery,
        lambda s: deliveries.delete_delivery(
            s,
            principal=STAFF,
            programme=OPEN,
            borough="Camden",
            month=dt.date(2022, 1, 1),
            reason="Entered twice.",
        ),
        [("sam", "delete", "delivery")],
    ),
    "registry.deliveries.returns.sign_off_month": (
        None,
        _sign_off,
        [("alice", "sign_off", "month_sign_off")],
    ),
    "registry.deliveries.returns.reopen_month": (
        _sign_off,
        lambda s: deliveries.reopen_month(
            s, principal=ADMIN, month=dt.date(2022, 1, 1), reason="A late correction."
        ),
        [("alice", "reopen", "month_sign_off")],
    ),
}


def test_every_write_function_has_an_exact_events_case() -> None:
    for module in _registry_modules():
        importlib.import_module(module)
    assert set(WRITE_CASES) == set(auth.WRITE_FUNCTIONS), (
        "Give every write function in auth.WRITE_FUNCTIONS a case in WRITE_CASES."
    )


@pytest.mark.parametrize("name", sorted(WRITE_CASES))
def test_each_write_function_leaves_exactly_its_events(engine, name) -> None:
    setup, write, expected = WRITE_CASES[name]
    with db.make_session_factory(engine)() as s:
        auth.add_user(s, principal=ADMIN, username="sam", role="staff", password="long-enough-pw")
        if name != "registry.demo.load":  # the demo data loads only into an empty registry
            add_programmes(s)
        if setup is not None:
            setup(s)
        s.commit()
    before, tables = len(_events(engine)), _tables(engine)
    with db.session_scope(engine) as s:
        write(s)
    assert _events(engine)[before:] == expected
    if {entity for _, _, entity in expected} <= set(audit.DELIVERY_ENTITIES):
        # The version ignoring these events keys the caches of every figure that reads no
        # delivery (dashboards/common.py data_state): such a write must touch only deliveries.
        changed = {t for t, rows in _tables(engine).items() if rows != tables[t]}
        assert changed <= set(audit.DELIVERY_ENTITIES), changed


def _tables(engine) -> dict[str, list[tuple]]:
    """Every row of every table but the audit trail and accounts, as text, in a stable order."""
    with db.session_scope(engine) as s:
        return {
            table.name: sorted(tuple(map(str, row)) for row in s.execute(select(table)))
            for table in Base.metadata.sorted_tables
            if table.name not in ("audit_event", "app_user", "app_session")
        }


def test_the_version_ignoring_deliveries_moves_with_everything_else(engine) -> None:
    with db.session_scope(engine) as s:
        add_programmes(s)
    with db.session_scope(engine) as s:
        version = audit.data_version(s)
        without = audit.data_version(s, ignoring_deliveries=True)
        deliveries.save_delivery(
            s,
            principal=STAFF,
            programme=OPEN,
            borough="Camden",
            month=dt.date(2022, 1, 1),
            opportunities=5,
        )
    with db.session_scope(engine) as s:
        assert audit.data_version(s) > version
        assert audit.data_version(s, ignoring_deliveries=True) == without
        programmes.add_funding_stream(s, principal=ADMIN, name="Another Fund", funder="X")
    with db.session_scope(engine) as s:
        assert audit.data_version(s, ignoring_deliveries=True) > without


def _newest_other_than(s, left_out: tuple[str, ...]) -> int:
    """The data version by its definition: the newest event of a kind not left out (or 0)."""
    ids = [e.id for e in s.scalars(select(AuditEvent)) if e.entity not in left_out]
    return max(ids, default=0)


def _event(entity: str) -> dict[str, Any]:
    return {
        "occurred_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        "actor": "test",
        "action": "amend",
        "entity": entity,
        "entity_id": "1",
        "before": None,
        "after": None,
        "detail": None,
    }


@pytest.mark.parametrize(
    "entities",
    [
        [],
        ["app_user"],
        ["delivery", "month_sign_off"],
        ["programme", *["delivery"] * 50],
        ["delivery", "programme", "app_user", "delivery", "zzz_new_kind", "delivery"],
        ["aaa_new_kind", "month_sign_off", "import_batch", "app_user", "app_user"],
    ],
)
def test_the_data_version_is_the_newest_event_of_a_kind_not_left_out(engine, entities) -> None:
    """Each kind's newest event through the (entity, id) index: the same as the definition,
    for kinds the code names and kinds it does not (a new kind must move the version)."""
    with db.session_scope(engine) as s:
        audit.record_many(s, [_event(entity) for entity in entities])
    with db.session_scope(engine) as s:
        assert audit.data_version(s) == _newest_other_than(s, ("app_user",))
        assert audit.data_version(s, ignoring_deliveries=True) == _newest_other_than(
            s, ("app_user", *audit.DELIVERY_ENTITIES)
        )
