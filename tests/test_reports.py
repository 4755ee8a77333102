"""Funder outcome summaries: correct in every format, suppressed, inert, reproducible, scoped."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import func, select

from registry import db
from registry.auth import Principal
from registry.cli import cli
from registry.errors import PermissionDenied, RegistryError
from registry.periods import Window
from registry.reports.build import Scope, _outcomes, build_report, report_choices
from registry.reports.disclosure import TOTAL, Participants, shown
from registry.reports.pdf import _bar_chart
from registry.reports.render import render
from registry.schema import (
    Borough,
    Delivery,
    FundingStream,
    ImportBatch,
    OutcomeCount,
    OutcomeMeasure,
    Programme,
)
from tests.analysis_db import load_small
from tests.conftest import ADMIN

FY = Window(dt.date(2023, 4, 1), dt.date(2024, 3, 1))
INJECTION = '=HYPERLINK("http://x","y")'
CITY_HALL = Principal("fran", "funder", funder="City Hall")


@pytest.fixture
def small(engine):
    """Two funding streams; participants small in some cells on purpose."""
    with db.session_scope(engine) as s:
        ids = dict(s.execute(select(Borough.name, Borough.id)).tuples().all())
        mine = FundingStream(name="Young Londoners", funder="City Hall")
        other = FundingStream(name="Serious Violence", funder="Home Office")
        s.add_all([mine, other])
        s.flush()
        p1 = Programme(name=INJECTION, funding_stream_id=mine.id, start_date=dt.date(2020, 1, 1))
        p2 = Programme(name="Mentors", funding_stream_id=mine.id, start_date=dt.date(2020, 1, 1))
        p3 = Programme(name="Elsewhere", funding_stream_id=other.id, start_date=dt.date(2020, 1, 1))
        s.add_all([p1, p2, p3])
        s.flush()
        batch = ImportBatch(kind="test", created_by="t")
        s.add(batch)
        s.flush()
        rows = [  # programme, borough, month, opportunities, participants, spend
            (p1, "Camden", dt.date(2023, 4, 1), 40, 30, Decimal("4000.00")),
            (p1, "Camden", dt.date(2023, 5, 1), 20, 4, None),  # small: primary
            (p2, "Hackney", dt.date(2023, 4, 1), 55, 25, Decimal("2200.00")),
            (p2, "Hackney", dt.date(2023, 5, 1), 35, 22, Decimal("1400.00")),
            (p2, "Lambeth", dt.date(2023, 4, 1), 12, None, None),
            (p2, "Lambeth", dt.date(2023, 5, 1), 18, 15, Decimal("900.00")),
            (p2, "Camden", dt.date(2022, 5, 1), 99, 50, None),  # before the period
            (p3, "Camden", dt.date(2023, 4, 1), 500, 300, None),  # another funder
        ]
        for p, b, m, o, part, spend in rows:
            s.add(
                Delivery(
                    programme_id=p.id,
                    borough_id=ids[b],
                    month=m,
                    opportunities=o,
                    participants=part,
                    spend_gbp=spend,
                    updated_by="t",
                )
            )
        measure = s.scalar(select(OutcomeMeasure.id).where(OutcomeMeasure.code == "homicide"))
        for b, m, c in [
            ("Camden", dt.date(2023, 6, 1), 2),
            ("Camden", dt.date(2022, 6, 1), 1),
            ("Hackney", dt.date(2023, 7, 1), 3),
            ("Westminster", dt.date(2023, 7, 1), 9),
        ]:
            s.add(
                OutcomeCount(
                    measure_id=measure,
                    source="long",
                    borough_id=ids[b],
                    month=m,
                    count=c,
                    import_batch_id=batch.id,
                )
            )
    return engine


YOUNG_LONDONERS = Scope("funding_stream", "Young Londoners")


def _build(engine, principal=ADMIN, scope=YOUNG_LONDONERS):
    with db.session_scope(engine) as s:
        return build_report(s, principal=principal, scope=scope, window=FY)


def _zip_tables(data: bytes) -> dict[str, list[dict[str, str]]]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    return {
        n.removesuffix(".csv"): list(csv.DictReader(io.StringIO(archive.read(n).decode())))
        for n in archive.namelist()
        if n.endswith(".csv")
    }


def test_figures_equal_direct_queries_in_every_format(small) -> None:
    report = _build(small)
    with db.session_scope(small) as s:
        stream = s.scalar(select(FundingStream.id).where(FundingStream.name == "Young Londoners"))
        direct = dict(
            s.execute(
                select(Borough.name, func.sum(Delivery.opportunities))
                .join(Delivery, Delivery.borough_id == Borough.id)
                .join(Programme, Programme.id == Delivery.programme_id)
                .where(
                    Programme.funding_stream_id == stream, Delivery.month.between(FY.start, FY.end)
                )
                .group_by(Borough.name)
            )
            .tuples()
            .all()
        )
    assert direct == {"Camden": 60, "Hackney": 90, "Lambeth": 30}
    total = sum(direct.values())
    assert report.headline["opportunities"] == total == 180
    tables = _zip_tables(render(report, "csv"))
    by_borough = {r["borough"]: int(r["opportunities"]) for r in tables["delivery_by_borough"]}
    assert by_borough == direct | {TOTAL: total}
    workbook = load_workbook(io.BytesIO(render(report, "xlsx")))
    sheet = workbook["delivery_by_borough"]
    assert sheet.freeze_panes == "A2"
    xlsx = {row[0]: row[2] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert xlsx == direct | {TOTAL: total}
    assert all(isinstance(v, int) for v in xlsx.values())  # numbers as numbers
    assert "Notes" in workbook.sheetnames
    pdf_text = "".join(
        page.extract_text() for page in PdfReader(io.BytesIO(render(report, "pdf"))).pages
    )
    pdf_text = " ".join(pdf_text.split())  # table cells wrap within their columns
    assert "180" in pdf_text and "Young Londoners" in pdf_text
    assert "Homicide" in pdf_text and "Data sources" in pdf_text
    # Spend and cost cover only rows with spend: (4000 + 2200 + 1400 + 900) / (40 + 55 + 35 + 18)
    totals = tables["delivery_by_borough"][-1]
    assert float(totals["spend_gbp"]) == 8500.0
    assert float(totals["cost_per_opportunity_gbp"]) == round(8500 / 148, 2)
    # Outcomes: homicide in the boroughs reached (Camden, Hackney, Lambeth), not Westminster.
    outcomes = tables["outcomes"][0]
    assert (outcomes["measure"], outcomes["current_count"], outcomes["baseline_count"]) == (
        "Homicide",
        "5",
        "1",
    )
    assert outcomes["current_start"] == "2023-04" and outcomes["baseline_end"] == "2023-03"
    # Counts are stored for 2 of the 12 months this year and 1 of 12 a year earlier: no change is
    # worked out from part-loaded windows (5 against 1 is not a rise of 400%), and the PDF says
    # how much of each window is loaded.
    assert (outcomes["current_months_with_data"], outcomes["baseline_months_with_data"]) == (
        "2",
        "1",
    )
    assert outcomes["change_pct"] == ""
    assert "5 (2023-04 to 2024-03; 2 of 12 months loaded)" in pdf_text
    # Gun crime has no count stored in either window: blank, never 0, and said in words.
    gun = next(r for r in tables["outcomes"] if r["measure"] == "Gun crime")
    assert (gun["current_count"], gun["baseline_count"]) == ("", "")
    assert "no counts loaded (2023-04 to 2024-03)" in pdf_text


def test_small_participant_counts_are_hidden_and_every_figure_derived_from_them(small) -> None:
    report = _build(small)
    tables = _zip_tables(render(report, "csv"))
    cells = {
        (r["borough"], r["period"]): (
            r["participants"],
            r["participants_min"],
            r["participants_max"],
        )
        for r in tables["participants_by_borough_month"]
    }
    # Camden's May (4 of 20 opportunities) is hidden: 0 to 9.
    assert cells[("Camden", "2023-05")] == ("<10", "0", "9")
    assert cells[("Camden", "2023-04")] == ("30", "30", "30")
    assert cells[("Lambeth", "2023-04")] == ("", "", "")  # not recorded
    # Totals are worked out from the protected cells, so Camden's total is a range, not 34.
    assert cells[("Camden", TOTAL)] == ("30 to 39", "30", "39")
    assert cells[("Total", "2023-05")] == ("37 to 46", "37", "46")
    assert cells[(TOTAL, TOTAL)] == ("92 to 101", "92", "101")
    every_value = [v for t in tables.values() for r in t for v in r.values()]
    assert "4" not in every_value and "34" not in every_value and "96" not in every_value
    by_borough = {r["borough"]: r["participants"] for r in tables["delivery_by_borough"]}
    assert by_borough == {
        "Camden": "30 to 39",
        "Hackney": "47",
        "Lambeth": "15",
        TOTAL: "92 to 101",
    }
    assert report.headline["participants"] == "92 to 101"
    workbook = load_workbook(io.BytesIO(render(report, "xlsx")))
    values = [
        c
        for row in workbook["participants_by_borough_month"].iter_rows(values_only=True)
        for c in row
    ]
    assert "<10" in values and 4 not in values and 34 not in values
    notes = workbook["Notes"]["A3"].parent
    assert any("Disclosure control" in str(c.value) for row in notes.iter_rows() for c in row)
    assert any("Disclosure control" in n and "finest grain" in n for n in report.notes)
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(render(report, "pdf"))).pages)
    text = " ".join(text.split())
    assert "Camden 60 30 to 39 " in text and "34" not in text.split("Delivery by borough")[1]
    assert "Disclosure control" in text


def test_protected_figures_hide_zero_and_small_counts_within_opportunities() -> None:
    rows = pd.DataFrame(
        {
            "borough": ["A", "A", "A", "B", "B"],
            "period": ["m1", "m2", "m3", "m1", "m2"],
            "participants": [0.0, 3.0, 50.0, np.nan, 12.0],
            "opportunities": [5, 4, 60, 7, 12],
        }
    )
    protected = Participants.of(rows, 10)
    assert protected.hidden == 2  # 0 and 3; 50 and 12 shown, B's m1 not recorded
    by = protected.by("borough")
    # A: 50 shown, plus 0..5 and 0..4 (never more than the opportunities): 50 to 59.
    assert by.loc["A"].tolist() == ["50 to 59", 50, 59]
    assert by.loc["B"].tolist() == [12, 12, 12]
    assert by.loc[TOTAL].tolist() == ["62 to 71", 62, 71]
    assert shown(0, 9, 2, 10) == "<10" and shown(0, 0, 0, 10) is None and shown(5, 5, 1, 10) == 5


def test_only_admins_raise_the_threshold_and_never_below_the_configured(small, monkeypatch) -> None:
    with db.session_scope(small) as s, pytest.raises(PermissionDenied, match="administrator"):
        build_report(s, principal=CITY_HALL, scope=YOUNG_LONDONERS, window=FY, threshold=1)
    with db.session_scope(small) as s, pytest.raises(RegistryError, match="cannot go below"):
        build_report(s, principal=ADMIN, scope=YOUNG_LONDONERS, window=FY, threshold=5)
    with db.session_scope(small) as s:
        stricter = build_report(s, principal=ADMIN, scope=YOUNG_LONDONERS, window=FY, threshold=20)
        own = build_report(s, principal=CITY_HALL, scope=YOUNG_LONDONERS, window=FY)
    assert stricter.threshold == 20 and own.threshold == 10
    assert stricter.headline["participants"] == "77 to 114"  # 15 (of 18) and 4 (of 20) hidden
    monkeypatch.setenv("VRU_SUPPRESSION_THRESHOLD", "30")
    with db.session_scope(small) as s:
        assert (
            build_report(s, principal=CITY_HALL, scope=YOUNG_LONDONERS, window=FY).threshold == 30
        )


def test_formula_injection_is_inert_in_csv_and_xlsx(small) -> None:
    report = _build(small)
    tables = _zip_tables(render(report, "csv"))
    assert tables["programmes"][0]["programme"] == "'" + INJECTION
    assert not any(
        v.startswith(("=", "+", "-", "@"))
        for t in tables.values()
        for r in t
        for v in r.values()
        if v
    )
    workbook = load_workbook(io.BytesIO(render(report, "xlsx")))
    cell = workbook["programmes"]["A2"]
    assert cell.value == "'" + INJECTION and cell.data_type == "s"


def test_rebuild_is_byte_identical_and_records_the_data_version(small) -> None:
    first, second = _build(small), _build(small)
    for fmt in ("csv", "xlsx"):
        assert render(first, fmt) == render(second, fmt)
    assert first.data_version == second.data_version
    tables = _zip_tables(render(first, "csv"))
    summary = {r["item"]: r["value"] for r in tables["summary"]}
    assert summary["data_version"] == str(first.data_version)


def test_names_are_matched_with_case_and_spacing_ignored_like_everywhere_else(
    small, db_url, tmp_path
) -> None:
    programme = _build(small, ADMIN, Scope("programme", "  mentors "))
    assert programme.scope == Scope("programme", "Mentors")  # titled with the stored name
    assert programme.headline["opportunities"] == 120
    stream = _build(small, CITY_HALL, Scope("funding_stream", "young   LONDONERS"))
    assert stream.scope.name == "Young Londoners" and stream.headline["opportunities"] == 180
    with pytest.raises(PermissionDenied):  # another funder's, however it is typed
        _build(small, CITY_HALL, Scope("programme", "ELSEWHERE"))
    out = tmp_path / "mentors.zip"
    args = ["--database-url", db_url, "report", "--programme", "MENTORS", "--format", "csv"]
    result = CliRunner().invoke(
        cli, [*args, "--from", "2023-04", "--to", "2024-03", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Programme: Mentors" in result.output and out.stat().st_size > 0


def test_funder_sees_only_their_own_streams(small) -> None:
    assert _build(small, CITY_HALL).headline["opportunities"] == 180
    with pytest.raises(PermissionDenied):
        _build(small, CITY_HALL, Scope("funding_stream", "Serious Violence"))
    with pytest.raises(PermissionDenied):
        _build(small, CITY_HALL, Scope("programme", "Elsewhere"))
    with pytest.raises(PermissionDenied):
        _build(small, CITY_HALL, Scope("all"))

    # Asking for another funder's stream or programme reads exactly like asking for one that
    # does not exist, so names cannot be found out by guessing.
    for kind, theirs in (("funding_stream", "Serious Violence"), ("programme", "Elsewhere")):
        with pytest.raises(PermissionDenied) as other:
            _build(small, CITY_HALL, Scope(kind, theirs))
        with pytest.raises(PermissionDenied) as missing:
            _build(small, CITY_HALL, Scope(kind, "No Such Name"))
        assert str(other.value).replace(theirs, "X") == str(missing.value).replace(
            "No Such Name", "X"
        )


@pytest.mark.slow
def test_cli_report_writes_each_format_and_refuses_other_funders(small, db_url, tmp_path) -> None:
    runner = CliRunner()
    base = ["--database-url", db_url]
    runner.invoke(
        cli,
        [
            *base,
            "users",
            "add",
            "fran",
            "--role",
            "funder",
            "--funder",
            "City Hall",
            "--password",
            "fran-password-1",
        ],
        catch_exceptions=False,
    )
    for fmt, name in (("csv", "out.zip"), ("xlsx", "out.xlsx"), ("pdf", "out.pdf")):
        result = runner.invoke(
            cli,
            [
                *base,
                "--as",
                "fran",
                "report",
                "--funding-stream",
                "Young Londoners",
                "--from",
                "2023-04",
                "--to",
                "2024-03",
                "--format",
                fmt,
                "--out",
                str(tmp_path / name),
            ],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        assert "180 opportunities in 3 boroughs" in result.output
        assert (tmp_path / name).stat().st_size > 0
    refused = runner.invoke(
        cli,
        [
            *base,
            "--as",
            "fran",
            "report",
            "--funding-stream",
            "Serious Violence",
            "--format",
            "csv",
            "--out",
            str(tmp_path / "x.zip"),
        ],
    )
    assert refused.exit_code == 1 and "own funding streams" in refused.stderr
    # A funder cannot switch suppression off (issue #19): refused with a plain message.
    lowered = runner.invoke(
        cli,
        [
            *base,
            "--as",
            "fran",
            "report",
            "--funding-stream",
            "Young Londoners",
            "--threshold",
            "1",
            "--format",
            "csv",
            "--out",
            str(tmp_path / "t.zip"),
        ],
    )
    assert lowered.exit_code == 1 and "Only an administrator" in lowered.stderr
    assert not (tmp_path / "t.zip").exists()
    usage = runner.invoke(
        cli,
        [
            *base,
            "report",
            "--all",
            "--programme",
            "Mentors",
            "--format",
            "csv",
            "--out",
            str(tmp_path / "y"),
        ],
    )
    assert usage.exit_code == 2
    folder = runner.invoke(
        cli,
        [
            *base,
            "report",
            "--all",
            "--from",
            "2023-04",
            "--to",
            "2024-03",
            "--format",
            "csv",
            "--out",
            str(tmp_path / "dir"),
        ],
    )
    assert folder.exit_code == 0
    assert (tmp_path / "dir" / "delivery_by_borough.csv").exists()
    assert (tmp_path / "dir" / "notes.txt").exists()


def test_headline_model_equals_the_analysis_engine(seeded_url) -> None:
    """The summary leads with the headline Poisson model's verdict, then its figures."""
    from registry.analysis.run import run_model

    engine = db.make_engine(seeded_url)
    stream = "VRU Core Programme Fund"
    with db.session_scope(engine) as s:
        report = build_report(
            s, principal=CITY_HALL, scope=Scope("funding_stream", stream), window=FY
        )
        direct = run_model(
            s,
            principal=ADMIN,
            outcome="knife_crime_injury_u25",
            lag=1,
            end=FY.end,
            funding_stream=stream,
        )
    engine.dispose()
    row = report.tables["headline_model"].iloc[0]
    effect = direct.extra["effect"]
    assert direct.model == "poisson" and row["verdict"] == direct.verdict
    assert row["change_pct"] == round(effect["value"], 1)
    assert (row["ci_low_pct"], row["ci_high_pct"]) == (
        round(effect["ci_low"], 1),
        round(effect["ci_high"], 1),
    )
    assert row["n_areas"] == direct.n_areas and row["fitted_to"] == "2024-03"
    assert row["outcome"] == "Knife crime with injury, victims under 25 per 100,000 aged 1-24"
    assert row["explanation"].startswith(direct.verdict_text)
    assert "Association, not causation" in report.notes[-1]
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(render(report, "pdf"))).pages)
    model_text = " ".join(text[text.index("Headline model") :].split())
    assert model_text.startswith("Headline model " + " ".join(direct.verdict_text.split())[:40])
    assert "per 100,000 aged 1-24" in model_text


