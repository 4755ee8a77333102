"""Text stays text: hostile names through every format (PDF, XLSX, CSV) and every page.

Names are what users type (programmes, funding streams, funders, measures). Each of these would
be markup somewhere if printed raw: ReportLab reads ``<b>`` and ``<img src=...>`` (an unclosed
``<b>`` broke every PDF of its scope; an ``<img>`` made the server fetch a URL), Streamlit reads
Markdown images and links, and a spreadsheet reads ``=1+1`` as a formula.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile

import pandas as pd
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import update
from streamlit.testing.v1 import AppTest

from dashboards.common import md
from registry import db
from registry.auth import Principal
from registry.periods import Window
from registry.reports.build import Scope, build_report
from registry.reports.pdf import _table, pdf_text
from registry.reports.render import render
from registry.schema import FundingStream, OutcomeMeasure, Programme
from tests.analysis_db import load_small
from tests.conftest import ADMIN
from tests.test_app_partial_data import APP, PAGES

IMAGE = "![pic](http://evil.example/pixel.png)"
HTML = '<img src="http://evil.example/x.png">'
BOLD = "<b>unclosed"
LINK = "[click me](http://evil.example/go)"
FORMULA = "=1+1"
STREAM = f"{BOLD} {IMAGE}"
FUNDER = f"{LINK} funder"
PROGRAMMES = {"P1": HTML, "P2": f"{FORMULA} {LINK}"}
MEASURE = f"Homicide {IMAGE} {BOLD}"
HOSTILE = (IMAGE, HTML, BOLD, LINK)


@pytest.fixture
def hostile_url(db_url: str) -> str:
    load_small(db_url)
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        s.execute(update(FundingStream).where(FundingStream.name == "S1").values(name=STREAM))
        s.execute(update(FundingStream).values(funder=FUNDER))
        for old, new in PROGRAMMES.items():
            s.execute(update(Programme).where(Programme.name == old).values(name=new))
        s.execute(
            update(OutcomeMeasure).where(OutcomeMeasure.code == "homicide").values(label=MEASURE)
        )
    engine.dispose()
    return db_url


def _report(url: str, principal: Principal = ADMIN, scope: Scope | None = None):
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        built = build_report(
            s,
            principal=principal,
            scope=scope or Scope("funding_stream", STREAM),
            window=Window(dt.date(2021, 4, 1), dt.date(2022, 3, 1)),
        )
    engine.dispose()
    return built


@pytest.mark.slow
def test_hostile_names_print_as_typed_in_the_pdf(hostile_url) -> None:
    for scope in (Scope("funding_stream", STREAM), Scope("programme", HTML)):
        pdf = render(_report(hostile_url, scope=scope), "pdf")  # an unclosed <b> used to fail
        text = " ".join("".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split())
        assert scope.name in text
        assert MEASURE in text  # the outcomes table's label, wrapped but whole


def test_pdf_text_is_escaped_and_table_cells_wrap() -> None:
    assert pdf_text('<img src="x"> & <b>') == '&lt;img src="x"&gt; &amp; &lt;b&gt;'
    frame = pd.DataFrame(
        {"Measure": ["Knife crime with injury, victims under 25"], "This period": ["1,234"]}
    )
    table = _table(frame, [25 * mm, 25 * mm])
    table.wrapOn(Canvas(io.BytesIO()), 100 * mm, 100 * mm)
    label = table._cellvalues[1][0][0]  # the cell's Paragraph
    # The label breaks over lines inside its 25 mm column instead of running over the figure.
    assert len(label.blPara.lines) >= 2
    assert label.width <= 25 * mm
    assert table._rowHeights[1] > table._rowHeights[0]


@pytest.mark.slow
def test_hostile_names_are_inert_in_csv_and_xlsx(hostile_url) -> None:
    for scope, name in (
        (Scope("funding_stream", STREAM), HTML),
        (Scope("programme", PROGRAMMES["P2"]), PROGRAMMES["P2"]),
    ):
        report = _report(hostile_url, scope=scope)
        archive = zipfile.ZipFile(io.BytesIO(render(report, "csv")))
        values = [
            v
            for n in archive.namelist()
            if n.endswith(".csv")
            for row in csv.reader(io.StringIO(archive.read(n).decode()))
            for v in row
        ]
        assert any(name in v for v in values)
        assert not any(v.startswith(("=", "+", "@")) for v in values)
        workbook = load_workbook(io.BytesIO(render(report, "xlsx")))
        cells = [c for sheet in workbook.worksheets for row in sheet.iter_rows() for c in row]
        texts = [c.value for c in cells if isinstance(c.value, str)]
        assert any(name in t for t in texts)
        assert not any(t.startswith("=") for t in texts)
        assert all(c.data_type != "f" for c in cells)  # no formula anywhere
    assert "'" + PROGRAMMES["P2"] in values and "'" + PROGRAMMES["P2"] in texts


def _markdown_texts(at: AppTest) -> list[str]:
    """Every string on the page that Streamlit renders as Markdown."""
    texts = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title"):
        texts += [str(e.value) for e in at.get(kind)]
    for kind in ("header", "subheader"):
        texts += [str(e.value) for e in at.get(kind)]
    texts += [str(m.label) for m in at.metric]
    for table in at.table:
        texts += [str(v) for v in table.value.to_numpy().ravel()] + [
            str(i) for i in table.value.index
        ]
    return texts


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_hostile_names_stay_text_on_every_page(hostile_url, monkeypatch, page) -> None:
    monkeypatch.setenv("VRU_DATABASE_URL", hostile_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["principal"] = ADMIN
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    if page == "dashboards/downloads.py":
        at.radio(key="report_kind").set_value("Funding stream").run()
        at.selectbox(key="report_stream").set_value(STREAM).run()
        assert not at.exception, at.exception
    texts = _markdown_texts(at)
    for text in texts:
        for raw in HOSTILE:
            assert raw not in text, (page, text)
    if page == "dashboards/downloads.py":
        # The names did reach the page, escaped: the notes and the programmes covered.
        assert any(md(STREAM) in t for t in texts)
        assert any(md(HTML) in t for t in texts)
    if page == "dashboards/home.py":
        assert any(md(MEASURE) in t for t in texts)


def test_markdown_helper_leaves_no_link_image_or_html() -> None:
    for raw in (*HOSTILE, "http://evil.example", "www.evil.example", "`code`", "$x$"):
        escaped = md(raw)
        assert escaped != raw
        assert not re.search(r"(?<!\\)[\[<`$]", escaped)
        assert not re.search(r"(?<!\\)://", escaped) and "www." not in escaped
    assert md(FORMULA) == FORMULA and md("Camden, 2024-05: 12.") == "Camden, 2024-05: 12."
