"""The PDF summary: a readable few pages with the headline figures, charts and tables.

ReportLab reads a Paragraph's text as markup (``<b>``, ``<img src=...>``, ``&amp;``): every text
that reaches one goes through :func:`pdf_text` first, so a name is printed as typed and can
neither break the document nor make the server fetch anything. Table cells are Paragraphs too,
so long labels wrap inside their column instead of running over the figures beside them.
"""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape

import pandas as pd
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, PropertySet, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from registry import numbers
from registry.periods import parse_month
from registry.reports.build import Report
from registry.reports.disclosure import TOTAL
from registry.windows import is_whole, months_in

# Okabe-Ito blue: distinguishable for the common forms of colour blindness.
BAR_COLOUR = colors.HexColor("#0072B2")
HEADER = colors.HexColor("#1D3557")


def _window_count(count: Any, months: int, start: str, end: str) -> str:
    """A window's count as a reader should take it: none loaded, part-loaded or whole."""
    first, last = parse_month(start), parse_month(end)
    if months == 0 or pd.isna(count):
        return f"no counts loaded ({start} to {end})"
    if not is_whole(first, last, months):
        return f"{count:,} ({start} to {end}; {months} of {months_in(first, last)} months loaded)"
    return f"{count:,} ({start} to {end})"


def _window_counts(outcomes: pd.DataFrame, window: str) -> list[str]:
    """Each measure's count in its ``window`` ("current" or "baseline"), as
    :func:`_window_count` words it."""
    return [
        _window_count(c, m, s, e)
        for c, m, s, e in zip(
            outcomes[f"{window}_count"],
            outcomes[f"{window}_months_with_data"],
            outcomes[f"{window}_start"],
            outcomes[f"{window}_end"],
            strict=True,
        )
    ]


def _fmt(value: Any, money: bool = False) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "not recorded"
    if isinstance(value, str):
        return value
    return numbers.money(value) if money else numbers.figure(value)


def pdf_text(value: object) -> str:
    """``value`` as text for a ReportLab Paragraph: markup characters escaped, so it stays text.

    The one place PDF text is escaped; every Paragraph in the summary is built from its result.
    """
    return escape(str(value))


def _paragraph(value: object, style: PropertySet) -> Paragraph:
    return Paragraph(pdf_text(value), style)


_CELL = ParagraphStyle("cell", fontName="Helvetica", fontSize=8, leading=9.5)
_CELL_RIGHT = ParagraphStyle("cell_right", parent=_CELL, alignment=TA_RIGHT)
_HEAD = ParagraphStyle("head", parent=_CELL, fontName="Helvetica-Bold", textColor=colors.white)
_HEAD_RIGHT = ParagraphStyle("head_right", parent=_HEAD, alignment=TA_RIGHT)
_HEAD_BOLD = ParagraphStyle("total", parent=_CELL, fontName="Helvetica-Bold")
_HEAD_BOLD_RIGHT = ParagraphStyle("total_right", parent=_HEAD_BOLD, alignment=TA_RIGHT)


