"""Home: what the registry holds, the last 12 months of each outcome, and how fresh it is."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.common import can, current_principal, md, session
from registry.figures.home import home_figures
from registry.numbers import count
from registry.outcomes.sources import where_to_load
from registry.periods import format_month

st.title("VRU registry")
st.write(
    "Positive opportunities delivered by Violence Reduction Unit programmes in London's 33 "
    "boroughs, and the outcomes the VRU watches: homicide, knife crime with injury where the "
    "victim is under 25, and gun crime."
)

who = current_principal()
if not can("outcomes.read"):
    st.info(
        "Your account can download outcome summaries for your own funding streams from the "
        "Downloads page."
    )
    st.stop()

with session() as s:
    figures = home_figures(s, principal=who)

if figures.programmes == 0 and not any(m.total for m in figures.measures):
    st.info(
        "The registry is empty. An administrator can load programme and outcome data with "
        "`vru import ...`, or demo data with `vru seed`."
    )
    st.stop()

span = (
    f"{format_month(figures.first_delivery_month)} to {format_month(figures.last_delivery_month)}"
    if figures.first_delivery_month and figures.last_delivery_month
    else "no deliveries recorded"
)
left, right = st.columns(2)
left.metric(
    "Positive opportunities delivered to date",
    count(figures.opportunities_to_date),
    help=f"All recorded deliveries, {span}.",
)
left.caption(f"Recorded deliveries {span}.")
right.metric("Programmes in the registry", count(figures.programmes))

st.subheader("Outcomes, last 12 months of data")
st.caption(
    "London totals: every borough plus counts the police place in no borough (such as "
    "'Unknown' or airports), so they match the publisher's totals."
)
with_data = [m for m in figures.measures if m.window is not None]
columns = st.columns(max(1, len(with_data)))
rows = []
for column, m in zip(columns, with_data, strict=False):
    window = m.window.label() if m.window else ""
    column.metric(md(m.label), count(m.total), help=md(f"{m.unit.capitalize()}, {window}."))
    part = f" {m.stored_note}" if m.stored_note else ""
    column.caption(f"{window}; {count(m.unallocated)} of them in no borough.{part}")
    rows.append(
        {
            "measure": md(m.label),
            "window": window,
            "London total": m.total,
            "of which unallocated": m.unallocated,
            "unit": md(m.unit),
            "months stored": m.months_with_data,
        }
    )
without = [m.label for m in figures.measures if m.window is None]
if without:
    st.caption(md("No counts loaded yet for: " + ", ".join(without) + "."))
    with session() as s:
        hints = where_to_load(s, principal=who)
    for hint in hints:
        st.info(md(hint["sentence"]))
if rows:
    shown = pd.DataFrame(rows).set_index("measure")
    for heading in ("London total", "of which unallocated", "months stored"):
        shown[heading] = shown[heading].map(count)
    st.table(shown)
else:
    st.info(
        "No outcome counts are loaded yet. An administrator can import them on the Outcome data "
        "page or with `vru import crime`."
    )

st.subheader("Data freshness")
last_import = (
    figures.last_import_at.strftime("%d %B %Y %H:%M UTC") if figures.last_import_at else "never"
)
last_month = format_month(figures.last_delivery_month) if figures.last_delivery_month else "none"
st.write(f"Latest delivery month: **{last_month}**. Latest data load: **{last_import}**.")