def test_summary_never_leads_with_a_number_its_checks_reject(
    seeded_url, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A headline whose lead placebo fails is given as "not interpretable", with no figure."""
    import registry.analysis.headline as headline
    from registry.analysis.result import Check

    monkeypatch.setattr(
        headline,
        "placebo_check",
        lambda p, **_: Check("lead placebo", False, "the lead placebo failed (forced)"),
    )
    engine = db.make_engine(seeded_url)
    with db.session_scope(engine) as s:
        report = build_report(
            s,
            principal=CITY_HALL,
            scope=Scope("funding_stream", "VRU Core Programme Fund"),
            window=FY,
        )
    engine.dispose()
    row = report.tables["headline_model"].iloc[0]
    assert row["verdict"] == "not interpretable"
    assert row["explanation"] == "Not interpretable: the lead placebo failed (forced)."
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(render(report, "pdf"))).pages)
    model_text = " ".join(text[text.index("Headline model") :].split())
    assert model_text.startswith("Headline model Not interpretable")
    assert "%" not in model_text.split("Outcome:")[0] and "p = " not in model_text.split("Note")[0]


def test_headline_model_explains_when_it_cannot_be_fitted(small) -> None:
    report = _build(small)
    assert report.tables["headline_model"].empty
    assert report.notes[-1].startswith("Headline model caveats: The headline model could not")


def test_signing_in_or_adding_a_user_does_not_change_a_rebuild(small) -> None:
    from registry import auth

    first = _build(small)
    with db.session_scope(small) as s:
        auth.add_user(
            s, principal=ADMIN, username="newbie", role="staff", password="long-enough-pw"
        )
    auth.sign_in(small, username="newbie", password="long-enough-pw")
    with pytest.raises(auth.SignInError):
        auth.sign_in(small, username="newbie", password="wrong-password")
    second = _build(small)
    assert second.data_version == first.data_version
    for fmt in ("csv", "xlsx"):
        assert render(first, fmt) == render(second, fmt)


def test_sources_leave_out_other_programmes_uploads_and_people(small) -> None:
    sources = _build(small).tables["sources"]
    assert "loaded_by" not in sources.columns
    assert set(sources["kind"]) <= {"crime", "population", "seed", "deliveries"}


def test_sources_do_not_name_an_upload_that_also_held_other_funders_figures(small) -> None:
    """Issue #19: a funder's summary listed other funders' upload file names."""
    from registry import deliveries
    from tests.conftest import STAFF

    def upload(name: str, rows: str) -> None:
        content = ("programme,borough,month,opportunities\n" + rows).encode()
        with db.session_scope(small) as s:
            assert deliveries.import_file(s, principal=STAFF, content=content, file_name=name).ok

    upload(
        "home-office-and-city-hall.csv", "Mentors,Camden,2023-06,30\nElsewhere,Camden,2023-06,9\n"
    )
    upload("mentors-july.csv", "Mentors,Camden,2023-07,31\n")
    for principal in (CITY_HALL, ADMIN):
        sources = _build(small, principal=principal).tables["sources"]
        files = set(sources["file"].dropna())
        assert "mentors-july.csv" in files
        assert "home-office-and-city-hall.csv" not in files
        shared = sources[sources["file"].str.contains("other programmes", na=False)].iloc[0]
        assert shared["rows"] == 1 and shared["sha256"] is None  # this scope's row only
    report = _build(small, principal=CITY_HALL)
    tables = _zip_tables(render(report, "csv"))
    assert not any("home-office" in v for t in tables.values() for r in t for v in r.values())
    pdf = PdfReader(io.BytesIO(render(report, "pdf")))
    pdf_text = "".join(p.extract_text() for p in pdf.pages)
    assert "mentors-july" in pdf_text and "home-office" not in pdf_text


def test_cli_report_refuses_a_mismatched_or_missing_output(small, db_url, tmp_path) -> None:
    runner = CliRunner()
    base = ["--database-url", db_url, "report", "--all", "--from", "2023-04", "--to", "2024-03"]
    mismatch = runner.invoke(cli, [*base, "--format", "xlsx", "--out", str(tmp_path / "x.pdf")])
    assert mismatch.exit_code == 2 and "does not match" in mismatch.stderr
    missing = runner.invoke(
        cli, [*base, "--format", "pdf", "--out", str(tmp_path / "nowhere" / "x.pdf")]
    )
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    bad_month = runner.invoke(
        cli,
        [
            "--database-url",
            db_url,
            "report",
            "--all",
            "--from",
            "2024-13",
            "--to",
            "2025-01",
            "--format",
            "pdf",
            "--out",
            str(tmp_path / "y.pdf"),
        ],
    )
    # A month that cannot be read is a usage error, as in every command (tests/test_cli_types.py).
    assert bad_month.exit_code == 2
    assert "'2024-13' has month 13; months run from 01 to 12." in bad_month.stderr


def test_a_scope_that_delivered_nothing_in_the_period_is_refused_in_words(small) -> None:
    def build(principal: Principal, scope: Scope, start: dt.date, end: dt.date) -> None:
        with db.session_scope(small) as s:
            build_report(s, principal=principal, scope=scope, window=Window(start, end))

    # Elsewhere delivered only in April 2023; Young Londoners nothing in 2021-22.
    with pytest.raises(RegistryError) as elsewhere:
        build(ADMIN, Scope("programme", "Elsewhere"), dt.date(2022, 4, 1), dt.date(2023, 3, 1))
    assert str(elsewhere.value) == "Programme: Elsewhere delivered nothing in 2022-04 to 2023-03."
    with pytest.raises(RegistryError, match="Young Londoners delivered nothing in 2021-04"):
        build(CITY_HALL, YOUNG_LONDONERS, dt.date(2021, 4, 1), dt.date(2022, 3, 1))


def test_pdf_chart_of_no_periods_draws_without_error() -> None:
    from reportlab.graphics import renderPDF

    only_total = pd.DataFrame({"month": [TOTAL], "opportunities": [0]})
    drawing = _bar_chart(only_total, "month", "Opportunities delivered by month")
    assert renderPDF.drawToString(drawing).startswith(b"%PDF")


def test_outcomes_of_no_boroughs_claim_nothing_about_what_is_loaded(small) -> None:
    with db.session_scope(small) as s:
        frame = _outcomes(s, [], FY)
    # Counts are loaded (homicide, Camden): with no borough reached there is simply no row,
    # never a row reading "no counts loaded".
    assert frame.empty
    assert "current_count" in frame.columns


def _deliver(engine, programme: str, month: dt.date, deleted: bool = False) -> None:
    with db.session_scope(engine) as s:
        s.add(
            Delivery(
                programme_id=s.scalar(select(Programme.id).where(Programme.name == programme)),
                borough_id=s.scalar(select(Borough.id).where(Borough.name == "Westminster")),
                month=month,
                opportunities=7,
                updated_by="t",
                deleted_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC) if deleted else None,
            )
        )


