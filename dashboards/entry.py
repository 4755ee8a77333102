"""Record deliveries: one return by form, many in a grid, or a spreadsheet upload.

Each tab is drawn by a function of its own that returns early on a mistake, so a month typed
wrongly in one tab leaves the others working. Every save goes through :func:`write`, which opens
its own transaction: a refused save leaves nothing behind. After a save the page is drawn again
from the registry (with the message kept), so the next edit starts from what was saved.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboards.common import (
    attempt,
    can,
    current_principal,
    md,
    number_columns,
    session,
    show_error,
    table_download,
    write,
)
from registry import deliveries, programmes
from registry.boroughs import BOROUGHS
from registry.numbers import count
from registry.periods import PeriodError, add_months, format_month, last_complete_month, parse_month
from registry.problems import Problem
from registry.uploads import template_csv

st.title("Record deliveries")
who = current_principal()
with session() as s:
    names = [p["name"] for p in programmes.list_programmes(s, principal=who)]
if not names:
    st.info("There are no programmes yet; add one on the Programmes page first.")
    st.stop()
writer = can("deliveries.write")


def _saved(tab: str, message: str, warnings: list[Problem]) -> None:
    """After a save: keep the message and draw the page again (on the new data version)."""
    st.session_state[f"{tab}_flash"] = (message, warnings)
    st.rerun()


def _show_saved(tab: str) -> None:
    message, warnings = st.session_state.pop(f"{tab}_flash", (None, []))
    if message:
        st.success(md(message))
    for w in warnings:
        st.warning(md(f"Row {w.row}: {w.reason}"))


def _month(text: str) -> dt.date | None:
    try:
        return parse_month(text)
    except PeriodError as exc:
        show_error(exc)
        return None


def one_return() -> None:
    c1, c2, c3 = st.columns(3)
    programme = c1.selectbox("Programme", names, key="form_programme")
    borough = c2.selectbox("Borough", [b.name for b in BOROUGHS], key="form_borough")
    month_text = c3.text_input(
        "Month (YYYY-MM)", value=format_month(last_complete_month()), key="form_month"
    )
    month = _month(month_text)
    if month is None:
        return
    _show_saved("form")
    key = (programme, borough, format_month(month))
    # Remember the figures as first shown, so a save made after someone else's is refused.
    if st.session_state.get("form_read_key") != key:
        with session() as s:
            st.session_state["form_read"] = attempt(
                lambda: deliveries.get_delivery(
                    s, principal=who, programme=programme, borough=borough, month=month
                )
            )
        st.session_state["form_read_key"] = key
    read = st.session_state.get("form_read")
    if read:
        st.caption(
            f"Recorded figures (version {read['version']}, last saved by "
            f"{md(read['updated_by'])}); "
            "saving new ones is an amendment, kept in the audit trail."
        )
    else:
        st.caption("Nothing recorded yet for this programme, borough and month.")
    # The version is part of the keys, so figures saved (here or elsewhere) and read again are
    # shown as saved rather than as typed into an older copy of the form.
    suffix = f"{'_'.join(key)}_{read['version'] if read else 0}"
    with st.form("delivery_form"):
        opportunities = st.number_input(
            "Positive opportunities",
            min_value=0,
            step=1,
            value=int(read["opportunities"]) if read else 0,
            key=f"form_opportunities_{suffix}",
        )
        participants = st.number_input(
            "Participants (optional)",
            min_value=0,
            step=1,
            value=read["participants"] if read else None,
            key=f"form_participants_{suffix}",
        )
        spend = st.number_input(
            "Spend in pounds (optional)",
            min_value=0.0,
            step=0.01,
            format="%.2f",
            value=float(read["spend_gbp"]) if read and read["spend_gbp"] is not None else None,
            key=f"form_spend_{suffix}",
        )
        submitted = st.form_submit_button("Save", type="primary", disabled=not writer)
    if submitted:
        saved = write(
            lambda s: deliveries.save_delivery(
                s,
                principal=who,
                programme=programme,
                borough=borough,
                month=month,
                opportunities=opportunities,
                participants=participants,
                spend_gbp=None if spend is None else f"{spend:.2f}",
                read=read,
            )
        )
        if saved is not None:
            st.session_state.pop("form_read_key", None)
            what = "Amended" if saved.amended else "Added" if saved.added else "No change to"
            _saved(
                "form", f"{what} the figures for {programme}, {borough}, {key[2]}.", saved.warnings
            )
    if read and writer:
        with st.expander("Delete these figures"):
            reason = st.text_input("Reason (kept in the audit trail)", key="delete_reason")
            if st.button("Delete", key="delete_delivery"):
                done = write(
                    lambda s: (
                        deliveries.delete_delivery(
                            s,
                            principal=who,
                            programme=programme,
                            borough=borough,
                            month=month,
                            reason=reason,
                            version=read["version"],
                        )
                        or True
                    )
                )
                if done:
                    st.session_state.pop("form_read_key", None)
                    _saved("form", "Deleted (kept in the database with your reason).", [])
    if st.button("Reload figures", key="form_reload"):
        st.session_state.pop("form_read_key", None)
        st.rerun()


def grid() -> None:
    grid_programme = st.selectbox("Programme", names, key="grid_programme")
    latest = last_complete_month()
    c1, c2 = st.columns(2)
    start = _month(
        c1.text_input(
            "From month (YYYY-MM)", value=format_month(add_months(latest, -2)), key="grid_from"
        )
    )
    end = _month(c2.text_input("To month (YYYY-MM)", value=format_month(latest), key="grid_to"))
    if start is None or end is None:
        return
    if end < start:
        st.error(f"The months end ({format_month(end)}) before they start ({format_month(start)}).")
        return
    _show_saved("grid")
    load_key = (grid_programme, start, end)
    if st.session_state.get("grid_loaded") != load_key:
        with session() as s:
            original = attempt(
                lambda: deliveries.programme_grid(
                    s, principal=who, programme=grid_programme, start=start, end=end
                )
            )
        if original is None:
            return
        st.session_state["grid_original"] = original
        st.session_state["grid_loaded"] = load_key
        # A fresh editor key on every load, so edits already saved are not replayed.
        st.session_state["grid_generation"] = st.session_state.get("grid_generation", -1) + 1
    original = st.session_state["grid_original"]
    span = f"{format_month(start)} to {format_month(end)}"
    st.caption(
        f"{count(len(original))} recorded returns of {md(grid_programme)}, {span}, newest first. "
        "Edit figures in place or add rows at the bottom (borough, month as YYYY-MM); rows you "
        "do not change, and rows left blank, are left alone. Delete a return on the One "
        "return tab."
    )
    editor_key = f"grid_editor_{st.session_state['grid_generation']}"
    edited = st.data_editor(
        original,
        num_rows="add",
        disabled=["version"],
        hide_index=True,
        key=editor_key,
        column_config={
            "borough": st.column_config.SelectboxColumn(options=[b.name for b in BOROUGHS]),
            "spend_gbp": st.column_config.NumberColumn(format="%.2f"),
        },
        width="stretch",
    )
    edits = st.session_state.get(editor_key) or {}
    if writer and (edits.get("edited_rows") or edits.get("added_rows")):
        with session() as s:
            pending = attempt(
                lambda: deliveries.preview_grid(
                    s, principal=who, programme=grid_programme, original=original, edited=edited
                )
            )
        if pending is not None and pending.ok:
            st.info(
                f"Would add {count(pending.count('added'))} and amend "
                f"{count(pending.count('amended'))} when saved."
            )
    left, right = st.columns(2)
    if left.button("Reload grid", key="grid_reload"):
        st.session_state.pop("grid_loaded", None)
        st.rerun()
    if right.button("Save grid", type="primary", key="grid_save", disabled=not writer):
        saved = write(
            lambda s: deliveries.save_grid(
                s, principal=who, programme=grid_programme, original=original, edited=edited
            )
        )
        if saved is not None:
            st.session_state.pop("grid_loaded", None)
            _saved(
                "grid",
                f"Saved: {count(saved.added)} added, {count(saved.amended)} amended.",
                saved.warnings,
            )


def upload() -> None:
    st.download_button(
        "Download the template (CSV)",
        template_csv(),
        file_name="vru-deliveries-template.csv",
        mime="text/csv",
        key="template_download",
    )
    _show_saved("upload")
    # A new uploader after each save, so the saved file, its preview and its button go away.
    generation = st.session_state.get("upload_generation", 0)
    uploaded = st.file_uploader(
        "CSV or XLSX in the template's columns", key=f"upload_file_{generation}"
    )
    if uploaded is None:
        return
    content = uploaded.getvalue()
    token = (uploaded.file_id, len(content))
    # The preview is kept while the same file is shown, so "Confirm" saves exactly what was
    # previewed, and is refused if the registry changed in between.
    if st.session_state.get("upload_token") != token:
        with st.status("Checking the file...", expanded=False) as status, session() as s:
            st.session_state["upload_preview"] = attempt(
                lambda: deliveries.preview_upload(
                    s, principal=who, content=content, file_name=uploaded.name
                )
            )
            status.update(label="File checked.", state="complete")
        st.session_state["upload_token"] = token
    checked = st.session_state["upload_preview"]
    if checked is None:
        return
    summary = checked.summary()
    if checked.problems:
        rows_with = len({p.row for p in checked.problems})
        show_error(
            f"The file has {count(len(checked.problems))} problem(s) in "
            f"{count(rows_with)} row(s); nothing can be saved until they are fixed. The first: "
            + "; ".join(
                f"row {p.row}, {p.column or 'file'}: {p.reason}" for p in checked.problems[:3]
            )
        )
        errors = pd.DataFrame(summary["errors"])
        st.dataframe(errors, hide_index=True, key="upload_errors")
        # The whole list, to fix the file or send back to the partner who sent it.
        table_download(errors, name=f"{Path(uploaded.name).stem}-problems", key="errors_csv")
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Would add", count(summary["added"]))
    c2.metric("Would amend", count(summary["amended"]))
    c3.metric("Unchanged", count(summary["unchanged"]))
    preview = checked.table()
    st.dataframe(
        preview, hide_index=True, key="upload_preview", column_config=number_columns(preview)
    )
    for w in checked.warnings[:20]:
        st.warning(md(f"Row {w.row}: {w.reason}"))
    if not summary["added"] and not summary["amended"]:
        st.info("The registry already holds every figure in this file: there is nothing to save.")
        return
    today = dt.date.today()
    received = st.date_input(
        "Returns received on (a return that arrived after its due date is late)",
        value=today,
        max_value=today,
        key="upload_received",
    )
    backfill = st.checkbox(
        "Backfill: past figures loaded as history, not returns (never counted as late)",
        key="upload_backfill",
    )
    if st.button("Confirm and save", type="primary", key="upload_confirm", disabled=not writer):
        saved = write(
            lambda s: deliveries.commit(
                s, principal=who, preview=checked, received_on=received, backfill=backfill
            )
        )
        st.session_state.pop("upload_token", None)
        if saved is not None:
            st.session_state["upload_generation"] = generation + 1
            _saved(
                "upload",
                f"Saved {uploaded.name}: {count(saved.added)} added, {count(saved.amended)} "
                f"amended, {count(saved.unchanged)} unchanged.",
                [],
            )


form_tab, grid_tab, upload_tab = st.tabs(["One return", "Grid", "Upload a spreadsheet"])
with form_tab:
    one_return()
with grid_tab:
    grid()
with upload_tab:
    upload()
