"""Overview: headline figures for the period chosen, with every comparison window stated."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboards.common import (
    OKABE_ITO,
    attempt,
    chart_with_table,
    keep_in_url,
    md,
    number_columns,
    query_defaults,
    session,
    table_download,
)
from dashboards.figures import outcome_page_start
from registry.auth import Principal, ReadScope, read_scope
from registry.figures.overview import Overview, overview
from registry.numbers import D3, change, count
from registry.periods import format_month, parse_month

KEYS = ["ov_start", "ov_end"]


@st.cache_data(max_entries=32, show_spinner=False)
def _overview(
    url: str, version: int, start: str, end: str, scope: ReadScope, _who: Principal
) -> Overview:
    with session() as s:
        return overview(s, principal=_who, start=parse_month(start), end=parse_month(end))


st.title("Overview")
who, url, version, _, options, months = outcome_page_start("there are no headline figures")
# The period ends by default on the latest month whose outcome windows are wholly stored:
# crime data usually stops before delivery data, and part-stored windows give no change.
end = months.index(format_month(options.default_end)) if options.default_end else len(months) - 1
query_defaults(
    {"ov_start": months[max(0, end - 11)], "ov_end": months[end]},
    {"ov_start": months, "ov_end": months},
)
left, right = st.columns(2)
left.selectbox("Period from", months, key="ov_start")
right.selectbox("Period to", months, key="ov_end")
keep_in_url(KEYS)

figures = attempt(
    lambda: _overview(
        url,
        version,
        st.session_state["ov_start"],
        st.session_state["ov_end"],
        read_scope(who),
        who,
    )
)
if figures is None:
    st.stop()
span = f"{format_month(figures.start)} to {format_month(figures.end)}"
one, two = st.columns(2)
one.metric("Opportunities delivered", count(figures.opportunities), help=f"{span}.")
one.caption(
    f"Positive opportunities delivered {span}, every programme and borough."
    if figures.programmes_delivering
    else f"No delivery is recorded {span}: 0 means none entered yet, not none delivered."
)
two.metric("Programmes delivering", count(figures.programmes_delivering))
two.caption(f"Programmes with any delivery recorded {span}.")

st.subheader("Outcomes: the 12 months to the end of the period")
st.caption(
    "London totals (every borough plus offences the police place in no borough), so they match "
    "the publisher's. Each change is against the same 12 months a year earlier and against "
    "calendar year 2019 (January to December 2019), the last full year before the pandemic. A "
    "fall is shown as a negative change; no colour carries the meaning alone."
)
rows: list[dict[str, Any]] = []
for column, tile in zip(st.columns(max(1, len(figures.outcomes))), figures.outcomes, strict=False):
    window = f"{format_month(tile.window_start)} to {format_month(tile.window_end)}"
    year = (
        f"{change(tile.change_year_pct)} on a year earlier"
        if tile.change_year_pct is not None
        else None
    )
    column.metric(md(tile.label), count(tile.count), year, delta_color="inverse")
    earlier = (
        f"{format_month(tile.window_start.replace(year=tile.window_start.year - 1))} to "
        f"{format_month(tile.window_end.replace(year=tile.window_end.year - 1))}"
    )
    stored = f" {tile.stored_note}" if tile.stored_note else ""
    stored += "".join(f" {md(b.sentence())}" for b in tile.series_breaks)
    column.caption(
        f"{window}.{stored} A year earlier ({earlier}): "
        + (count(tile.year_earlier) if tile.year_earlier is not None else "not fully stored")
        + ". 2019: "
        + (
            count(tile.count_2019)
            + (f" ({change(tile.change_2019_pct)})." if tile.change_2019_pct is not None else ".")
            if tile.count_2019 is not None
            else "not fully stored."
        )
    )
    rows.append(
        {
            "measure": tile.label,
            "window": window,
            "count": tile.count,
            "a year earlier": tile.year_earlier,
            "change on a year earlier (%)": tile.change_year_pct,
            "2019": tile.count_2019,
            "change on 2019 (%)": tile.change_2019_pct,
            "months stored": tile.months_with_data,
            "series breaks": ", ".join(format_month(b.month) for b in tile.series_breaks),
        }
    )
if not rows:
    st.info("No outcome counts are stored for the 12 months to the end of this period.")
    st.stop()
table = pd.DataFrame(rows)
long = table.melt(
    id_vars="measure",
    value_vars=["change on a year earlier (%)", "change on 2019 (%)"],
    var_name="against",
    value_name="change",
).dropna()
if long.empty:
    st.info(
        "No change can be worked out: it needs all 12 months stored in the window and in the "
        "same months a year earlier or 2019. The counts are in the table."
    )
    st.dataframe(table, hide_index=True, column_config=number_columns(table))
    table_download(table, name="overview", key="overview_csv")
    st.stop()
chart = (
    alt.Chart(long)
    .mark_bar()
    .encode(
        y=alt.Y("measure:N", title=None),
        yOffset="against:N",
        x=alt.X("change:Q", title="Change (%)"),
        color=alt.Color(
            "against:N", title="Compared with", scale=alt.Scale(range=list(OKABE_ITO[:2]))
        ),
        tooltip=["measure", "against", alt.Tooltip("change:Q", format=D3["change"])],
    )
)
labels = chart.mark_text(align="left", dx=3).encode(
    text=alt.Text("change:Q", format=D3["change"]), color=alt.value("black")
)
chart_with_table(
    alt.layer(chart, labels),
    table,
    summary=(
        "Change of each outcome's last 12 months, against a year earlier and against 2019, "
        "bars labelled with the percentage: "
        + "; ".join(
            f"{r['measure']} {count(r['count'])}"
            + (
                f" ({change(r['change on a year earlier (%)'])} on a year earlier)"
                if pd.notna(r["change on a year earlier (%)"])
                else ""
            )
            for r in rows
        )
        + "."
    ),
    name="overview",
    key="overview",
)
