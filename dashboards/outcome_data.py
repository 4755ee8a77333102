"""Outcome data (admins): load crime and population files as published, preview what changes,
then import; see every import batch and every count a newer release revised."""

from __future__ import annotations

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
    write,
)
from registry.errors import RegistryError
from registry.numbers import count
from registry.outcomes import formats, mapping, measures, store
from registry.outcomes import sources as outcome_sources
from registry.outcomes.common import ImportRefused, Source
from registry.outcomes.detect import detect

st.title("Outcome data")
who = current_principal()
tab_import, tab_batches, tab_revisions, tab_measures = st.tabs(
    ["Import", "Import batches", "Revisions", "Measures and mapping"]
)
with session() as s:
    hints = attempt(lambda: outcome_sources.where_to_load(s, principal=who))


def _show(report: store.ImportReport) -> None:
    st.subheader(report.file_name)
    if report.already_imported:
        st.info(f"Already imported as batch {report.batch} with the same figures: nothing changed.")
        return
    cols = st.columns(4)
    cols[0].metric("Rows read", count(report.rows_read))
    cols[1].metric(
        "Counts to write" if report.dry_run else "Counts written", count(report.counts_written)
    )
    cols[2].metric("of which revised", count(report.revised))
    cols[3].metric("Unchanged", count(report.unchanged))
    if report.layout:
        st.caption(f"Layout recognised: {report.layout}.")
    if report.source:
        how = " (inferred from the file; give the release date if wrong)"
        released = (
            f"{report.release_date.isoformat()}{how if report.release_inferred else ''}"
            if report.release_date
            else "none (the file holds no counts)"
        )
        st.caption(f"Source: {report.source}. Release: {released}.")
    if report.kept_newer:
        st.info(
            f"Kept {count(report.kept_newer)} counts from a newer {report.source} release: this "
            "file is an older release, so its values are kept as history (Revisions tab)."
        )
    accounted = [
        {"where": f"London unallocated: {area}", "rows": n}
        for area, n in report.unallocated.items()
    ] + [{"where": f"skipped: {reason}", "rows": n} for reason, n in report.skipped.items()]
    if accounted:
        st.dataframe(pd.DataFrame(accounted), hide_index=True, width="stretch")
    if report.unmapped:
        # Offered first in the mapping form, for an admin to decide where each belongs.
        st.session_state["od_unmapped"] = (report.format, report.unmapped)
        st.warning(
            "Categories in no mapping (their rows were skipped; map them under Measures and "
            "mapping or with `vru measures mapping set`): " + "; ".join(report.unmapped)
        )
    if report.changes:
        st.write("What changes:" if report.dry_run else "What changed:")
        st.dataframe(pd.DataFrame(report.changes), hide_index=True, width="stretch")


