"""Completeness: which delivery returns are missing or late; admins sign months off."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.common import (
    attempt,
    can,
    current_principal,
    data_changed,
    md,
    session,
    show_error,
    table_download,
)
from registry import deliveries
from registry.periods import PeriodError, add_months, format_month, last_complete_month, parse_month

st.title("Returns and sign-off")
who = current_principal()
latest = last_complete_month()
c1, c2 = st.columns(2)
start_text = c1.text_input(
    "From month (YYYY-MM)", value=format_month(add_months(latest, -5)), key="complete_from"
)
end_text = c2.text_input("To month (YYYY-MM)", value=format_month(latest), key="complete_to")
try:
    start, end = parse_month(start_text), parse_month(end_text)
except PeriodError as exc:
    show_error(exc)
    st.stop()

with session() as s:
    frame = attempt(lambda: deliveries.completeness(s, principal=who, start=start, end=end))
    if frame is None:
        st.stop()
    silent = deliveries.never_reported(s, principal=who, start=start, end=end)
    signed = deliveries.signed_off_months(s)
st.caption(
    "A programme is expected to report each month it runs for every borough it has reported in; "
    f"a return is due by day {deliveries.DUE_DAY} of the following month."
)
counts = frame["status"].value_counts()
m1, m2, m3 = st.columns(3)
m1.metric("Received on time", int(counts.get("received", 0)))
m2.metric("Late", int(counts.get("late", 0)))
m3.metric("Missing", int(counts.get("missing", 0)))
if silent:
    st.warning(
        f"Not counted: {', '.join(silent)} ran in this period but never reported a delivery, so "
        "no borough's return is expected of them yet."
    )
gaps = frame[frame["status"].isin(["missing", "late"])]
st.dataframe(gaps, hide_index=True, width="stretch", key="completeness_gaps")
table_download(gaps, name="missing-and-late-returns", key="gaps_csv")

st.subheader("Signed-off months")
st.dataframe(pd.DataFrame(signed), hide_index=True, key="signed_off_table")
if can("months.sign_off"):
    month_text = st.text_input("Month (YYYY-MM)", value=format_month(latest), key="sign_month")
    note = st.text_input("Note or reason", key="sign_note")
    b1, b2 = st.columns(2)
    for button, label, key in ((b1, "Sign off", "sign_off"), (b2, "Reopen", "reopen")):
        if button.button(label, key=key):

            def run(action: str = key) -> bool:
                month = parse_month(month_text)
                with session() as s:
                    if action == "sign_off":
                        deliveries.sign_off_month(s, principal=who, month=month, note=note)
                    else:
                        deliveries.reopen_month(s, principal=who, month=month, reason=note)
                return True

            try:
                done = attempt(run)
            except PeriodError as exc:
                show_error(exc)
                done = None
            if done:
                data_changed()
                st.success(md(f"{month_text}: {label.lower()} done."))
                st.rerun()
