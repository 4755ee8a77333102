"""Chart templates for the Explore page: built once per process, filled with data on each run.

Building an Altair chart from shorthand strings costs tens of milliseconds per encoding (Altair
looks the channel up in its schema each time); the templates here are built once (cached) and a
rerun only attaches the new data, which keeps a filter change well under a tenth of a second.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TypeVar

import altair as alt
import pandas as pd

from dashboards.common import OKABE_ITO
from registry.denominators import people_words, rate_unit
from registry.numbers import D3, FORMATTERS, Kind
from registry.outcomes.measures import SeriesBreak
from registry.periods import format_month

BANDS = [
    "within 95% limits",
    "above 95% limit",
    "below 95% limit",
    "above 99.8% limit",
    "below 99.8% limit",
]
# Each band has its own shape as well as its own colour, so colour never carries it alone.
BAND_SHAPES = ["circle", "triangle-up", "triangle-down", "diamond", "square"]


# The charts these helpers take: altair's common base, TopLevelMixin, has no copy() and is not a
# layer alt.layer() accepts.
AnyChart = TypeVar("AnyChart", alt.Chart, alt.LayerChart)


def with_data(template: AnyChart, data: pd.DataFrame) -> AnyChart:
    chart = template.copy(deep=False)
    chart.data = data
    return chart


COUNTS = frozenset({"opportunities", "count"})


def kind_of(column: str) -> Kind:
    """How a chart's figure prints: counts whole, rates to one decimal (:mod:`registry.numbers`)."""
    return "count" if column in COUNTS else "rate"


def number_format(column: str) -> str:
    """The d3 format of :func:`kind_of` ``column``, for chart labels and tooltips."""
    return D3[kind_of(column)]


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


BREAK_COLOUR = "#D55E00"  # Okabe-Ito vermillion, unlike any series colour used with it


def with_breaks(
    chart: alt.Chart | alt.LayerChart,
    breaks: Sequence[SeriesBreak],
    x: str = "period",
    x_title: str = "",
) -> alt.Chart | alt.LayerChart:
    """``chart`` with a dashed vertical rule, labelled "Series break YYYY-MM", at each break.

    ``x`` is the chart's temporal field and ``x_title`` its axis title (the rule shares the axis).
    A chart with no break inside its period is returned as it is.
    """
    if not breaks:
        return chart
    marks = pd.DataFrame(
        {
            x: [pd.Timestamp(b.month) for b in breaks],
            "label": [f"Series break {format_month(b.month)}" for b in breaks],
            "note": [b.note for b in breaks],
        }
    )
    axis = alt.X(f"{x}:T", title=x_title or x.capitalize())
    rule = (
        alt.Chart(marks)
        .mark_rule(color=BREAK_COLOUR, strokeDash=[6, 3], strokeWidth=2)
        .encode(x=axis, tooltip=[alt.Tooltip("label:N"), alt.Tooltip("note:N")])
    )
    label = (
        alt.Chart(marks)
        .mark_text(align="left", baseline="top", dx=4, dy=2, color=BREAK_COLOUR)
        .encode(x=axis, y=alt.value(0), text=alt.Text("label:N"))
    )
    return alt.layer(chart, rule, label)


