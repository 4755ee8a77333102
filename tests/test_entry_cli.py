"""`vru programmes`, `vru funding-streams`, `vru import|export deliveries`, `vru months`, and the
programme rules behind them."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import db, programmes
from registry.cli import cli
from registry.errors import ConflictError, RegistryError
from registry.schema import AuditEvent, Delivery, Programme
from tests.conftest import ADMIN, COMMISSIONER, FUNDER, STAFF
from tests.entry_helpers import OPEN, add_programmes, dump


def run(url: str, *args: str):
    return CliRunner().invoke(cli, ["--database-url", url, *args], catch_exceptions=False)


def test_programme_names_are_unique_and_edits_are_audited(session) -> None:
    add_programmes(session)
    with pytest.raises(ConflictError, match="already exists"):
        programmes.add_programme(
            session, principal=STAFF, name="  youth   mentoring ", funding_stream="Test Fund"
        )
    with pytest.raises(RegistryError, match="Did you mean 'Test Fund'"):
        programmes.add_programme(session, principal=STAFF, name="New", funding_stream="Test Fnd")
    with pytest.raises(RegistryError, match="before the start date"):
        programmes.add_programme(
            session,
            principal=STAFF,
            name="Backwards",
            funding_stream="Test Fund",
            start=dt.date(2022, 1, 1),
            end=dt.date(2021, 1, 1),
        )
    programmes.edit_programme(
        session, principal=STAFF, name=OPEN, changes={"partner": "Partner Ltd"}
    )
    closed = programmes.close_programme(
        session, principal=STAFF, name=OPEN, end=dt.date(2023, 3, 31)
    )
    session.commit()
    assert closed.end_date == dt.date(2023, 3, 31) and closed.partner == "Partner Ltd"
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.entity == "programme", AuditEvent.action == "amend")
    ).all()[-1]
    assert event.before["end_date"] is None and event.after["end_date"] == "2023-03-31"
    listed = {p["name"]: p for p in programmes.list_programmes(session, principal=ADMIN)}
    assert listed[OPEN]["status"] == "closed"


def test_closing_before_recorded_deliveries_is_refused(db_url, tmp_path) -> None:
    run(db_url, "funding-streams", "add", "Fund A", "--funder", "City Hall")
    run(db_url, "programmes", "add", "P1", "--funding-stream", "Fund A", "--start", "2020-01-01")
    (csv := tmp_path / "d.csv").write_text(
        "programme,borough,month,opportunities\nP1,Camden,2022-05,3\n", encoding="utf-8"
    )
    assert run(db_url, "import", "deliveries", str(csv)).exit_code == 0
    result = run(db_url, "programmes", "close", "P1", "--end", "2022-01-31")
    assert result.exit_code == 1 and "deliveries recorded up to 2022-05" in result.stderr


def test_programmes_and_funding_streams_commands(db_url) -> None:
    assert run(db_url, "funding-streams", "add", "Fund A", "--funder", "City Hall").exit_code == 0
    result = run(
        db_url,
        "programmes",
        "add",
        "Street Mentors",
        "--funding-stream",
        "fund a",
        "--partner",
        "Mentors CIC",
        "--start",
        "2021-04-01",
        "--end",
        "2024-03-31",
    )
    assert result.exit_code == 0, result.output
    dup = run(db_url, "programmes", "add", "street mentors", "--funding-stream", "Fund A")
    assert dup.exit_code == 1 and "already exists" in dup.stderr
    listed = json.loads(run(db_url, "programmes", "list", "--json").output)
    assert listed[0]["name"] == "Street Mentors" and listed[0]["partner"] == "Mentors CIC"
    assert listed[0]["start_date"] == "2021-04-01" and listed[0]["end_date"] == "2024-03-31"
    assert "Street Mentors" in run(db_url, "programmes", "list").output
    streams = json.loads(run(db_url, "funding-streams", "list", "--json").output)
    assert streams == [{"name": "Fund A", "funder": "City Hall", "programmes": 1}]
    bad_date = run(db_url, "programmes", "add", "X", "--funding-stream", "Fund A", "--start", "May")
    assert bad_date.exit_code == 2


def test_import_json_dry_run_and_rejection(db_url, tmp_path) -> None:
    engine = db.make_engine(db_url)
    with db.make_session_factory(engine)() as s:
        add_programmes(s)
    good = tmp_path / "good.csv"
    good.write_text(
        f"programme,borough,month,opportunities\n{OPEN},Camden,2022-01,4\n{OPEN},Brent,2022-01,2\n",
        encoding="utf-8",
    )
    dry = run(db_url, "import", "deliveries", str(good), "--dry-run", "--json")
    assert dry.exit_code == 0
    assert json.loads(dry.output) == {
        "added": 2,
        "amended": 0,
        "unchanged": 0,
        "rejected": 0,
        "errors": [],
        "refused": False,
    }
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Delivery)) == 0
    assert json.loads(run(db_url, "import", "deliveries", str(good), "--json").output)["added"] == 2
    again = json.loads(run(db_url, "import", "deliveries", str(good), "--json").output)
    assert (again["added"], again["amended"], again["unchanged"]) == (0, 0, 2)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        f"programme,borough,month,opportunities\n{OPEN},Camden,2022-01,5\n{OPEN},Brnt,2022-02,1\n",
        encoding="utf-8",
    )
    before = dump(engine)
    result = run(db_url, "import", "deliveries", str(bad), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "added": 0,
        "amended": 1,
        "unchanged": 0,
        "rejected": 1,
        "errors": [
            {
                "row": 3,
                "column": "borough",
                "value": "Brnt",
                "reason": "Not a London borough name or GSS code (E09000001 to E09000033). "
                "Did you mean 'Brent'?",
            }
        ],
        "refused": False,
    }
    assert dump(engine) == before
    text = run(db_url, "import", "deliveries", str(bad))
    assert text.exit_code == 1 and "row 3, borough: 'Brnt'" in text.stderr
    assert "Nothing was written." in text.stderr
    engine.dispose()


def test_import_summary_wording(db_url, tmp_path) -> None:
    engine = db.make_engine(db_url)
    with db.make_session_factory(engine)() as s:
        add_programmes(s)
    engine.dispose()
    good = tmp_path / "good.csv"
    good.write_text(f"programme,borough,month,opportunities\n{OPEN},Camden,2022-01,4\n")
    dry = run(db_url, "import", "deliveries", str(good), "--dry-run")
    assert dry.stdout.splitlines()[0] == "Would add 1, amend 0, leave 0 unchanged."
    saved = run(db_url, "import", "deliveries", str(good))
    assert saved.stdout.splitlines()[0] == "Added 1, amended 0, left 0 unchanged."
    assert run(db_url, "import", "deliveries", str(good)).stdout.strip() == "Nothing to change."
    for name, content in [
        ("header.csv", b"programme,place,month\nX,Camden,2022-01\n"),
        ("empty.csv", b""),
        ("binary.csv", bytes(range(256)) * 4),
    ]:
        path = tmp_path / name
        path.write_bytes(content)
        refused = run(db_url, "import", "deliveries", str(path))
        assert refused.exit_code == 1
        assert refused.stderr.startswith("File refused:\n  ")
        assert "Would add" not in refused.output and "row(s) rejected" not in refused.output
        summary = json.loads(run(db_url, "import", "deliveries", str(path), "--json").stdout)
        assert summary["refused"] is True and summary["errors"]


@pytest.mark.slow
def test_template_and_export_round_trip(seeded_url, tmp_path) -> None:
    template = tmp_path / "template.csv"
    assert run(seeded_url, "import", "deliveries", "--template", str(template)).exit_code == 0
    assert template.read_text(encoding="utf-8").splitlines()[0] == (
        "programme,borough,month,opportunities,participants,spend_gbp"
    )
    xlsx_template = tmp_path / "template.xlsx"
    assert run(seeded_url, "import", "deliveries", "--template", str(xlsx_template)).exit_code == 0
    assert xlsx_template.read_bytes().startswith(b"PK")
    engine = db.make_engine(seeded_url)
    for name in ("all.csv", "all.xlsx"):
        path = tmp_path / name
        exported = run(seeded_url, "export", "deliveries", str(path))
        assert exported.exit_code == 0, exported.output
        before = dump(engine)["delivery"]
        result = run(seeded_url, "import", "deliveries", str(path), "--json")
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output)
        assert summary["added"] == summary["amended"] == summary["rejected"] == 0
        with engine.connect() as conn:
            live = conn.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.deleted_at.is_(None))
            )
        assert summary["unchanged"] == live
        assert dump(engine)["delivery"] == before
    engine.dispose()
    assert run(seeded_url, "export", "deliveries", str(tmp_path / "x.txt")).exit_code == 1


def test_months_sign_off_reopen_and_missing(db_url, tmp_path) -> None:
    engine = db.make_engine(db_url)
    with db.make_session_factory(engine)() as s:
        add_programmes(s)
        assert s.scalar(select(func.count()).select_from(Programme)) == 2
    engine.dispose()
    path = tmp_path / "d.csv"
    path.write_text(
        f"programme,borough,month,opportunities\n{OPEN},Camden,2022-01,4\n", encoding="utf-8"
    )
    run(db_url, "import", "deliveries", str(path))
    assert run(db_url, "months", "sign-off", "2022-01", "--note", "done").exit_code == 0
    path.write_text(
        f"programme,borough,month,opportunities\n{OPEN},Camden,2022-01,5\n", encoding="utf-8"
    )
    refused = run(db_url, "import", "deliveries", str(path))
    assert refused.exit_code == 1 and "signed off" in refused.stderr
    assert run(db_url, "months", "reopen", "2022-01").exit_code == 2  # --reason is required
    assert run(db_url, "months", "reopen", "2022-01", "--reason", "fix").exit_code == 0
    assert run(db_url, "import", "deliveries", str(path)).exit_code == 0
    missing = run(db_url, "months", "missing", "--from", "2022-01", "--to", "2022-03")
    assert missing.exit_code == 0
    lines = missing.output.splitlines()
    assert lines[0].split() == ["Month", "Programme", "Borough", "Status", "Due", "Received"]
    assert lines[3].split()[:5] == ["2022-02", "Youth", "Mentoring", "Camden", "missing"]


def test_funders_see_only_their_own_streams_and_programmes(db_url) -> None:
    run(db_url, "funding-streams", "add", "Fund A", "--funder", "City Hall")
    run(db_url, "funding-streams", "add", "Fund B", "--funder", "Other Trust")
    run(db_url, "programmes", "add", "PA", "--funding-stream", "Fund A", "--start", "2020-01-01")
    run(db_url, "programmes", "add", "PB", "--funding-stream", "Fund B", "--start", "2020-01-01")
    engine = db.make_engine(db_url)
    with Session(engine) as session:
        assert [s["name"] for s in programmes.list_funding_streams(session, principal=FUNDER)] == [
            "Fund A"
        ]
        assert [p["name"] for p in programmes.list_programmes(session, principal=FUNDER)] == ["PA"]
        assert len(programmes.list_programmes(session, principal=STAFF)) == 2
        assert len(programmes.list_funding_streams(session, principal=COMMISSIONER)) == 2
    engine.dispose()
    run(
        db_url,
        "users",
        "add",
        "fran",
        "--role",
        "funder",
        "--funder",
        "City Hall",
        "--password",
        "funder-password-1",
    )
    listed = run(db_url, "--as", "fran", "programmes", "list", "--json")
    assert listed.exit_code == 0
    assert [p["name"] for p in json.loads(listed.stdout)] == ["PA"]
    streams = run(db_url, "--as", "fran", "funding-streams", "list", "--json")
    assert [s["name"] for s in json.loads(streams.stdout)] == ["Fund A"]
    assert "PB" not in run(db_url, "--as", "fran", "programmes", "list").stdout


def test_export_to_a_missing_folder_is_one_plain_line(db_url, tmp_path) -> None:
    result = run(db_url, "export", "deliveries", str(tmp_path / "nowhere" / "x.csv"))
    assert result.exit_code == 1
    assert "the folder" in result.stderr and "does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Errno" not in result.stderr and "Cannot save file" not in result.stderr
    (tmp_path / "afile").write_text("x")
    result = run(db_url, "export", "deliveries", str(tmp_path / "afile" / "x.xlsx"))
    assert result.exit_code == 1 and "is not a folder" in result.stderr


def test_import_received_on_and_backfill_decide_lateness(db_url, tmp_path) -> None:
    engine = db.make_engine(db_url)
    with db.make_session_factory(engine)() as s:
        add_programmes(s)
    engine.dispose()
    path = tmp_path / "d.csv"
    path.write_text(
        f"programme,borough,month,opportunities\n{OPEN},Camden,2022-01,4\n{OPEN},Brent,2022-01,2\n",
        encoding="utf-8",
    )
    bad = run(db_url, "import", "deliveries", str(path), "--received-on", "2022-13-01")
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    assert (
        run(db_url, "import", "deliveries", str(path), "--received-on", "2022-02-10").exit_code == 0
    )
    path.write_text(
        f"programme,borough,month,opportunities\n{OPEN},Camden,2022-02,4\n", encoding="utf-8"
    )
    assert run(db_url, "import", "deliveries", str(path), "--backfill").exit_code == 0
    missing = run(db_url, "months", "missing", "--from", "2022-01", "--to", "2022-02")
    # January arrived on time, Camden's February is a backfill, Brent's February never came.
    assert "late" not in missing.output.replace("0 late", "")
    assert "Brent" in missing.output and "1 missing, 0 late." in missing.output
    signed = run(db_url, "months", "sign-off", "2022-02")
    assert signed.exit_code == 0
    assert "2022-02 is signed off with 1 of 2 expected returns missing." in signed.output