def test_a_funders_default_period_and_years_come_from_their_own_deliveries(small) -> None:
    _deliver(small, "Elsewhere", dt.date(2025, 3, 1))  # another funder's, later than any of ours
    _deliver(small, "Elsewhere", dt.date(2019, 6, 1))  # and earlier
    with db.session_scope(small) as s:
        mine = report_choices(s, principal=CITY_HALL)
        everyone = report_choices(s, principal=ADMIN)
        default = build_report(s, principal=CITY_HALL, scope=YOUNG_LONDONERS)
    # City Hall delivered from May 2022 to May 2023: the years the Home Office's programme
    # delivered in are not revealed, and the default period is City Hall's latest whole year.
    assert mine.financial_years == ["2023-24", "2022-23"]
    assert everyone.financial_years[0] == "2024-25" and everyone.financial_years[-1] == "2019-20"
    assert default.window == Window(dt.date(2022, 4, 1), dt.date(2023, 3, 1))


def test_default_period_is_the_scopes_own_and_ignores_deleted_deliveries(small) -> None:
    # The formula programme delivered only in April and May 2023: no whole year is complete,
    # so the default is the current (partial) one, not a year it delivered nothing in. A deleted
    # delivery from 2019 must not make 2022-23 look like a year it ran through.
    _deliver(small, INJECTION, dt.date(2019, 6, 1), deleted=True)
    with db.session_scope(small) as s:
        built = build_report(s, principal=ADMIN, scope=Scope("programme", INJECTION))
    assert built.window == FY
    assert built.headline["opportunities"] == 60


def test_outcome_change_is_given_when_both_windows_are_whole(db_url) -> None:
    """load_small: Camden's count is the month number every year (March 2022 aside), so
    July-December 2022 against July-December 2021 is whole on both sides and unchanged."""
    load_small(db_url)
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        report = build_report(
            s,
            principal=ADMIN,
            scope=Scope("programme", "P1"),
            window=Window(dt.date(2022, 7, 1), dt.date(2022, 12, 1)),
        )
    engine.dispose()
    homicide = report.tables["outcomes"].set_index("measure").loc["Homicide"]
    assert (homicide["current_count"], homicide["baseline_count"]) == (57, 57)
    assert (homicide["current_months_with_data"], homicide["baseline_months_with_data"]) == (6, 6)
    assert homicide["change_pct"] == 0.0
