"""Settings read from the environment, in one place.

Every entry point (the CLI, Alembic, the Streamlit app, the tests) calls :func:`get_settings`, so
they agree on which database they talk to. A test overrides a setting by setting the environment
variable or by passing an explicit URL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SQLITE_FILE = "vru.db"


class ConfigError(ValueError):
    """A setting in the environment is unusable; the message says which and why."""


def normalise_database_url(url: str) -> str:
    """Return ``url`` with the driver this project uses spelled out.

    ``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://`` (psycopg 3), so a URL
    copied from a hosting dashboard works as it is.
    """
    url = url.strip()
    if not url:
        raise ConfigError("VRU_DATABASE_URL is empty; unset it to use the local SQLite file.")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if not (url.startswith("sqlite") or url.startswith("postgresql+")):
        raise ConfigError(
            "VRU_DATABASE_URL must start with sqlite:/// or postgresql://, "
            f"got {url.split(':')[0]!r}."
        )
    return url


def default_database_url() -> str:
    return f"sqlite:///{Path.cwd() / DEFAULT_SQLITE_FILE}"


@dataclass(frozen=True)
class Settings:
    """The registry's settings. Build one with :func:`get_settings`."""

    database_url: str
    migration_database_url: str | None = None
    suppression_threshold: int = 10
    max_upload_bytes: int = 50 * 1024 * 1024
    max_upload_rows: int = 500_000
    max_upload_columns: int = 1_000
    max_unzipped_bytes: int = 512 * 1024 * 1024
    parse_memory_mb: int = 1_024
    parse_seconds: int = 300
    lockout_attempts: int = 5
    lockout_minutes: int = 15
    # Signed-in sessions (registry/sessions.py): ended after this long without an action, and
    # after this long whatever happens. The secret signs the session cookie; unset, each server
    # process makes its own, so a restart signs everyone out.
    session_idle_minutes: int = 8 * 60
    session_absolute_hours: int = 7 * 24
    session_secret: str | None = field(default=None, repr=False)
    # The interface `vru serve` listens on: this machine only unless told otherwise.
    server_address: str = "127.0.0.1"

    @property
    def max_upload_megabytes(self) -> int:
        """The upload limit in whole megabytes (rounded up), as Streamlit and nginx take it."""
        return -(-self.max_upload_bytes // (1024 * 1024))


def _int_env(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}.")
    return value


def get_settings(database_url: str | None = None) -> Settings:
    """Read settings from the environment; ``database_url`` overrides ``VRU_DATABASE_URL``."""
    url = database_url or os.environ.get("VRU_DATABASE_URL") or default_database_url()
    migration = os.environ.get("VRU_MIGRATION_DATABASE_URL", "").strip()
    return Settings(
        database_url=normalise_database_url(url),
        migration_database_url=normalise_database_url(migration) if migration else None,
        suppression_threshold=_int_env("VRU_SUPPRESSION_THRESHOLD", 10, minimum=1),
        max_upload_bytes=_int_env("VRU_MAX_UPLOAD_BYTES", 50 * 1024 * 1024, minimum=1),
        max_upload_rows=_int_env("VRU_MAX_UPLOAD_ROWS", 500_000, minimum=1),
        max_upload_columns=_int_env("VRU_MAX_UPLOAD_COLUMNS", 1_000, minimum=6),
        max_unzipped_bytes=_int_env("VRU_MAX_UNZIPPED_BYTES", 512 * 1024 * 1024, minimum=1),
        parse_memory_mb=_int_env("VRU_PARSE_MEMORY_MB", 1_024, minimum=64),
        parse_seconds=_int_env("VRU_PARSE_SECONDS", 300, minimum=1),
        lockout_attempts=_int_env("VRU_LOCKOUT_ATTEMPTS", 5, minimum=1),
        lockout_minutes=_int_env("VRU_LOCKOUT_MINUTES", 15, minimum=1),
        session_idle_minutes=_int_env("VRU_SESSION_IDLE_MINUTES", 8 * 60, minimum=1),
        session_absolute_hours=_int_env("VRU_SESSION_ABSOLUTE_HOURS", 7 * 24, minimum=1),
        session_secret=_secret_env("VRU_SESSION_SECRET"),
        server_address=os.environ.get("VRU_SERVER_ADDRESS", "").strip() or "127.0.0.1",
    )


def _secret_env(name: str) -> str | None:
    raw = os.environ.get(name, "").strip()
    if raw and len(raw) < 32:
        raise ConfigError(f"{name} must be at least 32 characters (a random string), if set.")
    return raw or None
