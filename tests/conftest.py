"""Fixtures: a fresh, migrated database for every test, on SQLite and (when configured) PostgreSQL.

Migrating for every test would be slow, so each backend is migrated once into a template and every
test gets a copy: a copied file on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL. Set
``VRU_TEST_POSTGRES_URL`` (for example ``postgresql://postgres@127.0.0.1:5432/postgres``) to run
every database test on PostgreSQL as well.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from registry import db
from registry.auth import Principal
from registry.config import normalise_database_url

PG_URL = os.environ.get("VRU_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]
# Unique per test process, so several runs (or xdist workers) can share one PostgreSQL server.
WORKER = f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"

ADMIN = Principal("alice", "admin")
STAFF = Principal("sam", "staff")
COMMISSIONER = Principal("chris", "commissioner")
FUNDER = Principal("fran", "funder", funder="City Hall")
PRINCIPALS = {"admin": ADMIN, "staff": STAFF, "commissioner": COMMISSIONER, "funder": FUNDER}


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may touch the developer's own vru.db or settings."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("VRU_") and name != "VRU_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)


def _pg_admin() -> Engine:
    assert PG_URL
    return create_engine(normalise_database_url(PG_URL), isolation_level="AUTOCOMMIT")


def _pg_url(name: str) -> str:
    assert PG_URL
    return make_url(normalise_database_url(PG_URL)).set(database=name).render_as_string(False)


def create_pg_database(name: str, template: str | None = None) -> str:
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        clause = f' TEMPLATE "{template}"' if template else ""
        conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    admin.dispose()
    return _pg_url(name)


def drop_pg_database(name: str) -> None:
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    name = f"vru_template_{WORKER}"
    url = create_pg_database(name)
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    yield name
    drop_pg_database(name)


def _fresh(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, migrated: bool
) -> Iterator[str]:
    if backend == "sqlite":
        path = tmp_path / f"test-{uuid.uuid4().hex[:8]}.db"
        if migrated:
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    name = f"vru_test_{WORKER}_{uuid.uuid4().hex[:10]}"
    template = request.getfixturevalue("pg_template") if migrated else None
    yield create_pg_database(name, template)
    drop_pg_database(name)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh database migrated to head, on each backend."""
    yield from _fresh(request.param, request, tmp_path, migrated=True)


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh database with no tables, on each backend."""
    yield from _fresh(request.param, request, tmp_path, migrated=False)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = db.make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the fresh database; tests commit explicitly when they mean to."""
    with db.make_session_factory(engine)() as s:
        yield s


def _seed(url: str) -> None:
    from registry import demo
    from registry.auth import SYSTEM

    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        demo.load(s, principal=SYSTEM)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


@pytest.fixture(scope="session")
def seeded_sqlite_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seeded") / "seeded.db"
    shutil.copyfile(sqlite_template, path)
    _seed(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def seeded_pg_template(pg_template: str) -> Iterator[str]:
    name = f"vru_seeded_{WORKER}"
    _seed(create_pg_database(name, pg_template))
    yield name
    drop_pg_database(name)


@pytest.fixture(params=BACKENDS)
def seeded_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh database holding the synthetic demo data, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "seeded.db"
        shutil.copyfile(request.getfixturevalue("seeded_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    name = f"vru_test_{WORKER}_{uuid.uuid4().hex[:10]}"
    yield create_pg_database(name, request.getfixturevalue("seeded_pg_template"))
    drop_pg_database(name)


@pytest.fixture
def downloaded(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, str], bytes]:
    """``downloaded(at, key)``: the bytes the download button ``key`` offered in AppTest's last run.

    AppTest keeps a download's data in an in-memory media store that it drops after each run;
    this keeps the store, so a test can read the file the button points to.
    """
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import app_test

    stores: list[MemoryMediaFileStorage] = []

    class KeptStorage(MemoryMediaFileStorage):
        def __init__(self, media_endpoint: str) -> None:
            super().__init__(media_endpoint)
            stores.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", KeptStorage)

    def read(at: Any, key: str) -> bytes:
        button = next(b for b in at.get("download_button") if b.key == key)
        assert button.proto.url, f"{key} offers no file"
        return stores[-1].get_file(button.proto.url.rsplit("/", 1)[-1]).content

    return read


def tables_without_csv(at: Any, downloaded: Callable[[Any, str], bytes]) -> list[list[str]]:
    """The columns of every table on the page that no CSV download gives exactly as shown."""
    files = {
        downloaded(at, b.key)
        for b in at.get("download_button")
        if b.label.endswith("(CSV)") and b.key is not None
    }
    return [
        list(d.value.columns)
        for d in at.dataframe
        if d.value.to_csv(index=False).encode() not in files
    ]
