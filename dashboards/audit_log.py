"""Audit trail (admins only): every change, import, role change and failed sign-in."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from dashboards.common import attempt, current_principal, session
from registry import audit
from registry.numbers import count

st.title("Audit trail")
st.write(
    "Every create, amendment, deletion, import, role change and sign-in failure, newest "
    "first. Events cannot be edited or deleted."
)
who = current_principal()

c1, c2, c3, c4 = st.columns(4)
actor = c1.text_input("User", key="audit_actor")
action = c2.selectbox("Action", ["(any)", *audit.ACTIONS], key="audit_action")
entity = c3.text_input("Entity (e.g. delivery, app_user)", key="audit_entity")
since = c4.date_input("Since", value=None, key="audit_since")

flt = audit.AuditFilter(
    actor=actor or None,
    action=None if action == "(any)" else action,
    entity=entity or None,
    since=dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC) if since else None,
    limit=5000,
)
with session() as s:
    rows = attempt(lambda: audit.list_events(s, principal=who, flt=flt))
if rows is None:
    st.stop()
st.caption(
    f"{count(len(rows))} events shown (at most 5,000; narrow the filters to see older ones). "
    "Each names what it is about (a delivery's programme, borough and month) and its change, "
    "before → after; the CSV also holds the raw record."
)
st.dataframe(
    pd.DataFrame(rows, columns=audit.READABLE_COLUMNS).rename(
        columns={"occurred_at": "when (UTC)", "actor": "who", "about": "about"}
    ),
    hide_index=True,
    width="stretch",
    key="audit_table",
)
st.download_button(
    "Download CSV",
    audit.events_csv(rows),
    file_name="vru-audit.csv",
    mime="text/csv",
    key="audit_csv",
)
