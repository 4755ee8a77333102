"""The Models page's synthetic-control tab: one borough (or a programme's boroughs) against a
weighted mix of boroughs without the programme. The verdict in words comes before any number."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import altair as alt
import pandas as pd
import streamlit as st

from dashboards.common import OKABE_ITO, attempt, chart_with_table, md, session, table_download
from registry import numbers
from registry.analysis.result import ASSOCIATION_FOUND, NO_ASSOCIATION, ModelResult
from registry.analysis.synth import run_synth
from registry.auth import Principal
from registry.boroughs import BOROUGHS
from registry.periods import format_month

EVERY_BOROUGH = "(every borough that delivered the programme)"
NO_PROGRAMME = "(none: donors are every other borough)"
INTRO = (
    "Compares one borough with a *synthetic borough*: a weighted mix of boroughs without the "
    "programme, chosen to track it before the start. After the start, the gap between the two "
    "is the estimate; treating every donor in turn (placebos) says how unusual the gap is."
)


def _verdict(result: ModelResult) -> None:
    text = md(result.verdict_text)
    if result.verdict == ASSOCIATION_FOUND:
        st.success(text)
    elif result.verdict == NO_ASSOCIATION:
        st.info(text)
    else:
        st.warning(text)


def _borough_table(result: ModelResult) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Borough": one["borough"],
                "Start": one["start"],
                "Against synthetic borough": numbers.change(100 * one["relative_gap"]),
                "Placebo range": (
                    f"{numbers.change(100 * one['ci_low'])} to "
                    f"{numbers.change(100 * one['ci_high'])}"
                ),
                "Placebo rank": f"{one['rank']} of {one['placebos'] + 1}",
                "p-value": f"{one['p_value']:.2f}",
                "Crimes above (+) or below (-) the synthetic borough": numbers.count(
                    one["gap_count_cumulative"]
                ),
                "Fit before the start (RMSPE)": f"{one['pre_rmspe']:.2f}",
                "Poor fit": one["poor_fit"] or "",
            }
            for one in result.extra["boroughs"]
        ]
    )


def _chart(result: ModelResult, name: str, start: str) -> None:
    assert result.fitted is not None
    frame = result.fitted.rename(columns={"observed": name, "fitted": f"Synthetic {name}"})
    long = frame.melt(id_vars="period", var_name="series", value_name="rate").assign(
        period=lambda t: pd.to_datetime(t["period"])
    )
    title = result.fitted_unit[:1].upper() + result.fitted_unit[1:]
    lines = (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("period:T", title="Month"),
            y=alt.Y("rate:Q", title=title),
            color=alt.Color("series:N", title=None, scale=alt.Scale(range=list(OKABE_ITO[:2]))),
            shape=alt.Shape("series:N", title=None),
            strokeDash=alt.StrokeDash("series:N", title=None),
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"start": [pd.Timestamp(start + "-01")]}))
        .mark_rule(strokeDash=[6, 3], color="black")
        .encode(x=alt.X("start:T", title="Month"))
    )
    one = result.extra["boroughs"][0]
    chart_with_table(
        alt.layer(lines, rule),
        frame,
        summary=(
            f"{name}'s monthly rate (solid) and its synthetic counterpart (dashed); the black "
            f"rule is the start, {start}. After it {name} was "
            f"{numbers.change(100 * one['relative_gap'])} against the synthetic borough."
        ),
        name=f"synthetic-control-{one['gss_code']}",
        key="synth_series",
    )


def render_synth(result: ModelResult) -> None:
    """Verdict, then the figures per borough, the chart, the donors, checks and caveats."""
    _verdict(result)
    table = _borough_table(result)
    st.dataframe(table, hide_index=True, key="synth_boroughs")
    table_download(table, name="synthetic-control", key="synth_boroughs_csv")
    boroughs = result.extra["boroughs"]
    if result.fitted is not None and len(boroughs) == 1:
        _chart(result, boroughs[0]["borough"], boroughs[0]["start"])
    st.subheader("Donor boroughs and their weights")
    donors = pd.DataFrame(
        [
            {"Treated borough": one["borough"], "Donor": d["borough"], "Weight": d["weight"]}
            for one in boroughs
            for d in one["donors"]
        ]
    )
    st.dataframe(
        donors,
        hide_index=True,
        key="synth_donors",
        column_config={"Weight": st.column_config.NumberColumn(format="%.2f")},
    )
    failed = [c for c in result.checks if not c.passed]
    st.caption(f"{len(result.checks) - len(failed)} of {len(result.checks)} checks passed.")
    with st.expander("Checks and caveats"):
        st.markdown(
            "\n".join(
                f"- **{md(c.name)}** ({'passed' if c.passed else 'failed'}): {md(c.detail)}"
                for c in result.checks
            )
        )
        st.markdown("\n".join(f"- {md(c)}" for c in result.caveats))


def synth_section(
    *,
    who: Principal,
    labels: dict[str, str],
    months: Sequence[dt.date],
    programmes: Sequence[str],
    default_start: dt.date,
) -> None:
    """The tab's form and, once submitted, its result."""
    st.markdown(INTRO)
    with st.form("synth"):
        outcome = st.selectbox(
            "Outcome", list(labels), format_func=labels.__getitem__, key="synth_outcome"
        )
        borough = st.selectbox(
            "Borough", [EVERY_BOROUGH, *(b.name for b in BOROUGHS)], key="synth_borough"
        )
        start = st.selectbox(
            "Start month (for one borough)",
            list(months),
            index=list(months).index(default_start) if default_start in months else 0,
            format_func=format_month,
            key="synth_start",
        )
        programme = st.selectbox(
            "Programme (its boroughs are not donors)",
            [NO_PROGRAMME, *programmes],
            key="synth_programme",
        )
        threshold = st.number_input(
            "Donors may have delivered up to this many of its opportunities",
            0,
            1_000_000,
            0,
            key="synth_threshold",
        )
        submitted = st.form_submit_button("Compare with a synthetic borough")
    if not submitted:
        return
    with st.spinner("Fitting the synthetic borough and every placebo..."), session() as s:
        result = attempt(
            lambda: run_synth(
                s,
                principal=who,
                outcome=outcome,
                borough=None if borough == EVERY_BOROUGH else borough,
                at=start,
                programme=None if programme == NO_PROGRAMME else programme,
                donor_threshold=int(threshold),
            )
        )
    if result is not None:
        render_synth(result)
