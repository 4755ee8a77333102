"""Sign-off and an import racing on PostgreSQL (issue #19).

An import checks that none of its months is signed off, then writes and commits. Before, an
admin could sign a month off between that check and the commit (transactions run side by side
on PostgreSQL), and the import then wrote into a signed-off month. Now the check takes a lock that
writes share and sign-off takes alone, held until commit: while an import is paused just before
committing (the fault hook), signing off waits for it, and once the import is gone the month
holds nothing it did not hold when signed off.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from registry import db, deliveries
from registry.schema import Delivery, MonthSignOff
from tests import fault_helpers as fh
from tests.conftest import ADMIN

pytestmark = pytest.mark.slow
MONTH = dt.date(2024, 1, 1)


def _sign_off(engine: Engine, wait: str) -> str | None:
    """Sign January off, waiting at most ``wait`` for locks; the error, or None when done."""
    try:
        with db.session_scope(engine) as s:
            s.execute(text(f"SET LOCAL lock_timeout = '{wait}'"))
            deliveries.sign_off_month(s, principal=ADMIN, month=MONTH, note="returns complete")
    except DBAPIError as exc:
        return str(exc.orig)
    return None


def test_sign_off_waits_for_an_import_paused_before_commit(engine, db_url, tmp_path) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time; the race is PostgreSQL's")
    names = fh.programme_names(2)
    fh.add_programmes(engine, names)
    path = tmp_path / "january.csv"
    path.write_text(
        "programme,borough,month,opportunities\n"
        + "".join(f"{n},{b},2024-01,7\n" for n in names for b in ("Camden", "Hackney")),
        encoding="utf-8",
    )
    process = fh.start_vru(
        db_url,
        "import",
        "deliveries",
        str(path),
        **{db.FAULT_PAUSE_VARIABLE: "sign_off_checked"},
    )
    try:
        fh.wait_for_pause(process)
        # The import has checked that January is open and not committed: sign-off waits.
        error = _sign_off(engine, "2s")
        assert error is not None and "lock timeout" in error
        result: list[str | None] = []
        other = threading.Thread(target=lambda: result.append(_sign_off(engine, "30s")))
        other.start()
    finally:
        fh.kill(process)
    other.join(timeout=60)
    assert result == [None]  # signed off as soon as the import was gone
    with db.session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(MonthSignOff)) == 1
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0
    assert fh.integrity_problems(engine) == []
