"""Completeness: which delivery returns are missing or late; admins sign months off."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.common import (
    attempt,
    can,
    current_principal,
    session,
    show_error,
    table_download,
    write,
)
from registry import deliveries
from registry.numbers import count
from registry.periods import PeriodError, add_months, format_month, last_complete_month, parse_month

st.title("Returns and sign-off")
who = current_principal()
latest = last_complete_month()


def sign_off_box() -> None:
    """Sign a month off, once the admin has seen how many of its returns are missing, or
    reopen one."""
    month_text = st.text_input("Month (YYYY-MM)", value=format_month(latest), key="sign_month")
    note = st.text_input("Note or reason", key="sign_note")
    flash = st.session_state.pop("sign_flash", None)
    if flash:
        st.success(flash)
    try:
        month = parse_month(month_text)
    except PeriodError as exc:
        show_error(exc)
        return
    label = format_month(month)
    b1, b2 = st.columns(2)
    if b1.button("Sign off", key="sign_off"):
        st.session_state["sign_pending"] = label
    if b2.button("Reopen", key="reopen"):
        st.session_state.pop("sign_pending", None)
        done = write(
            lambda s: deliveries.reopen_month(s, principal=who, month=month, reason=note) or True
        )
        if done:
            _done(f"{label} is open again: its figures can change.")
    if st.session_state.get("sign_pending") != label:
        return
    with session() as s:
        counts = attempt(lambda: deliveries.month_returns(s, principal=who, month=month))
    if counts is None:
        return
    expected = sum(counts.values())
    missing, late = counts["missing"] + counts["not yet due"], counts["late"]
    if missing:
        st.warning(
            f"**{count(missing)} of {count(expected)} expected returns for {label} are "
            f"missing** ({count(late)} arrived late). Once signed off, no figure for {label} can "
            "change until an admin reopens it. Sign it off anyway?"
        )
    else:
        st.info(
            f"All {count(expected)} expected returns for {label} are in ({count(late)} arrived "
            f"late). Once signed off, no figure for {label} can change until an admin reopens it."
        )
    c1, c2 = st.columns(2)
    if c1.button(f"Confirm: sign off {label}", type="primary", key="sign_off_confirm"):
        signed = write(
            lambda s: deliveries.sign_off_month(s, principal=who, month=month, note=note)
        )
        st.session_state.pop("sign_pending", None)
        if signed is not None:
            _done(
                f"{label} is signed off"
                + (f" with {count(missing)} returns missing." if missing else ".")
            )
    if c2.button("Cancel", key="sign_off_cancel"):
        st.session_state.pop("sign_pending", None)
        st.rerun()


def _done(message: str) -> None:
    st.session_state["sign_flash"] = message
    st.rerun()


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
    f"a return is due by day {deliveries.DUE_DAY} of the following month, and is late if it "
    "arrived after that. Backfilled figures (past figures loaded as history, such as the demo "
    "data) were never returns, so they are neither on time nor late."
)
counts = frame["status"].value_counts()
m1, m2, m3, m4 = st.columns(4)
m1.metric("Received on time", count(counts.get("received", 0)))
m2.metric("Late", count(counts.get("late", 0)))
m3.metric("Missing", count(counts.get("missing", 0)))
m4.metric("Backfilled", count(counts.get("backfilled", 0)))
if silent:
    st.warning(
        f"Not counted: {', '.join(silent)} ran in this period but never reported a delivery, so "
        "no borough's return is expected of them yet."
    )
gaps = frame[frame["status"].isin(["missing", "late"])]
st.dataframe(gaps, hide_index=True, width="stretch", key="completeness_gaps")
table_download(gaps, name="missing-and-late-returns", key="gaps_csv")

st.subheader("Signed-off months")
if signed:
    st.dataframe(pd.DataFrame(signed), hide_index=True, key="signed_off_table")
else:
    st.caption("No month is signed off yet.")
if can("months.sign_off"):
    sign_off_box()
