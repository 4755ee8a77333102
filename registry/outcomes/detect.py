"""Recognise a file's format from its header, so a page can pre-select it and a refusal can say
"this looks like a police.uk file" instead of just listing missing columns."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from registry.outcomes.common import Source, header_of, refuse

if TYPE_CHECKING:
    from registry.outcomes.formats import ImportFormat


def detect_columns(columns: list[str]) -> ImportFormat[Any] | None:
    """The import format whose header these columns are (the table's first match), or ``None``."""
    # Imported here: the table imports the parsers, which import this module for `describe`.
    from registry.outcomes.formats import FORMATS

    return next((f for f in FORMATS if f.detect(columns)), None)


def detect(source: Source) -> ImportFormat[Any] | None:
    """The format of ``source`` judged from its header."""
    return detect_columns(header_of(source))


def describe(columns: list[str], *, command: str, fmt: str | None) -> str:
    """A hint for a refusal: which format the header looks like, if any.

    ``command`` (``crime`` or ``population``) and ``fmt`` are what the user ran (``None``: no
    ``--format``), so the hint names the other format or the other command, never the one
    already in use.
    """
    found = detect_columns(columns)
    if found is None or (found.kind, found.code) == (command, fmt):
        shown = ",".join(columns[:8]) + (",..." if len(columns) > 8 else "")
        return f"; its header is '{shown}'"
    if found.kind == command:
        return f"; it looks like {found.called} file (use --format {found.code})"
    return (
        f"; it looks like {found.called} file (import it with "
        f"`vru import {found.kind} --format {found.code}`)"
    )


def require_columns(
    file_name: str,
    columns: list[str],
    required: Iterable[str],
    what: str,
    *,
    command: str,
    fmt: str,
    header: list[str] | None = None,
) -> None:
    """Refuse a file whose ``columns`` lack any of ``required``, naming them, then ``what`` the
    file should be, then :func:`describe`'s hint from ``header`` (default: ``columns``)."""
    missing = [c for c in required if c not in columns]
    if missing:
        raise refuse(
            file_name,
            f"missing column(s) {', '.join(missing)}{what}"
            + describe(columns if header is None else header, command=command, fmt=fmt),
        )
