"""No file the product writes for people to open carries a live formula (issue #15).

A registry whose every piece of free text is a formula (programme, funding stream, funder,
partner, intervention type, a deletion reason, a sign-off note, an unknown programme in an upload)
is written out every way the product writes files: each CLI command that writes a file, and every
download button on every page of the app. Every CSV (also inside a zip) and XLSX is checked:
no text cell a spreadsheet would run, no XLSX formula cell. The export that must re-import
unchanged still does: the importer strips the guard.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from registry import db, deliveries, programmes
from registry.cli import cli
from registry.files import DANGEROUS, neutralise, restore
from tests.conftest import ADMIN

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
STREAM = '=HYPERLINK("http://example.invalid","Fund")'
FUNDER = "@SUM(1+1)"
PROGRAMME = "=1+1"
PARTNER = "+44 20 7946 0000"
KIND = "-2+3"
REASON = "=cmd|' /C calc'!A0"
NOTE = "\t=1"
UNKNOWN = "=2+2"


def test_neutralise_and_restore_are_exact_inverses() -> None:
    for text in [
        "=1+1",
        "+1",
        "-2",
        "@x",
        "\t=1",
        "\r=1",
        "'=1",
        "''=1",
        "'",
        "'plain",
        "plain",
        "",
        "It's fine",
    ]:
        assert restore(neutralise(text)) == text
        guarded = neutralise(text)
        assert not guarded.startswith(DANGEROUS)
    assert neutralise("'quoted' name") == "'quoted' name"  # no guard where none is needed
    assert neutralise(12) == 12 and neutralise(None) is None and neutralise(-1.5) == -1.5


def _formula_registry(url: str) -> None:
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        programmes.add_funding_stream(s, principal=ADMIN, name=STREAM, funder=FUNDER)
        programmes.add_programme(
            s,
            principal=ADMIN,
            name=PROGRAMME,
            funding_stream=STREAM,
            partner=PARTNER,
            intervention_type=KIND,
            start=dt.date(2020, 1, 1),
        )
        rows = "".join(
            f'"{PROGRAMME}",{borough},{month},{n}\n'
            for n, (borough, month) in enumerate(
                [(b, f"2023-{m:02d}") for b in ("Camden", "Hackney") for m in range(1, 13)],
                start=3,
            )
        )
        deliveries.import_file(
            s,
            principal=ADMIN,
            content=f"programme,borough,month,opportunities\n{rows}".encode(),
            file_name="formulas.csv",
        )
        deliveries.delete_delivery(
            s,
            principal=ADMIN,
            programme=PROGRAMME,
            borough="Hackney",
            month=dt.date(2023, 12, 1),
            reason=REASON,
        )
        deliveries.sign_off_month(s, principal=ADMIN, month=dt.date(2023, 1, 1), note=NOTE)
    engine.dispose()


@pytest.fixture
def url(seeded_url):
    _formula_registry(seeded_url)
    return seeded_url


def _runs(text: str) -> bool:
    """Would a spreadsheet run this text cell? Numbers (``-6.9``) are numbers, not formulas."""
    if not text.startswith(DANGEROUS):
        return False
    try:
        float(text.strip().rstrip("%").replace(",", ""))
    except ValueError:
        return True
    return False


def _cells(name: str, data: bytes) -> Iterator[tuple[str, object, bool]]:
    """Every cell of a file (CSV, XLSX, or a zip of them): (where, value, is a formula)."""
    if data.startswith(b"PK"):
        archive = zipfile.ZipFile(io.BytesIO(data))
        if "xl/workbook.xml" in archive.namelist():
            book = openpyxl.load_workbook(io.BytesIO(data))
            for sheet in book.worksheets:
                for row in sheet.iter_rows():
                    for cell in row:
                        yield (
                            f"{name}!{sheet.title}!{cell.coordinate}",
                            cell.value,
                            (
                                cell.data_type == "f"
                                or (
                                    isinstance(cell.value, str) and cell.value.startswith(DANGEROUS)
                                )
                            ),
                        )
            return
        for entry in archive.namelist():
            if entry.endswith(".csv"):
                yield from _cells(f"{name}/{entry}", archive.read(entry))
        return
    for r, row in enumerate(csv.reader(io.StringIO(data.decode("utf-8-sig")))):
        for c, value in enumerate(row):
            yield f"{name}:{r + 1}:{c + 1}", value, _runs(value)


def live_formulas(name: str, data: bytes) -> list[str]:
    return [f"{where} {value!r}" for where, value, runs in _cells(name, data) if runs]


def texts(name: str, data: bytes) -> set[object]:
    return {value for _w, value, _f in _cells(name, data)}


def run(url: str, *args: str):
    return CliRunner().invoke(cli, ["--database-url", url, *args], catch_exceptions=False)


@pytest.mark.slow
def test_every_file_the_cli_writes_is_inert(url, tmp_path) -> None:
    out = tmp_path
    commands = {
        "deliveries.csv": ["export", "deliveries", str(out / "deliveries.csv")],
        "deliveries.xlsx": ["export", "deliveries", str(out / "deliveries.xlsx")],
        "template.csv": ["import", "deliveries", "--template", str(out / "template.csv")],
        "template.xlsx": ["import", "deliveries", "--template", str(out / "template.xlsx")],
        "report.zip": [
            "report",
            "--programme",
            PROGRAMME,
            "--from",
            "2023-01",
            "--to",
            "2023-12",
            "--format",
            "csv",
            "--out",
            str(out / "report.zip"),
        ],
        "report.xlsx": [
            "report",
            "--funding-stream",
            STREAM,
            "--from",
            "2023-01",
            "--to",
            "2023-12",
            "--format",
            "xlsx",
            "--out",
            str(out / "report.xlsx"),
        ],
        "audit.csv": ["audit", "--csv", str(out / "audit.csv")],
        "outcomes.csv": ["outcomes", "export", str(out / "outcomes.csv")],
        "population.csv": ["population", "export", str(out / "population.csv")],
    }
    for name, args in commands.items():
        result = run(url, *args)
        assert result.exit_code == 0, (name, result.output)
        data = (out / name).read_bytes()
        assert live_formulas(name, data) == [], name
    folder = out / "report-folder"
    assert (
        run(
            url,
            "report",
            "--all",
            "--from",
            "2023-01",
            "--to",
            "2023-12",
            "--format",
            "csv",
            "--out",
            str(folder),
        ).exit_code
        == 0
    )
    for path in folder.iterdir():
        if path.suffix == ".csv":
            assert live_formulas(path.name, path.read_bytes()) == [], path.name
    # The formulas are there, guarded, not dropped.
    assert neutralise(PROGRAMME) in texts("d", (out / "deliveries.csv").read_bytes())
    assert neutralise(PROGRAMME) in texts("d", (out / "deliveries.xlsx").read_bytes())
    audit = texts("a", (out / "audit.csv").read_bytes())
    assert any(str(v).startswith(neutralise(f"{PROGRAMME}, Hackney")) for v in audit)
    assert any(REASON in str(v) for v in audit)
    report = (out / "report.xlsx").read_bytes()
    assert any(STREAM in str(v) for v in texts("r", report))


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_the_delivery_export_still_re_imports_unchanged(url, tmp_path, suffix) -> None:
    path = tmp_path / f"deliveries{suffix}"
    assert run(url, "export", "deliveries", str(path)).exit_code == 0
    again = run(url, "import", "deliveries", str(path), "--dry-run", "--json")
    assert again.exit_code == 0, again.output
    summary = again.output
    assert '"added": 0' in summary and '"amended": 0' in summary and '"rejected": 0' in summary


def _page_paths() -> list[str]:
    source = (ROOT / "streamlit_app.py").read_text(encoding="utf-8")
    return sorted(set(re.findall(r'"(dashboards/\w+\.py)"', source)) - {"dashboards/sign_in.py"})


@pytest.fixture
def stored_files(monkeypatch):
    """Every download a page offered in AppTest's last run, by button key: (file name, bytes)."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import app_test

    stores: list[MemoryMediaFileStorage] = []

    class KeptStorage(MemoryMediaFileStorage):
        def __init__(self, media_endpoint: str) -> None:
            super().__init__(media_endpoint)
            stores.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", KeptStorage)

    def read(at: AppTest) -> dict[str, tuple[str, bytes]]:
        found = {}
        for button in at.get("download_button"):
            if not button.proto.url:
                continue  # built on click (a chart's PNG): not a table
            stored = stores[-1].get_file(button.proto.url.rsplit("/", 1)[-1])
            found[button.key] = (stored.filename or button.key, stored.content)
        return found

    return read