with tab_import:
    for hint in hints or []:
        st.info(md(hint["sentence"]))
    kind = st.radio("Data", ["Crime counts", "Population"], horizontal=True, key="od_kind")
    crime = kind == "Crime counts"
    uploads = st.file_uploader(
        "Files exactly as downloaded (CSV or XLSX; several police.uk files at once)",
        type=["csv", "xlsx"],
        accept_multiple_files=True,
        key="od_files",
    )
    sources = [Source.from_bytes(u.name, u.getvalue()) for u in uploads or []]
    data_kind: formats.Kind = "crime" if crime else "population"
    choices = formats.of_kind(data_kind)
    guesses = {d.code for d in map(detect, sources) if d is not None and d.kind == data_kind}
    guess = guesses.pop() if len(guesses) == 1 else None
    format_key = f"od_format_{data_kind}"
    # Pre-select the detected format whenever the uploaded files change.
    fingerprint = (format_key, tuple(s.name for s in sources))
    if guess and st.session_state.get("od_detected") != fingerprint:
        st.session_state[format_key] = guess
    st.session_state["od_detected"] = fingerprint
    fmt = st.selectbox(
        "Format",
        [f.code for f in choices],
        key=format_key,
        help="\n".join(f"- {f.code}: {f.description}" for f in choices),
    )
    if guess:
        st.caption(f"Detected from the header: {guess}.")
    elif sources:
        st.caption("The format could not be recognised from the header; choose it.")
    release = st.text_input("Release label (e.g. MPS 2025-01)", key="od_release") if crime else ""
    release_date = (
        st.date_input(
            "Release date (leave empty to infer it from the file)",
            value=None,
            key="od_release_date",
        )
        if crime
        else None
    )
    year = (
        None
        if crime
        else st.number_input("Year (ONS file)", 1900, 2200, value=None, step=1, key="od_year")
    )
    left, right = st.columns(2)
    ready = bool(sources) and (crime or len(sources) == 1)
    if sources and not ready:
        st.info("Import one population file at a time.")
    preview = left.button("Preview changes", disabled=not ready, key="od_preview")
    commit = right.button("Import", type="primary", disabled=not ready, key="od_import")
    if preview or commit:
        bar = st.progress(0.0, text="Reading")

        def progress(fraction: float, message: str) -> None:
            bar.progress(min(max(fraction, 0.0), 1.0), text=message)

        def run() -> list[store.ImportReport]:
            with session() as s:
                if crime:
                    return store.import_crime(
                        s,
                        principal=who,
                        sources=sources,
                        fmt=fmt,
                        release=release or None,
                        release_date=release_date,
                        dry_run=preview,
                        progress=progress,
                    )
                return [
                    store.import_population(
                        s,
                        principal=who,
                        source=sources[0],
                        fmt=fmt,
                        year=int(year) if year else None,
                        dry_run=preview,
                    )
                ]

        reports: list[store.ImportReport] | None = None
        try:
            reports = run()
        except ImportRefused as exc:
            st.error(md(f"{exc.file_name} was refused; nothing was imported."))
            st.dataframe(
                pd.DataFrame(
                    [
                        {"row": p.row, "column": p.column, "value": p.value, "reason": p.reason}
                        for p in exc.problems
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
        except RegistryError as exc:
            show_error(exc)
        bar.empty()
        if reports is not None:
            if commit:
                st.success("Imported.")
            else:
                st.info("Preview only: nothing has been written.")
            for report in reports:
                _show(report)


def mapping_form(measure_rows: list[dict], mapping_rows: list[dict]) -> None:
    """Map a source category to a measure (or to none): the same registry function as
    `vru measures mapping set`, for imports from now on."""
    st.subheader("Change a mapping")
    flash = st.session_state.pop("od_mapping_flash", None)
    if flash:
        st.success(md(flash))
    fmt = st.selectbox("Source format", list(formats.MAPPED_FORMATS), key="map_format")
    unmapped_format, unmapped = st.session_state.get("od_unmapped", (None, []))
    known = [r["source_category"] for r in mapping_rows if r["source_format"] == fmt]
    offered = list(dict.fromkeys([*(unmapped if unmapped_format == fmt else []), *known]))
    labels = {m["code"]: f"{m['label']} ({m['code']})" for m in measure_rows}
    with st.form("mapping_form"):
        chosen = st.selectbox(
            "Source category (those the last import could not place come first)",
            offered,
            index=None,
            key="map_category",
        )
        typed = st.text_input(
            "Or type a category exactly as the file writes it", key="map_category_typed"
        )
        target = st.selectbox(
            "Feeds the measure",
            ["", *labels],
            format_func=lambda code: labels.get(code, "no measure (leave it out)"),
            key="map_measure",
        )
        save = st.form_submit_button("Save the mapping", type="primary")
    if not save:
        return
    category = typed.strip() or chosen or ""
    row = write(
        lambda s: mapping.set_mapping(
            s,
            principal=who,
            source_format=fmt,
            source_category=category,
            measure=target or None,
        )
    )
    if row is not None:
        st.session_state["od_mapping_flash"] = (
            f"{fmt} {row.source_category!r} now feeds {labels.get(row.measure or '', 'no measure')}"
            "; this applies to imports from now on (stored counts are not recomputed)."
        )
        st.rerun()


with session() as s:
    batches = attempt(lambda: store.list_batches(s, principal=who))
    revisions = attempt(lambda: store.list_revisions(s, principal=who))
    measure_rows = attempt(lambda: measures.list_measures(s, principal=who))
    mapping_rows = attempt(lambda: mapping.list_mapping(s, principal=who))
    source_rows = attempt(lambda: outcome_sources.list_sources(s, principal=who))

with tab_batches:
    if batches:
        shown = pd.DataFrame(batches)
        st.dataframe(shown, hide_index=True, width="stretch", column_config=number_columns(shown))
    else:
        st.info("No imports yet.")

with tab_revisions:
    if revisions:
        st.caption(
            "Counts a newer release of the same source changed (or kept, when the older release "
            "was imported later), with the older value and its release."
        )
        shown = pd.DataFrame(revisions)
        st.dataframe(shown, hide_index=True, width="stretch", column_config=number_columns(shown))
    else:
        st.info("No release has revised a stored count yet.")

with tab_measures:
    if measure_rows:
        st.dataframe(
            pd.DataFrame(
                [
                    m | {"breaks": "; ".join(f"{b['month']}: {b['note']}" for b in m["breaks"])}
                    for m in measure_rows
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    if source_rows:
        st.caption(
            "Sources holding counts. Pages, trends, models, exports and funder summaries use "
            "each measure's source of record only (the first source in its order holding "
            "counts; `vru measures source` changes the order); compare two sources with "
            "`vru outcomes compare`."
        )
        shown = pd.DataFrame(source_rows)
        st.dataframe(shown, hide_index=True, width="stretch", column_config=number_columns(shown))
    if mapping_rows:
        st.caption("Which source category feeds which measure (blank: feeds none).")
        st.dataframe(pd.DataFrame(mapping_rows), hide_index=True, width="stretch")
    if can("measures.manage"):
        mapping_form(measure_rows or [], mapping_rows or [])
