"""Errors a user can act on. The CLI prints them as one line; pages show them as messages."""

from __future__ import annotations


class RegistryError(Exception):
    """Input or state the registry refuses, with a message written for the person who sent it."""


class NotFoundError(RegistryError):
    """Something named does not exist."""


class PermissionDenied(RegistryError):
    """The signed-in user's role does not allow this action."""


class ConflictError(RegistryError):
    """The data changed since it was read, or a unique name is already taken."""


# SQLSTATE codes (PostgreSQL) and SQLite result names that have a plain-English explanation.
_READ_ONLY = {"25006", "SQLITE_READONLY"}
_FULL = {"53100", "53200", "54000", "SQLITE_FULL"}
_CONTENTION = {"40001", "40P01", "55P03", "SQLITE_BUSY", "SQLITE_LOCKED"}


def database_error_message(exc: BaseException) -> str:
    """One plain-English line for an error raised by the database driver.

    ``exc`` is a SQLAlchemy ``DBAPIError``; its ``orig`` is the driver's exception, which carries
    a SQLSTATE (psycopg) or a SQLite result name (``sqlite3`` on Python 3.11+). The driver's own
    first line is kept in brackets for whoever investigates.
    """
    orig = getattr(exc, "orig", None) or exc
    text = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    code = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None) or ""
    # SQLite's extended names (SQLITE_READONLY_DBMOVED, SQLITE_BUSY_SNAPSHOT) share a prefix.
    family = "_".join(code.split("_")[:2]) if code.startswith("SQLITE_") else code
    lowered = text.lower()
    if family in _READ_ONLY or "readonly database" in lowered or "read-only" in lowered:
        return (
            "The database is read-only, so nothing was saved. Ask the administrator to make it "
            f"writable, then try again. ({text})"
        )
    if family in _FULL or "disk is full" in lowered or "no space left" in lowered:
        return (
            "The disk holding the database is full, so nothing was saved. Free some space, then "
            f"try again. ({text})"
        )
    if family in _CONTENTION or "database is locked" in lowered or "deadlock" in lowered:
        return (
            "Someone else was saving to the same data at the same moment, so nothing was saved. "
            f"Try again. ({text})"
        )
    if (
        family == "SQLITE_CANTOPEN"
        or "unable to open database" in lowered
        or (
            code.startswith("08")  # PostgreSQL connection exceptions
            or "connection refused" in lowered
            or "could not connect" in lowered
        )
    ):
        return (
            "The database cannot be opened: check VRU_DATABASE_URL (or --database-url), that "
            f"its folder exists and that the server is running. ({text})"
        )
    return f"The database refused the change: {text}"
