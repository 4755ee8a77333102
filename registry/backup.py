"""``vru db backup`` and ``vru db restore``: a whole database to one file and back.

PostgreSQL goes through ``pg_dump``/``pg_restore`` in their custom format (compressed, restorable
table by table by a DBA if ever needed); SQLite through its online backup API, which copies a
consistent snapshot even while the app is writing. The file's first bytes say which it is, so a
PostgreSQL dump is never "restored" into a SQLite file or the other way round.

A restore refuses a database that already has tables unless forced: restoring over live data is
the one mistake a backup tool must not make easy. A forced PostgreSQL restore runs in one
transaction (``--single-transaction``), so a dump that fails half-way leaves the database as it
was; a SQLite restore replaces the file's content in one backup step.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import Engine, inspect
from sqlalchemy.engine import URL

from registry.errors import RegistryError

PG_MAGIC = b"PGDMP"
SQLITE_MAGIC = b"SQLite format 3\x00"


def _kind_of_file(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        raise RegistryError(f"There is no backup file {path}.") from None
    if head.startswith(PG_MAGIC):
        return "postgresql"
    if head == SQLITE_MAGIC:
        return "sqlite"
    raise RegistryError(
        f"{path} is not a registry backup: it is neither a pg_dump custom-format file nor a "
        "SQLite database."
    )


def _pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RegistryError(
            f"`{name}` is not installed here; install the PostgreSQL client tools "
            "(Debian: apt-get install postgresql-client) matching the server's major version."
        )
    return path


def _pg_env(url: URL) -> dict[str, str]:
    """libpq settings for ``url`` as environment variables, so the password never appears on a
    command line (where ``ps`` would show it)."""
    env = dict(os.environ)
    for name, value in (
        ("PGHOST", url.host),
        ("PGPORT", url.port),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
    ):
        if value is not None:
            env[name] = str(value)
    for key, setting in url.query.items():  # e.g. ?sslmode=require
        if key == "sslmode":
            env["PGSSLMODE"] = str(setting)
    return env


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[0] if lines else f"exit code {done.returncode}"
        raise RegistryError(f"{Path(command[0]).name} failed: {reason}")


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise RegistryError("An in-memory SQLite database cannot be backed up or restored.")
    return Path(database)


def table_names(engine: Engine) -> list[str]:
    return inspect(engine).get_table_names()


def backup(engine: Engine, path: Path) -> None:
    """Write the whole database behind ``engine`` to ``path``; refuse an existing file.

    The file appears complete or not at all: the copy goes to a temporary file beside it first.
    """
    if path.exists():
        raise RegistryError(f"{path} already exists; choose a new file name for the backup.")
    if not table_names(engine):
        raise RegistryError("The database has no tables; there is nothing to back up.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    partial = Path(name)
    try:
        if engine.dialect.name == "postgresql":
            _run(
                [_pg_tool("pg_dump"), "--format=custom", f"--file={partial}"],
                _pg_env(engine.url),
            )
        else:
            source = sqlite3.connect(_sqlite_path(engine))
            target = sqlite3.connect(partial)
            try:
                source.backup(target)
            finally:
                target.close()
                source.close()
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def restore(engine: Engine, path: Path, *, force: bool) -> None:
    """Load the backup ``path`` into the database behind ``engine``.

    Refused when the database already has tables, unless ``force`` (which replaces them).
    """
    kind = _kind_of_file(path)
    backend = engine.dialect.name
    if kind != backend:
        raise RegistryError(
            f"{path} is a {'PostgreSQL' if kind == 'postgresql' else 'SQLite'} backup; it cannot "
            f"be restored into this {'PostgreSQL' if backend == 'postgresql' else 'SQLite'} "
            "database."
        )
    existing = table_names(engine)
    if existing and not force:
        raise RegistryError(
            f"The database already holds {len(existing)} tables; restoring would replace them. "
            "Restore into an empty database, or add --force to replace its content."
        )
    engine.dispose()  # no pooled connection may hold the old content (or a lock) meanwhile
    if backend == "postgresql":
        _run(
            [
                _pg_tool("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                f"--dbname={engine.url.database}",
                str(path),
            ],
            _pg_env(engine.url),
        )
        return
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    target = sqlite3.connect(_sqlite_path(engine))
    try:
        if source.execute("PRAGMA quick_check").fetchone() != ("ok",):
            raise RegistryError(f"{path} is a damaged SQLite file; nothing was restored.")
        source.backup(target)
    finally:
        target.close()
        source.close()