def _table(frame: pd.DataFrame, widths: list[float]) -> Table:
    """A table whose cells wrap within ``widths``: the first column left, the others right."""
    total = len(frame) > 0 and str(frame.iloc[-1, 0]) == TOTAL

    def cell(value: object, column: int, style: tuple[ParagraphStyle, ParagraphStyle]) -> Any:
        return _paragraph(value, style[0] if column == 0 else style[1])

    body: list[list[Any]] = [
        [cell(name, i, (_HEAD, _HEAD_RIGHT)) for i, name in enumerate(frame.columns)]
    ]
    for r, row in enumerate(frame.itertuples(False)):
        bold = total and r == len(frame) - 1
        styles = (_HEAD_BOLD, _HEAD_BOLD_RIGHT) if bold else (_CELL, _CELL_RIGHT)
        body.append([cell(_cell(v), i, styles) for i, v in enumerate(row)])
    table = Table(body, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), HEADER),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#F1F4F8")]),
            ]
        )
    )
    return table


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _bar_chart(frame: pd.DataFrame, key: str, title: str) -> Drawing:
    data = frame[frame[key] != TOTAL]
    drawing = Drawing(170 * mm, 70 * mm)
    heading = String(15 * mm, 64 * mm, title, fontSize=9, fontName="Helvetica-Bold")
    if data.empty:  # reportlab cannot draw a chart of no bars
        drawing.add(String(15 * mm, 40 * mm, "Nothing was delivered in this period.", fontSize=8))
        drawing.add(heading)
        return drawing
    chart = VerticalBarChart()
    # types-reportlab declares these int (from the defaults); reportlab takes any number of points.
    chart.x, chart.y = 15 * mm, 12 * mm  # type: ignore[assignment]
    chart.width, chart.height = 150 * mm, 48 * mm  # type: ignore[assignment]
    chart.data = [[int(v) for v in data["opportunities"]]]
    chart.bars[0].fillColor = BAR_COLOUR
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labels.fontSize = 7
    labels = [str(v) for v in data[key]]
    step = max(1, len(labels) // 12)
    chart.categoryAxis.categoryNames = [
        lab if i % step == 0 else "" for i, lab in enumerate(labels)
    ]
    chart.categoryAxis.labels.fontSize = 6
    chart.categoryAxis.labels.angle = 45
    chart.categoryAxis.labels.boxAnchor = "ne"
    drawing.add(chart)
    drawing.add(heading)
    return drawing


def to_pdf(report: Report) -> bytes:
    styles = getSampleStyleSheet()
    small = ParagraphStyle("small", parent=styles["BodyText"], fontSize=8, leading=10)
    warning = ParagraphStyle(
        "warning",
        parent=styles["BodyText"],
        textColor=colors.white,
        backColor=colors.HexColor("#B00020"),
        borderPadding=4,
    )
    h = report.headline
    story: list[Any] = [
        _paragraph(f"VRU outcome summary: {report.scope.title()}", styles["Title"]),
        _paragraph(
            f"Period {report.window.label()} ({report.window.months} months). "
            f"Registry data version {report.data_version}.",
            styles["BodyText"],
        ),
        Spacer(1, 4 * mm),
    ]
    if report.synthetic:
        story += [
            _paragraph("SYNTHETIC DEMO DATA: every figure in this report is invented.", warning),
            Spacer(1, 4 * mm),
        ]
    headline = pd.DataFrame(
        {
            "Figure": [
                "Positive opportunities delivered",
                "Participants",
                "Spend recorded",
                "Cost per opportunity (where spend recorded)",
                "Boroughs reached",
                "Programmes",
            ],
            "Value": [
                _fmt(h["opportunities"]),
                _fmt(h["participants"]),
                _fmt(h["spend_gbp"], money=True),
                _fmt(h["cost_per_opportunity_gbp"], money=True),
                _fmt(h["boroughs_reached"]),
                _fmt(h["programmes"]),
            ],
        }
    )
    story += [
        _paragraph("Headline figures", styles["Heading2"]),
        _table(headline, [100 * mm, 60 * mm]),
        Spacer(1, 4 * mm),
    ]
    period_key = f"delivery_by_{report.granularity}"
    by_period = report.tables[period_key]
    story += [
        _bar_chart(
            by_period,
            by_period.columns[0],
            f"Opportunities delivered by {report.granularity.replace('_', ' ')}",
        ),
        _paragraph(
            f"The chart shows opportunities delivered in each "
            f"{report.granularity.replace('_', ' ')}; the same figures are in the table "
            f"'{period_key}' of the CSV and Excel versions.",
            small,
        ),
    ]
    outcomes = report.tables["outcomes"]
    if not outcomes.empty:
        shown = pd.DataFrame(
            {
                "Measure": outcomes["measure"],
                "This period": _window_counts(outcomes, "current"),
                "A year earlier": _window_counts(outcomes, "baseline"),
                "Change": [
                    (note or "n/a") if pd.isna(c) else numbers.change(c)
                    for c, note in zip(outcomes["change_pct"], outcomes["change_note"], strict=True)
                ],
            }
        )
        story += [
            KeepTogether(
                [
                    _paragraph("Outcomes in the boroughs reached", styles["Heading2"]),
                    _table(shown, [45 * mm, 45 * mm, 45 * mm, 25 * mm]),
                ]
            )
        ]
        story += [
            _paragraph(
                f"Series break in {m}: {b}. Counts before and after a break are not strictly "
                "comparable.",
                small,
            )
            for m, b in zip(outcomes["measure"], outcomes["series_breaks"], strict=True)
            if b
        ]
    model = report.tables["headline_model"]
    story += [_paragraph("Headline model", styles["Heading2"])]
    if model.empty:
        story += [
            _paragraph(
                report.notes[-1].removeprefix("Headline model caveats: "), styles["BodyText"]
            )
        ]
    else:
        row = model.iloc[0]
        story += [
            _paragraph(
                f"{row['explanation']} Outcome: {row['outcome']}; {row['n_areas']} boroughs, "
                f"{row['n_periods']} months to {row['fitted_to']} ({row['n_obs']:,} "
                "borough-months)."
                + (f" p = {row['p_value']:.3f}." if row["verdict"] != "not interpretable" else ""),
                styles["BodyText"],
            ),
            _paragraph(report.notes[-1], small),
        ]
    by_borough = report.tables["delivery_by_borough"][
        ["borough", "opportunities", "participants", "spend_gbp", "cost_per_opportunity_gbp"]
    ].set_axis(
        ["Borough", "Opportunities", "Participants", "Spend (£)", "Cost per opportunity (£)"],
        axis=1,
    )
    story += [
        _paragraph("Delivery by borough", styles["Heading2"]),
        _table(by_borough, [45 * mm, 27 * mm, 27 * mm, 30 * mm, 35 * mm]),
        _paragraph("Notes and caveats", styles["Heading2"]),
    ]
    story += [_paragraph(note, small) for note in report.notes]
    story += [Spacer(1, 3 * mm), _paragraph("Data sources", styles["Heading3"])]
    sources = report.tables["sources"][
        ["batch", "kind", "format", "file", "release", "loaded_at"]
    ].set_axis(["Batch", "Kind", "Format", "File", "Release", "Loaded"], axis=1)
    story += [_table(sources.fillna(""), [14 * mm, 20 * mm, 22 * mm, 50 * mm, 30 * mm, 38 * mm])]
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=f"VRU outcome summary: {report.scope.title()}",
        author="VRU registry",
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        invariant=1,
    )
    doc.build(story, onFirstPage=_footer, onLaterPages=_footer)
    return buffer.getvalue()


def _footer(canvas: Any, doc: Any) -> None:
    canvas.saveState()
    canvas.setFont("Helvetica", 7)
    canvas.drawString(
        18 * mm,
        8 * mm,
        "VRU registry outcome summary. Aggregates only; small participant counts suppressed.",
    )
    canvas.drawRightString(A4[0] - 18 * mm, 8 * mm, f"Page {doc.page}")
    canvas.restoreState()