@functools.cache
def funnel(outcome: str, band: str) -> tuple[alt.Chart, alt.Chart, alt.Chart]:
    """Limit curves, the London line and the borough points (three datasets); ``band`` is the
    measure's population band, which the rate is per."""
    y_title = f"{outcome} {rate_unit(band)}"
    x_title = people_words(band)
    lines = (
        alt.Chart()
        .mark_line(color="#555555")
        .encode(
            x=alt.X("population:Q", title=x_title, scale=alt.Scale(type="log")),
            y=alt.Y("rate:Q", title=y_title),
            detail=alt.Detail("curve:N"),
            strokeDash=alt.StrokeDash(
                "limit:N",
                title="Control limits",
                scale=alt.Scale(domain=["95%", "99.8%"], range=[[1, 0], [6, 4]]),
            ),
        )
    )
    centre = alt.Chart().mark_rule(color="#000000").encode(y=alt.Y("rate:Q", title=y_title))
    points = (
        alt.Chart()
        .mark_point(filled=True, size=90)
        .encode(
            x=alt.X("population:Q", title=x_title),
            y=alt.Y("outcome_rate:Q", title=y_title),
            shape=alt.Shape(
                "band:N",
                title="Where the borough falls",
                scale=alt.Scale(domain=BANDS, range=BAND_SHAPES),
            ),
            color=alt.Color(
                "band:N",
                title="Where the borough falls",
                scale=alt.Scale(domain=BANDS, range=list(OKABE_ITO[: len(BANDS)])),
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


# Viridis at five even steps, dark (low) to yellow (high), and grey for a borough with no figure.
TILE_COLOURS = ("#440154", "#3B528B", "#21918C", "#5EC962", "#FDE725")
NO_DATA = "no data"
NO_DATA_COLOUR = "#D9D9D9"
INKS = ("#000000", "#FFFFFF")


def _luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a ``#RRGGBB`` colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    """WCAG 2 contrast ratio of two colours (1 to 21; body text needs at least 4.5)."""
    high, low = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def ink(fill: str) -> str:
    """Black or white, whichever reads better on ``fill``."""
    return max(INKS, key=lambda colour: contrast(colour, fill))


def tile_bands(values: pd.Series, kind: Kind) -> pd.DataFrame:
    """Each tile's colour band, fill, label ink and label text for ``values`` (one per tile).

    Five bands of equal width from the lowest figure to the highest, so darker is lower; a
    missing figure is grey and labelled "no data". Labels are black or white, whichever contrasts
    more with the fill (at least 4.5:1 on every fill used).
    """
    present = values.dropna()
    lo, hi = (float(present.min()), float(present.max())) if len(present) else (0.0, 0.0)
    steps = len(TILE_COLOURS)
    edges = [lo + (hi - lo) * i / steps for i in range(steps + 1)]
    write = FORMATTERS[kind]
    labels = [f"{write(edges[i])} to {write(edges[i + 1])}" for i in range(steps)]
    bands, fills, texts = [], [], []
    for value in values:
        if pd.isna(value):
            bands.append(NO_DATA)
            fills.append(NO_DATA_COLOUR)
            texts.append(NO_DATA)
            continue
        step = steps // 2 if hi == lo else min(steps - 1, int((value - lo) / (hi - lo) * steps))
        bands.append(labels[step] if hi != lo else write(value))
        fills.append(TILE_COLOURS[step])
        texts.append(write(value))
    return pd.DataFrame(
        {"band": bands, "fill": fills, "ink": [ink(f) for f in fills], "value_text": texts},
        index=values.index,
    )


@functools.cache
def _tiles(figure_title: str, number: str) -> alt.LayerChart:
    pick = alt.selection_point(fields=["area"], name="pick")
    grid = alt.Chart().encode(
        x=alt.X("col:O", axis=None),
        y=alt.Y("row:O", axis=None),
        tooltip=[alt.Tooltip("borough:N"), alt.Tooltip("value:Q", format=number)],
    )
    rect = (
        grid.mark_rect(stroke="white", strokeWidth=2)
        .encode(color=alt.Color("band:N", title=figure_title))
        .add_params(pick)
    )
    # Each label in the ink that reads on its own tile (computed, not left to the renderer).
    label = alt.Color("ink:N", scale=None)
    name = grid.mark_text(baseline="bottom", dy=-1, fontWeight="bold").encode(
        text=alt.Text("short:N"), color=label
    )
    value = grid.mark_text(baseline="top", dy=2).encode(text=alt.Text("value_text:N"), color=label)
    return alt.layer(rect, name, value).properties(height=420)


def tiles(figure_title: str, number: str, bands: pd.DataFrame) -> alt.LayerChart:
    """The tile map for ``bands`` (from :func:`tile_bands`): its legend lists the bands used,
    lowest first, each in its own colour."""
    used = bands.drop_duplicates("band")
    rank = {colour: i for i, colour in enumerate((*TILE_COLOURS, NO_DATA_COLOUR))}
    order = sorted(zip(used["band"], used["fill"], strict=True), key=lambda b: rank[b[1]])
    chart = _tiles(figure_title, number).copy(deep=True)
    chart.layer[0].encoding.color.scale = alt.Scale(
        domain=[b for b, _ in order], range=[f for _, f in order]
    )
    return chart


@functools.cache
def detail() -> alt.Chart:
    return (
        alt.Chart()
        .mark_line(point=True)
        .encode(
            x=alt.X("period:T", title="Period"),
            y=alt.Y("value:Q", title=None),
            color=alt.Color("series:N", title=None, scale=alt.Scale(range=list(OKABE_ITO[:2]))),
            shape=alt.Shape("series:N", title=None),
            strokeDash=alt.StrokeDash("series:N", title=None),
            row=alt.Row("series:N", title=None),
        )
        .resolve_scale(y="independent")
        .properties(height=160)
    )