def _spreadsheets(files: dict[str, tuple[str, bytes]]) -> dict[str, bytes]:
    return {
        f"{key} ({name})": data
        for key, (name, data) in files.items()
        if not data.startswith((b"%PDF", b"\x89PNG"))
    }


@pytest.mark.slow
def test_every_download_on_every_page_is_inert(url, monkeypatch, stored_files) -> None:
    monkeypatch.setenv("VRU_DATABASE_URL", url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["principal"] = ADMIN
    at.run()
    offered: dict[str, bytes] = {}
    for path in _page_paths():
        at.switch_page(path).run()
        assert not at.exception, path
        if path == "dashboards/downloads.py":
            at.radio(key="report_kind").set_value("Programme").run()
            at.selectbox(key="report_programme").select(PROGRAMME)
            year = next(y for y in at.selectbox(key="report_year").options if "2023" in y)
            at.selectbox(key="report_year").select(year).run()
            assert not at.exception and not at.error
        if path == "dashboards/entry.py":
            bad = f'programme,borough,month,opportunities\n"{UNKNOWN}",Camden,2023-01,4\n'
            at.file_uploader(key="upload_file_0").set_value(
                ("bad.csv", bad.encode(), "text/csv")
            ).run()
        if path == "dashboards/completeness.py":
            at.text_input(key="complete_from").input("2023-01")
            at.text_input(key="complete_to").input("2024-06").run()
        files = _spreadsheets(stored_files(at))
        offered |= {f"{path}: {k}": v for k, v in files.items()}
    problems = {name: live_formulas(name, data) for name, data in offered.items()}
    assert {k: v for k, v in problems.items() if v} == {}

    # The downloads that carry the registry's own text carry it guarded.
    def offered_by(key: str) -> bytes:
        return next(v for k, v in offered.items() if f": {key} (" in k)

    assert neutralise(UNKNOWN) in texts("e", offered_by("errors_csv"))
    assert neutralise(PROGRAMME) in texts("p", offered_by("programmes_csv"))
    assert neutralise(PROGRAMME) in texts("g", offered_by("gaps_csv"))
    assert any(neutralise(PROGRAMME) in str(v) for v in texts("x", offered_by("dl_xlsx")))
    assert any(REASON in str(v) for v in texts("a", offered_by("audit_csv")))
    assert len(offered) >= 12  # every page's tables, not a few
