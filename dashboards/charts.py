"""Chart templates for the Explore page: built once per process, filled with data on each run.

Building an Altair chart from shorthand strings costs tens of milliseconds per encoding (Altair
looks the channel up in its schema each time); the templates here are built once (cached) and a
rerun only attaches the new data, which keeps a filter change well under a tenth of a second.
"""

from __future__ import annotations

import functools

import altair as alt
import pandas as pd

from dashboards.common import OKABE_ITO

BANDS = [
    "within 95% limits",
    "above 95% limit",
    "below 95% limit",
    "above 99.8% limit",
    "below 99.8% limit",
]
# Each band has its own shape as well as its own colour, so colour never carries it alone.
BAND_SHAPES = ["circle", "triangle-up", "triangle-down", "diamond", "square"]


def with_data(template: alt.TopLevelMixin, data: pd.DataFrame) -> alt.TopLevelMixin:
    chart = template.copy(deep=False)
    chart.data = data
    return chart


COUNTS = frozenset({"opportunities", "count"})


def number_format(column: str) -> str:
    """How a figure prints: counts whole, rates to one decimal."""
    return ",.0f" if column in COUNTS else ",.1f"


@functools.cache
def trend(d_col: str, o_col: str, d_title: str, o_title: str) -> alt.LayerChart:
    base = alt.Chart().encode(x=alt.X("period:T", title="Period"))
    bars = base.mark_bar(opacity=0.6, color=OKABE_ITO[0]).encode(
        y=alt.Y(f"{d_col}:Q", title=f"Bars: {d_title}"),
        tooltip=[alt.Tooltip("label:N"), alt.Tooltip(f"{d_col}:Q", format=number_format(d_col))],
    )
    line = base.mark_line(color=OKABE_ITO[1], point=alt.OverlayMarkDef(shape="diamond")).encode(
        y=alt.Y(f"{o_col}:Q", title=f"Line: {o_title}"),
        tooltip=[alt.Tooltip("label:N"), alt.Tooltip(f"{o_col}:Q", format=number_format(o_col))],
    )
    return alt.layer(bars, line).resolve_scale(y="independent")


@functools.cache
def funnel(outcome: str) -> tuple[alt.Chart, alt.Chart, alt.Chart]:
    """Limit curves, the London line and the borough points (three datasets)."""
    lines = (
        alt.Chart()
        .mark_line(color="#555555")
        .encode(
            x=alt.X("young_people:Q", title="People aged 10-24", scale=alt.Scale(type="log")),
            y=alt.Y("rate:Q", title=f"{outcome} per 100,000 aged 10-24"),
            detail=alt.Detail("curve:N"),
            strokeDash=alt.StrokeDash(
                "limit:N",
                title="Control limits",
                scale=alt.Scale(domain=["95%", "99.8%"], range=[[1, 0], [6, 4]]),
            ),
        )
    )
    centre = alt.Chart().mark_rule(color="#000000").encode(y=alt.Y("rate:Q"))
    points = (
        alt.Chart()
        .mark_point(filled=True, size=90)
        .encode(
            x=alt.X("young_people:Q"),
            y=alt.Y("outcome_rate:Q"),
            shape=alt.Shape(
                "band:N",
                title="Where the borough falls",
                scale=alt.Scale(domain=BANDS, range=BAND_SHAPES),
            ),
            color=alt.Color(
                "band:N", scale=alt.Scale(domain=BANDS, range=list(OKABE_ITO[: len(BANDS)]))
            ),
            tooltip=[
                alt.Tooltip("borough:N"),
                alt.Tooltip("count:Q"),
                alt.Tooltip("outcome_rate:Q", format=",.1f"),
                alt.Tooltip("expected:Q", format=",.1f"),
                alt.Tooltip("band:N"),
            ],
        )
    )
    return lines, centre, points


@functools.cache
def tiles(figure_title: str, number: str) -> alt.LayerChart:
    pick = alt.selection_point(fields=["area"], name="pick")
    grid = alt.Chart().encode(
        x=alt.X("col:O", axis=None),
        y=alt.Y("row:O", axis=None),
        tooltip=[alt.Tooltip("borough:N"), alt.Tooltip("value:Q", format=number)],
    )
    rect = (
        grid.mark_rect(stroke="white", strokeWidth=2)
        .encode(color=alt.Color("value:Q", title=figure_title, scale=alt.Scale(scheme="viridis")))
        .add_params(pick)
    )
    # Labels on a dark outline so they read on every viridis shade.
    name = grid.mark_text(
        baseline="bottom", dy=-1, fontWeight="bold", color="white", stroke="black", strokeWidth=0.3
    ).encode(text=alt.Text("short:N"))
    value = grid.mark_text(
        baseline="top", dy=2, color="white", stroke="black", strokeWidth=0.3
    ).encode(text=alt.Text("value:Q", format=",.0f"))
    return alt.layer(rect, name, value).properties(height=420)


@functools.cache
def detail() -> alt.Chart:
    return (
        alt.Chart()
        .mark_line(point=True)
        .encode(
            x=alt.X("period:T", title="Period"),
            y=alt.Y("value:Q", title=None),
            color=alt.Color("series:N", scale=alt.Scale(range=list(OKABE_ITO[:2]))),
            shape=alt.Shape("series:N"),
            strokeDash=alt.StrokeDash("series:N"),
            row=alt.Row("series:N", title=None),
        )
        .resolve_scale(y="independent")
        .properties(height=160)
    )
