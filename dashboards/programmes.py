"""Programmes and funding streams: list, add, edit details, close."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from dashboards.common import (
    can,
    current_principal,
    session,
    table_download,
    write,
)
from registry import programmes

st.title("Programmes")
who = current_principal()
with session() as s:
    rows = programmes.list_programmes(s, principal=who)
    streams = programmes.list_funding_streams(s, principal=who)

table = pd.DataFrame(rows)
st.dataframe(table, hide_index=True, width="stretch", key="programmes_table")
table_download(table, name="programmes", key="programmes_csv")
writer = can("programmes.write")


def _do(message: str, fn: Callable[[Session], object]) -> None:
    if write(lambda s: fn(s) or True):
        st.success(message)


if writer:
    with st.expander("Add a funding stream", expanded=not streams), st.form("add_stream"):
        stream_name = st.text_input("Name", key="stream_name")
        funder = st.text_input("Funder", key="stream_funder")
        if st.form_submit_button("Add funding stream"):
            _do(
                f"Added funding stream {stream_name}.",
                lambda s: programmes.add_funding_stream(
                    s, principal=who, name=stream_name, funder=funder
                ),
            )
    if streams:
        with st.expander("Add a programme", expanded=not rows), st.form("add_programme"):
            name = st.text_input("Name (unique)", key="programme_name")
            stream = st.selectbox(
                "Funding stream", [x["name"] for x in streams], key="programme_stream"
            )
            partner = st.text_input("Delivery partner", key="programme_partner")
            kind = st.text_input("Intervention type", key="programme_type")
            start = st.date_input("Start date", value=dt.date.today(), key="programme_start")
            end = st.date_input("End date (optional)", value=None, key="programme_end")
            if st.form_submit_button("Add programme", type="primary"):
                _do(
                    f"Added programme {name}.",
                    lambda s: programmes.add_programme(
                        s,
                        principal=who,
                        name=name,
                        funding_stream=stream,
                        partner=partner,
                        intervention_type=kind,
                        start=start,
                        end=end,
                    ),
                )
    if rows:
        with st.expander("Edit or close a programme"):
            target = st.selectbox("Programme", [r["name"] for r in rows], key="edit_target")
            current = next(r for r in rows if r["name"] == target)
            new_name = st.text_input("Name", value=target, key=f"edit_name_{target}")
            new_partner = st.text_input(
                "Delivery partner", value=current["partner"] or "", key=f"edit_partner_{target}"
            )
            new_end = st.date_input(
                "End date (closes the programme: no deliveries after it)",
                value=current["end_date"],
                key=f"edit_end_{target}",
            )
            if st.button("Save changes", key="edit_save"):
                _do(
                    f"Saved {new_name}.",
                    lambda s: programmes.edit_programme(
                        s,
                        principal=who,
                        name=target,
                        changes={"name": new_name, "partner": new_partner, "end_date": new_end},
                    ),
                )
