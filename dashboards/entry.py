"""Record deliveries: one return by form, many in a grid, or a spreadsheet upload."""

from __future__ import annotations

from pathlib import Path

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
from registry import deliveries, programmes
from registry.boroughs import BOROUGHS
from registry.periods import PeriodError, format_month, last_complete_month, parse_month
from registry.uploads import template_csv

st.title("Record deliveries")
who = current_principal()
with session() as s:
    names = [p["name"] for p in programmes.list_programmes(s, principal=who)]
if not names:
    st.info("There are no programmes yet; add one on the Programmes page first.")
    st.stop()
writer = can("deliveries.write")


def _show_warnings(warnings: list) -> None:
    for w in warnings:
        st.warning(md(f"Row {w.row}: {w.reason}"))


form_tab, grid_tab, upload_tab = st.tabs(["One return", "Grid", "Upload a spreadsheet"])

with form_tab:
    c1, c2, c3 = st.columns(3)
    programme = c1.selectbox("Programme", names, key="form_programme")
    borough = c2.selectbox("Borough", [b.name for b in BOROUGHS], key="form_borough")
    month_text = c3.text_input(
        "Month (YYYY-MM)", value=format_month(last_complete_month()), key="form_month"
    )
    try:
        month = parse_month(month_text)
    except PeriodError as exc:
        show_error(exc)
        st.stop()
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
        with session() as s:
            saved = attempt(
                lambda: deliveries.save_delivery(
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
            data_changed()
            st.session_state.pop("form_read_key", None)
            what = "Amended" if saved.amended else "Added" if saved.added else "No change to"
            st.success(md(f"{what} the figures for {programme}, {borough}, {key[2]}."))
            _show_warnings(saved.warnings)
    if read and writer:
        with st.expander("Delete these figures"):
            reason = st.text_input("Reason (kept in the audit trail)", key="delete_reason")
            if st.button("Delete", key="delete_delivery"):
                with session() as s:
                    done = attempt(
                        lambda: (
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
                    data_changed()
                    st.session_state.pop("form_read_key", None)
                    st.success("Deleted (kept in the database with your reason).")
    if st.button("Reload figures", key="form_reload"):
        st.session_state.pop("form_read_key", None)
        st.rerun()

with grid_tab:
    grid_programme = st.selectbox("Programme", names, key="grid_programme")
    if st.session_state.get("grid_loaded") != grid_programme:
        with session() as s:
            st.session_state["grid_original"] = deliveries.programme_grid(
                s, principal=who, programme=grid_programme
            )
        st.session_state["grid_loaded"] = grid_programme
        # A fresh editor key on every load, so edits already saved are not replayed.
        st.session_state["grid_generation"] = st.session_state.get("grid_generation", -1) + 1
    original: pd.DataFrame = st.session_state["grid_original"]
    st.caption(
        "Edit figures in place or add rows at the bottom (borough, month as YYYY-MM). "
        "Rows you do not change are left alone; delete a return from the One return tab."
    )
    edited = st.data_editor(
        original,
        num_rows="add",
        disabled=["version"],
        hide_index=True,
        key=f"grid_editor_{st.session_state['grid_generation']}",
        column_config={
            "borough": st.column_config.SelectboxColumn(options=[b.name for b in BOROUGHS]),
            "spend_gbp": st.column_config.NumberColumn(format="%.2f"),
        },
        width="stretch",
    )
    if st.button("Reload grid", key="grid_reload"):
        st.session_state.pop("grid_loaded", None)
        st.rerun()
    if st.button("Save grid", type="primary", key="grid_save", disabled=not writer):
        with session() as s:
            saved = attempt(
                lambda: deliveries.save_grid(
                    s, principal=who, programme=grid_programme, original=original, edited=edited
                )
            )
        if saved is not None:
            data_changed()
            st.session_state.pop("grid_loaded", None)
            st.success(f"Saved: {saved.added} added, {saved.amended} amended.")
            _show_warnings(saved.warnings)

with upload_tab:
    st.download_button(
        "Download the template (CSV)",
        template_csv(),
        file_name="vru-deliveries-template.csv",
        mime="text/csv",
        key="template_download",
    )
    uploaded = st.file_uploader("CSV or XLSX in the template's columns", key="upload_file")
    if uploaded is not None:
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
        if checked is not None:
            summary = checked.summary()
            c1, c2, c3, c4 = st.columns(4)
            c1.metric("Added", summary["added"])
            c2.metric("Amended", summary["amended"])
            c3.metric("Unchanged", summary["unchanged"])
            c4.metric("Rejected", summary["rejected"])
            if checked.problems:
                st.error(
                    md(
                        f"The file has {len(checked.problems)} problem(s); nothing can be saved "
                        "until they are fixed. The first: "
                        + "; ".join(
                            f"row {p.row}, {p.column or 'file'}: {p.reason}"
                            for p in checked.problems[:3]
                        )
                    )
                )
                errors = pd.DataFrame(summary["errors"])
                st.dataframe(errors, hide_index=True, key="upload_errors")
                # The whole list, to fix the file or send back to the partner who sent it.
                table_download(
                    errors, name=f"{Path(uploaded.name).stem}-problems", key="errors_csv"
                )
            else:
                st.dataframe(checked.table(), hide_index=True, key="upload_preview")
                _show_warnings(checked.warnings[:20])
                if st.button("Confirm and save", type="primary", key="upload_confirm"):
                    progress = st.progress(0.0, text="Saving...")
                    with session() as s:
                        saved = attempt(
                            lambda: deliveries.commit(s, principal=who, preview=checked)
                        )
                    progress.progress(1.0, text="Done.")
                    st.session_state.pop("upload_token", None)
                    if saved is not None:
                        data_changed()
                        st.success(
                            md(
                                f"Saved {uploaded.name}: {saved.added} added, {saved.amended} "
                                f"amended, {saved.unchanged} unchanged."
                            )
                        )
