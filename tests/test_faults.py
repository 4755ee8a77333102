"""Fault injection: a real ``vru import`` killed with SIGKILL part-way, a read-only database and a
full disk. After each, the database holds all of a batch or none of it, passes its integrity
checks, and the same import then succeeds. Runs on SQLite and (when configured) PostgreSQL.

The kill lands at one of two moments: at the fault hook (``VRU_FAULT_PAUSE_AT=commit`` in
:func:`registry.db.session_scope`: every row sent, nothing committed), and, without any hook,
when the database shows the import writing (on SQLite the write-ahead log growing, on PostgreSQL
``pg_stat_activity`` showing the ``INSERT INTO delivery``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from registry import db
from registry.cli import cli
from tests import fault_helpers as fh
from tests.conftest import _pg_admin
from tests.entry_helpers import dump

pytestmark = pytest.mark.slow

PROGRAMMES = 26  # 26 programmes × 33 boroughs × 120 months = 102,960 rows
CRIME_ROWS = 200_000


@pytest.fixture(scope="module")
def big_deliveries(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("faults") / "deliveries.csv"
    return path, fh.write_deliveries(path, fh.programme_names(PROGRAMMES))


@pytest.fixture(scope="module")
def big_police_uk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "2023-metropolitan-street.csv"
    fh.write_police_uk(path, CRIME_ROWS)
    return path


@pytest.fixture
def ready(engine: Engine) -> Engine:
    fh.add_programmes(engine, fh.programme_names(PROGRAMMES))
    return engine


def _count(engine: Engine, table: str, where: str = "") -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table} {where}")).scalar_one()


def _delivery_state(engine: Engine) -> tuple[int, int, int]:
    """Delivery rows, delivery import batches, and delivery rows pointing at a batch."""
    return (
        _count(engine, "delivery"),
        _count(engine, "import_batch", "WHERE kind = 'deliveries'"),
        _count(engine, "delivery", "WHERE import_batch_id IS NOT NULL"),
    )


def _assert_delivery_import_again(url: str, path: Path, rows: int, engine: Engine) -> None:
    rerun = fh.start_vru(url, "import", "deliveries", str(path), "--json")
    _out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    assert _delivery_state(engine) == (rows, 1, rows)
    assert fh.integrity_problems(engine) == []


def test_kill_delivery_import_before_commit_leaves_nothing(
    ready: Engine, db_url: str, big_deliveries: tuple[Path, int]
) -> None:
    path, rows = big_deliveries
    before = dump(ready)
    process = fh.start_vru(
        db_url, "import", "deliveries", str(path), **{db.FAULT_PAUSE_VARIABLE: "commit"}
    )
    fh.wait_for_pause(process)
    if ready.dialect.name == "postgresql":
        # Every row has been sent: the import's transaction is open, holding them uncommitted.
        name = make_url(db_url).database
        with _pg_admin().connect() as conn:
            states = conn.execute(
                text("SELECT state FROM pg_stat_activity WHERE datname = :d"), {"d": name}
            ).scalars()
            assert "idle in transaction" in list(states)
    fh.kill(process)

    assert dump(ready) == before
    assert _delivery_state(ready) == (0, 0, 0)
    assert fh.integrity_problems(ready) == []
    _assert_delivery_import_again(db_url, path, rows, ready)


def _writing(engine: Engine, url: str) -> bool:
    """Whether the database shows the delivery import writing right now."""
    if engine.dialect.name == "sqlite":
        wal = Path(make_url(url).database + "-wal")
        return wal.exists() and wal.stat().st_size > 1_000_000
    with _pg_admin().connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :d "
                    "AND state = 'active' AND query ILIKE 'INSERT INTO delivery%'"
                ),
                {"d": make_url(url).database},
            ).scalar_one()
        )


def test_kill_delivery_import_while_writing_leaves_all_or_nothing(
    ready: Engine, db_url: str, big_deliveries: tuple[Path, int]
) -> None:
    path, rows = big_deliveries
    process = fh.start_vru(db_url, "import", "deliveries", str(path))
    deadline = time.monotonic() + 300
    while not _writing(ready, db_url):
        assert process.poll() is None, "the import ended before it was seen writing"
        assert time.monotonic() < deadline, "the import was never seen writing"
        time.sleep(0.01)
    fh.kill(process)

    state = _delivery_state(ready)
    assert state in {(0, 0, 0), (rows, 1, rows)}, state
    assert fh.integrity_problems(ready) == []
    _assert_delivery_import_again(db_url, path, rows, ready)


def test_kill_crime_import_before_commit_leaves_nothing(
    engine: Engine, db_url: str, big_police_uk: Path
) -> None:
    before = dump(engine)
    args = ("import", "crime", str(big_police_uk), "--format", "police-uk")
    process = fh.start_vru(db_url, *args, **{db.FAULT_PAUSE_VARIABLE: "commit"})
    fh.wait_for_pause(process)
    fh.kill(process)

    assert dump(engine) == before
    assert _count(engine, "outcome_count") == 0
    assert fh.integrity_problems(engine) == []

    rerun = fh.start_vru(db_url, *args)
    _out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    assert _count(engine, "import_batch", "WHERE kind = 'crime'") == 1
    counts = _count(engine, "outcome_count")
    assert counts > 0
    assert _count(engine, "outcome_count", "WHERE import_batch_id IS NOT NULL") == counts
    assert fh.integrity_problems(engine) == []


# --- a read-only database and a full disk ------------------------------------------------------

SMALL_PROGRAMMES = 1  # 3,960 rows: enough to overflow a database allowed a few more pages


def _small_upload(engine: Engine, tmp_path: Path) -> Path:
    names = fh.programme_names(SMALL_PROGRAMMES)
    fh.add_programmes(engine, names)
    path = tmp_path / "deliveries.csv"
    fh.write_deliveries(path, names)
    return path


def _one_clear_line(stderr: str, start: str) -> None:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"Error: {start}"), stderr


def test_read_only_database_is_refused_with_a_clear_line(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    path = _small_upload(engine, tmp_path)
    before = dump(engine)
    if engine.dialect.name == "sqlite":
        url = f"sqlite:///file:{make_url(db_url).database}?mode=ro&uri=true"
    else:
        name = make_url(db_url).database
        with _pg_admin().connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        url = db_url
    result = CliRunner().invoke(cli, ["--database-url", url, "import", "deliveries", str(path)])
    assert result.exit_code == 1
    _one_clear_line(result.stderr, "The database is read-only, so nothing was saved.")
    assert dump(engine) == before


def test_full_disk_is_refused_with_a_clear_line(
    engine: Engine, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("a full disk is simulated with SQLite's max_page_count")
    path = _small_upload(engine, tmp_path)
    before = dump(engine)
    pragmas = db._sqlite_pragmas

    def small_disk(dbapi_connection: object, record: object) -> None:
        """The usual settings, then room for only 20 more pages (80 KB) in the file."""
        pragmas(dbapi_connection, record)
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        pages = cursor.execute("PRAGMA page_count").fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {pages + 20}")
        cursor.close()

    monkeypatch.setattr(db, "_sqlite_pragmas", small_disk)
    result = CliRunner().invoke(cli, ["--database-url", db_url, "import", "deliveries", str(path)])
    assert result.exit_code == 1
    _one_clear_line(result.stderr, "The disk holding the database is full, so nothing was saved.")
    monkeypatch.setattr(db, "_sqlite_pragmas", pragmas)
    assert dump(engine) == before
    assert fh.integrity_problems(engine) == []


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("25006", "The database is read-only"),
        ("53100", "The disk holding the database is full"),
        ("40P01", "Someone else was saving to the same data at the same moment"),
        ("42P01", "The database refused the change"),
    ],
)
def test_postgresql_errors_have_plain_messages(code: str, message: str) -> None:
    from sqlalchemy.exc import OperationalError

    from registry.errors import database_error_message

    class Driver(Exception):
        sqlstate = code

    exc = OperationalError("INSERT ...", {}, Driver("server said no\nDETAIL: more"))
    text_ = database_error_message(exc)
    assert text_.startswith(message)
    assert "\n" not in text_ and "server said no" in text_
