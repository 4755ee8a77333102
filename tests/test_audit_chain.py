"""The audit trail holds against someone who can write the database (issue #19).

Events are hash-chained and ``vru audit verify`` names an event rewritten (SQLite's ``INSERT OR
REPLACE``, which slipped past the DELETE trigger, or an UPDATE with the triggers off), removed, or
a whole tail recomputed (caught against a head noted earlier). ``vru db`` is for the local
operator only and audited. On PostgreSQL the tables can belong to a migration role, and the app's
role may then only insert and read audit events.
"""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from registry import audit, db, programmes
from registry.cli import cli
from registry.schema import AuditEvent
from tests.conftest import ADMIN, PG_URL, _pg_admin, create_pg_database, drop_pg_database


def _events(engine, count: int = 4) -> None:
    with db.session_scope(engine) as s:
        programmes.add_funding_stream(s, principal=ADMIN, name="Fund", funder="City Hall")
        for i in range(count - 1):
            programmes.add_funding_stream(s, principal=ADMIN, name=f"Fund {i}", funder="City Hall")


def _verify(url: str, *args: str):
    return CliRunner().invoke(cli, ["--database-url", url, "audit", "verify", *args])


def _without_triggers(engine, sql: str, **params) -> None:
    """What an attacker with the database file or a superuser can do: triggers off, then SQL."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_event_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_event_no_delete")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_event_no_replace")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_event DISABLE TRIGGER USER")
        conn.execute(text(sql), params)


def test_verify_passes_a_whole_chain_and_prints_its_head(engine, db_url) -> None:
    _events(engine)
    result = _verify(db_url)
    assert result.exit_code == 0, result.output
    assert "The audit trail is whole: 4 events" in result.output
    with db.session_scope(engine) as s:
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        first = s.scalars(select(AuditEvent).order_by(AuditEvent.id)).first()
    assert f"Head: {last.id}:{last.hash}" in result.output
    assert first.prev_hash == audit.GENESIS
    assert _verify(db_url, "--head", f"{last.id}:{last.hash}").exit_code == 0


def test_insert_or_replace_is_refused_and_a_forged_one_is_detected(engine, db_url) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("INSERT OR REPLACE is SQLite's")
    _events(engine)
    forge = (
        "INSERT OR REPLACE INTO audit_event (id, occurred_at, actor, action, entity, detail, "
        "prev_hash, hash) SELECT id, occurred_at, 'mallory', action, entity, detail, prev_hash, "
        "hash FROM audit_event WHERE id = 2"
    )
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql(forge)
    _without_triggers(engine, forge)
    result = _verify(db_url)
    assert result.exit_code == 1
    assert "event #2 was changed after it was written" in result.stderr


def test_a_rewritten_event_is_detected(engine, db_url) -> None:
    _events(engine)
    _without_triggers(engine, "UPDATE audit_event SET actor = 'mallory' WHERE id = 3")
    result = _verify(db_url)
    assert result.exit_code == 1 and "event #3 was changed after it was written" in result.stderr


def test_a_removed_event_is_detected(engine, db_url) -> None:
    _events(engine)
    _without_triggers(engine, "DELETE FROM audit_event WHERE id = 2")
    result = _verify(db_url)
    assert result.exit_code == 1
    assert "The chain breaks between #1 and event #3" in result.stderr


def test_a_recomputed_tail_is_caught_against_a_head_noted_earlier(engine, db_url) -> None:
    _events(engine)
    noted = _verify(db_url).output.split("Head: ")[1].split(".")[0]
    # The forger changes event 2 and recomputes every hash after it: the chain is whole again.
    _without_triggers(engine, "UPDATE audit_event SET actor = 'mallory' WHERE id = 2")
    with db.session_scope(engine) as s:
        rows = s.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
        previous = audit.GENESIS
        forged = []
        for event in rows:
            fields = {c: getattr(event, c) for c in audit._CHAINED}
            forged.append((event.id, previous, audit.event_hash(previous, fields)))
            previous = forged[-1][2]
    for event_id, prev, digest in forged:
        _without_triggers(
            engine,
            "UPDATE audit_event SET prev_hash = :p, hash = :h WHERE id = :i",
            p=prev,
            h=digest,
            i=event_id,
        )
    assert _verify(db_url).exit_code == 0  # a chain alone cannot tell
    result = _verify(db_url, "--head", noted)
    assert result.exit_code == 1 and "the trail was rewritten" in result.stderr


def test_vru_db_is_for_the_local_operator_and_audited(engine, db_url) -> None:
    runner = CliRunner()
    base = ["--database-url", db_url]
    with db.session_scope(engine) as s:
        from registry import auth

        auth.add_user(s, principal=ADMIN, username="sam", role="staff", password="sam-password-1")
    for args in (["db", "downgrade", "0004"], ["db", "upgrade"], ["db", "current"]):
        refused = runner.invoke(cli, [*base, "--as", "sam", *args])
        assert refused.exit_code == 1 and "operator of this machine" in refused.stderr
    assert db.current_revision(engine) == db.head_revision()
    down = runner.invoke(cli, [*base, "db", "downgrade", "0005"])
    assert down.exit_code == 0, down.output
    up = runner.invoke(cli, [*base, "db", "upgrade"])
    assert up.exit_code == 0, up.output
    with db.session_scope(engine) as s:
        moves = s.scalars(select(AuditEvent).where(AuditEvent.action == "migrate")).all()
    assert [(m.before["revision"], m.after["revision"]) for m in moves] == [
        (db.head_revision(), "0005"),
        ("0005", db.head_revision()),
    ]
    assert all(m.actor.startswith("cli:") for m in moves)
    assert _verify(db_url).exit_code == 0  # the upgrade re-chained the trail


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL")
def test_app_role_may_only_insert_and_read_audit_events(tmp_path) -> None:
    suffix = uuid.uuid4().hex[:8]
    owner, app, name = f"vru_owner_{suffix}", f"vru_app_{suffix}", f"vru_roles_{suffix}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {owner} LOGIN")
        conn.exec_driver_sql(f"CREATE ROLE {app} LOGIN")
    create_pg_database(name)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"ALTER DATABASE {name} OWNER TO {owner}")
    root = make_url(create_pg_database.__globals__["_pg_url"](name))
    owner_url = root.set(username=owner).render_as_string(False)
    app_url = root.set(username=app).render_as_string(False)
    with create_engine(owner_url.replace("postgresql://", "postgresql+psycopg://")).begin() as c:
        c.exec_driver_sql("ALTER SCHEMA public OWNER TO CURRENT_USER")
    try:
        runner = CliRunner(env={"VRU_MIGRATION_DATABASE_URL": owner_url})
        up = runner.invoke(cli, ["--database-url", app_url, "db", "upgrade"])
        assert up.exit_code == 0, up.output
        assert f"Granted {app}" in up.output
        engine = db.make_engine(app_url)
        _events(engine, 2)  # the app writes, and appends audit events
        for statement in (
            "UPDATE audit_event SET actor = 'mallory'",
            "DELETE FROM audit_event",
            "TRUNCATE audit_event",
            "ALTER TABLE audit_event DISABLE TRIGGER USER",
            "DROP TRIGGER audit_event_append_only ON audit_event",
        ):
            denied = pytest.raises(DBAPIError, match=r"permission denied|must be owner")
            with denied, engine.begin() as conn:
                conn.exec_driver_sql(statement)
        assert _verify(app_url).exit_code == 0
        engine.dispose()
        # Without the migration URL, the app's role cannot migrate: it owns nothing.
        refused = CliRunner().invoke(cli, ["--database-url", app_url, "db", "downgrade", "0005"])
        assert refused.exit_code == 1
    finally:
        drop_pg_database(name)
        with admin.connect() as conn:
            for role in (app, owner):
                conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        admin.dispose()
