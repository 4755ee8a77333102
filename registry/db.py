"""Engines, sessions and migrations.

There is no module-level engine: callers build one from a URL (tests build one per temporary
database), and the Streamlit app caches its own with ``st.cache_resource``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, CursorResult, Engine, Result, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from registry.bundled import bundled
from registry.config import get_settings

ALEMBIC_DIR = bundled("alembic")
# Test hook for the fault-injection tests (tests/test_faults.py); inert unless set. See
# :func:`fault_pause`.
FAULT_PAUSE_VARIABLE = "VRU_FAULT_PAUSE_AT"
FAULT_PAUSE_MARKER = "VRU-FAULT-PAUSED-AT"
FAULT_PAUSE_SECONDS = 120


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (default: the configured database).

    SQLite gets foreign keys ON, WAL journalling and a busy timeout on every connection, so that
    several readers and one writer (the app and an import) do not trip over each other.
    """
    url = get_settings(url).database_url
    engine = create_engine(url, future=True, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def fault_pause(point: str) -> None:
    """Pause at ``point`` when ``$VRU_FAULT_PAUSE_AT`` names it; otherwise do nothing.

    Only the fault-injection tests set the variable: the process then prints a marker line on
    stderr and sleeps, so the test can SIGKILL it at a known moment (at ``commit``: every row of
    the transaction sent to the database, nothing committed; at ``sign_off_checked``: a write has
    just checked that its months are not signed off) and check what the database holds. After
    the pause the transaction carries on as normal.
    """
    if os.environ.get(FAULT_PAUSE_VARIABLE) != point:
        return
    print(f"{FAULT_PAUSE_MARKER} {point}", file=sys.stderr, flush=True)
    time.sleep(FAULT_PAUSE_SECONDS)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any error."""
    with make_session_factory(engine)() as session, session.begin():
        yield session
        session.flush()
        fault_pause("commit")


# Keys of the PostgreSQL transaction-scoped advisory locks the registry takes. Each is held
# until its transaction ends; SQLite needs none (it has one writer at a time).
AUDIT_CHAIN_LOCK = 19_001
SIGN_OFF_LOCK = 19_002


def advisory_lock(session: Session, key: int, *, shared: bool = False) -> None:
    """Take the transaction-scoped advisory lock ``key`` on PostgreSQL (a no-op on SQLite).

    Shared holders run together; an exclusive holder waits for every shared one and blocks new
    ones until its transaction ends.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    session.execute(text(f"SELECT {function}(:key)"), {"key": key})


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE run through ``Session.execute`` matched.

    SQLAlchemy types ``Session.execute`` as returning a ``Result``; for these statements it is a
    ``CursorResult``, the class that has ``rowcount``.
    """
    if not isinstance(result, CursorResult):
        raise TypeError(
            f"Expected the result of an UPDATE or DELETE, not a {type(result).__name__}."
        )
    return result.rowcount


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic configuration pointing at this project's migrations.

    When ``engine`` is given its connection is passed to ``alembic/env.py`` through
    ``config.attributes``, so tests and the CLI migrate exactly the database they hold.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


Hook = Callable[[Connection, str | None, str | None], None]


def _run(engine: Engine, fn: Any, revision: str, before: Hook | None, after: Hook | None) -> None:
    """Run an Alembic command in one transaction; ``before``/``after`` run in it too, given the
    connection and the revisions before and after (``after`` is ``None`` before it has run)."""
    with engine.begin() as connection:
        start = MigrationContext.configure(connection).get_current_revision()
        if before is not None:
            before(connection, start, None)
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = connection
        fn(cfg, revision)
        if after is not None:
            end = MigrationContext.configure(connection).get_current_revision()
            after(connection, start, end)


def upgrade(engine: Engine, revision: str = "head", *, after: Hook | None = None) -> None:
    """Migrate the database to ``revision`` (default: the newest)."""
    _run(engine, command.upgrade, revision, None, after)


def downgrade(engine: Engine, revision: str, *, before: Hook | None = None) -> None:
    _run(engine, command.downgrade, revision, before, None)


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"Expected one migration head, found {len(heads)}: {heads}.")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_up_to_date(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def has_schema(engine: Engine) -> bool:
    return inspect(engine).has_table("borough")
