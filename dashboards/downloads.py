"""Downloads: funder outcome summaries as CSV, Excel and PDF."""

from __future__ import annotations

import streamlit as st

from dashboards.common import (
    current_principal,
    data_state,
    md,
    number_columns,
    session,
    show_error,
    table_download,
)
from registry.auth import Principal
from registry.errors import RegistryError
from registry.numbers import count, money
from registry.periods import financial_year_window
from registry.reports.build import Report, Scope, build_report, report_choices
from registry.reports.render import FORMATS, render

st.title("Outcome summaries")
st.write(
    "Summaries of delivery and outcomes for a funding stream, a programme or the whole VRU, "
    "ready to forward: small participant counts are suppressed and every file states the data "
    "version it was built from."
)
who = current_principal()
with session() as s:
    choices = report_choices(s, principal=who)

kinds = (
    (["Funding stream"] if choices.funding_streams else [])
    + (["Programme"] if choices.programmes else [])
    + (["All VRU programmes"] if choices.allow_all else [])
)
if not kinds:
    st.info("Your account is not linked to any funding stream yet; ask an administrator.")
    st.stop()
if not choices.financial_years:  # the years the principal's own programmes delivered in
    st.info("There are no deliveries to summarise yet.")
    st.stop()
left, middle, right = st.columns(3)
kind = left.radio("Summarise", kinds, key="report_kind")
name = None
if kind == "Funding stream":
    name = middle.selectbox("Funding stream", choices.funding_streams, key="report_stream")
elif kind == "Programme":
    name = middle.selectbox("Programme", choices.programmes, key="report_programme")
year = right.selectbox(
    "Financial year",
    choices.financial_years,
    # The latest complete year by default: an unfinished one reads as a fall in delivery.
    index=choices.financial_years.index(choices.default_year)
    if choices.default_year in choices.financial_years
    else 0,
    key="report_year",
    help="April to March. A year not yet finished is cut at the last complete month.",
)
granularity = right.radio(
    "Delivery tables by", ["month", "quarter"], horizontal=True, key="report_granularity"
)
scope = Scope({"Funding stream": "funding_stream", "Programme": "programme"}.get(kind, "all"), name)
version = data_state().version


@st.cache_data(ttl=600, max_entries=32, show_spinner="Building the summary...")
def _build(
    scope: Scope, year: str, granularity: str, who: Principal, version: int
) -> tuple[Report, dict[str, bytes]] | str:
    """The summary and its three files, cached per data version and principal (name, role and
    funder are all in the key, so a hit never skips the check :func:`build_report` makes)."""
    try:
        with session() as s:
            built = build_report(
                s,
                principal=who,
                scope=scope,
                window=financial_year_window(year),
                granularity=granularity,
            )
    except RegistryError as exc:
        return str(exc)
    return built, {fmt: render(built, fmt) for fmt in FORMATS}


result = _build(scope, year, granularity, who, version)
if isinstance(result, str):
    show_error(result)
    st.stop()
built, files = result

h = built.headline
cols = st.columns(4)
cols[0].metric("Opportunities", count(h["opportunities"]))
cols[1].metric(
    "Participants", str(h["participants"]) if h["participants"] is not None else "not recorded"
)
cols[2].metric("Boroughs reached", count(h["boroughs_reached"]))
cols[3].metric(
    "Cost per opportunity",
    "not recorded"
    if h["cost_per_opportunity_gbp"] is None
    else money(h["cost_per_opportunity_gbp"]),
)
st.caption(
    md(
        f"{built.scope.title()}, {built.window.label()}; "
        f"registry data version {built.data_version}."
    )
)
st.info(
    f"Small numbers are protected in every file: participant counts below {built.threshold} are "
    "hidden at the finest grain (programme, borough and month) and every participant figure is "
    "worked out from the protected counts, so a total that includes a hidden count shows as a "
    "range (for example 120 to 155). No combination of downloads can work a hidden count out; "
    "the Notes below and in each file say more.",
    icon=":material/shield:",
)

stem = built.file_stem()
d1, d2, d3 = st.columns(3)
d1.download_button(
    "Download CSV (zip)",
    files["csv"],
    file_name=f"{stem}.zip",
    mime="application/zip",
    key="dl_csv",
)
d2.download_button(
    "Download Excel",
    files["xlsx"],
    file_name=f"{stem}.xlsx",
    key="dl_xlsx",
    mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)
d3.download_button(
    "Download PDF", files["pdf"], file_name=f"{stem}.pdf", mime="application/pdf", key="dl_pdf"
)

st.subheader("Outcomes in the boroughs reached")
st.dataframe(
    built.tables["outcomes"],
    hide_index=True,
    width="stretch",
    column_config=number_columns(built.tables["outcomes"]),
)
table_download(built.tables["outcomes"], name=f"{stem}-outcomes", key="outcomes_csv")
st.subheader("Delivery by borough")
st.dataframe(
    built.tables["delivery_by_borough"],
    hide_index=True,
    width="stretch",
    column_config=number_columns(built.tables["delivery_by_borough"]),
)
table_download(
    built.tables["delivery_by_borough"], name=f"{stem}-delivery-by-borough", key="delivery_csv"
)
st.subheader("Notes")
for note in built.notes:
    st.markdown(f"- {md(note)}")
st.caption(md("Programmes covered: " + ", ".join(built.programmes) + "."))
