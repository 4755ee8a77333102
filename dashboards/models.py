"""Models: is more delivery in a borough followed by less violence there? Trends too."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import charts
from dashboards.common import (
    OKABE_ITO,
    attempt,
    chart_with_table,
    current_principal,
    md,
    session,
    table_download,
)
from dashboards.synth_tab import synth_section
from registry.analysis import DEFINITIONS
from registry.analysis.result import ModelResult
from registry.analysis.run import (
    MODELS,
    VRU_START,
    analysis_options,
    model_series_breaks,
    run_model,
)
from registry.analysis.trends import trend_report
from registry.boroughs import BOROUGHS
from registry.outcomes.measures import SeriesBreak
from registry.periods import format_month, month_range, parse_month

MODEL_SENTENCES = {
    "fe": "compares each borough with itself over time, after removing what all boroughs share "
    "each month, and asks whether months with more delivery were followed by lower rates.",
    "poisson": "models the counts themselves, allowing for population, borough and month, and "
    "gives the ratio by which the count changes per extra opportunity per 1,000 young people.",
    "negbin": "is the same count model but allows counts to vary more than chance alone would, "
    "which real crime counts usually do.",
    "its": "follows London's (or one borough's) monthly count, with its season, the COVID months "
    "and any series break, and asks whether its level or slope changed at a chosen month.",
    "event": "lines boroughs up on the month a programme first reached them and compares each "
    "with what the boroughs not yet or never reached predict, before and after.",
}
MODEL_NAMES = {
    "fe": "Two-way fixed effects (rate on lagged delivery rate)",
    "poisson": "Poisson count model (incidence rate ratio)",
    "negbin": "Negative binomial count model (incidence rate ratio)",
    "its": "Interrupted time series",
    "event": "Event study around first delivery",
}


def _interval_chart(frame: pd.DataFrame, x: str, x_title: str) -> alt.LayerChart:
    base = alt.Chart(frame).encode(x=alt.X(f"{x}:O", title=x_title))
    y_title = "Estimate with 95% interval"
    return alt.layer(
        base.mark_rule(color=OKABE_ITO[0], strokeWidth=2).encode(
            y=alt.Y("ci_low:Q", title=y_title), y2="ci_high:Q"
        ),
        base.mark_point(filled=True, shape="diamond", size=90, color=OKABE_ITO[1]).encode(
            y=alt.Y("estimate:Q", title=y_title), tooltip=list(frame.columns)
        ),
        alt.Chart(pd.DataFrame({"zero": [0.0]}))
        .mark_rule(strokeDash=[4, 4])
        .encode(y=alt.Y("zero:Q", title=y_title)),
    )


def render_result(result: ModelResult, breaks: Sequence[SeriesBreak] = ()) -> None:
    """Numbers with their caveats beside them, then the charts, each with its table.

    ``breaks`` are the series breaks inside the model's period: said beside the figures and
    marked on the fitted chart.
    """
    st.subheader(MODEL_NAMES[result.model])
    for brk in breaks:
        st.warning(md(brk.sentence()), icon=":material/timeline:")
    numbers, caveats = st.columns([3, 2])
    with numbers:
        left, mid, right = st.columns(3)
        left.metric(result.term, f"{result.estimate:.4g}")
        mid.metric("95% interval", f"{result.ci_low:.4g} to {result.ci_high:.4g}")
        right.metric("p-value", f"{result.p_value:.3g}")
        st.write(
            f"{result.n_obs:,} observations, {result.n_areas} boroughs, "
            f"{result.n_periods} periods. "
            + (
                "The interval includes zero: the data are consistent with no association."
                if result.ci_low <= 0 <= result.ci_high
                else "The interval excludes zero."
            )
            + (
                f" Outcome rates are {result.extra['rate_unit']}; delivery per 1,000 aged 10-24."
                if "rate_unit" in result.extra
                else ""
            )
        )
        if "irr" in result.extra:
            st.write(
                f"Incidence rate ratio per extra opportunity per 1,000 young people: "
                f"{result.extra['irr']:.4f} ({result.extra['irr_ci_low']:.4f} to "
                f"{result.extra['irr_ci_high']:.4f})."
            )
    with caveats:
        st.markdown("**Read with these caveats**")
        st.markdown("\n".join(f"- {md(c)}" for c in result.caveats))
    terms = pd.DataFrame(
        [
            {
                "term": result.term,
                "estimate": result.estimate,
                "ci_low": result.ci_low,
                "ci_high": result.ci_high,
                "p_value": result.p_value,
            }
        ]
    )
    if "lead_placebo" in result.extra:
        terms = pd.concat([terms, pd.DataFrame([result.extra["lead_placebo"]])], ignore_index=True)
    chart_with_table(
        _interval_chart(terms, "term", "Term"),
        terms,
        summary=(
            f"Diamonds are estimates, bars their 95% intervals, the dashed line zero: "
            f"{result.term} {result.estimate:.4g} ({result.ci_low:.4g} to {result.ci_high:.4g})."
        ),
        name=f"estimates-{result.model}",
        key="estimates",
    )
    if result.fitted is not None and not result.fitted.empty:
        st.subheader("Fitted against observed")
        long = result.fitted.melt(id_vars="period", var_name="series")
        chart = charts.with_breaks(
            alt.Chart(long)
            .mark_line(point=True)
            .encode(
                x=alt.X("period:T", title="Period"),
                y=alt.Y("value:Q", title=result.fitted_unit),
                color=alt.Color("series:N", title=None, scale=alt.Scale(range=list(OKABE_ITO[:2]))),
                shape=alt.Shape("series:N", title=None),
                strokeDash=alt.StrokeDash("series:N", title=None),
            ),
            breaks,
            "period",
            "Period",
        )
        gap = (result.fitted["observed"] - result.fitted["fitted"]).abs().mean()
        chart_with_table(
            chart,
            result.fitted,
            summary=(
                f"Observed (solid, circles) and the model's fitted values (dashed, squares), "
                f"{result.fitted_unit}; mean absolute gap {gap:,.2f}."
            ),
            name=f"fitted-{result.model}",
            key="fitted",
        )
    if "coefficients" in result.extra:
        st.subheader("Event study")
        coefficients = pd.DataFrame(result.extra["coefficients"])
        chart_with_table(
            _interval_chart(coefficients, "relative_period", "Periods since first delivery"),
            coefficients,
            summary=(
                "Each diamond is the log of observed over predicted counts (0: no difference), "
                "the prediction from boroughs not yet or never reached, with its 95% interval; "
                "before 0 they should sit near zero."
            ),
            name="event-study",
            key="event",
        )
    st.subheader("Diagnostics")
    diagnostics = pd.DataFrame(
        [(k, str(v)) for k, v in {**result.diagnostics, **_scalars(result.extra)}.items()],
        columns=["diagnostic", "value"],
    )
    st.dataframe(diagnostics, hide_index=True, key="diagnostics")
    table_download(diagnostics, name=f"diagnostics-{result.model}", key="diagnostics_csv")


SERIES_NAMES = {"rolling_12": "12-month total", "observed": "Observed", "trend": "Trend"}


def _lines(
    frame: pd.DataFrame, title: str, breaks: Sequence[SeriesBreak] = ()
) -> alt.TopLevelMixin:
    """One line per column after ``month``, told apart by colour, point shape and dash, and
    named in words in the legend; a dashed rule at each series break."""
    long = frame.melt(id_vars="month", var_name="series").assign(
        month=lambda t: pd.to_datetime(t["month"]),
        series=lambda t: t["series"].replace(SERIES_NAMES),
    )
    return charts.with_breaks(
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("month:T", title="Month"),
            y=alt.Y("value:Q", title=title),
            color=alt.Color("series:N", title=None, scale=alt.Scale(range=list(OKABE_ITO))),
            shape=alt.Shape("series:N", title=None),
            strokeDash=alt.StrokeDash("series:N", title=None),
        ),
        breaks,
        "month",
        "Month",
    )


def _scalars(extra: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in extra.items() if isinstance(v, int | float | str | dt.date)}


st.title("Models")
who = current_principal()
with st.expander("Definitions", expanded=False):
    st.markdown("\n".join(f"- {d}" for d in DEFINITIONS))

with session() as s:
    options = analysis_options(s, principal=who)
if not options.measures or options.last_month is None:
    st.info("No outcome counts are stored yet, so there is nothing to analyse.")
    st.stop()
first, last = options.first_month or options.last_month, options.last_month
months = month_range(first, last)
labels = dict(options.measures)

model_tab, trend_tab, synth_tab = st.tabs(
    ["Models", "Trend against a baseline", "Synthetic control"]
)

with synth_tab:
    synth_section(
        who=who,
        labels=labels,
        months=months,
        programmes=options.programmes,
        default_start=VRU_START,
    )

with trend_tab, st.form("trend"):
    measure = st.selectbox("Measure", list(labels), format_func=labels.get, key="trend_measure")
    area = st.selectbox("Area", ["London", *(b.name for b in BOROUGHS)], key="trend_area")
    end = st.selectbox(
        "Current window ends", months[::-1], format_func=format_month, key="trend_end"
    )
    baseline_default = months.index(min(months, key=lambda m: abs((m - dt.date(2019, 12, 1)).days)))
    baseline_end = st.selectbox(
        "Baseline window ends",
        months,
        index=baseline_default,
        format_func=format_month,
        key="trend_base",
    )
    window = st.number_input("Window (months)", 1, 120, 12, key="trend_window")
    compare = st.form_submit_button("Compare")

if compare:
    with trend_tab, session() as s:
        report = attempt(
            lambda: trend_report(
                s,
                principal=who,
                measure=measure,
                end=end,
                baseline_end=baseline_end,
                window=int(window),
                borough=None if area == "London" else area,
            )
        )
        if report is not None:
            change = report.change.to_dict()
            left, mid, right = st.columns(3)
            left.metric(
                f"{change['current']['start']} to {change['current']['end']}",
                f"{change['current']['count']:,}",
            )
            mid.metric(
                f"{change['baseline']['start']} to {change['baseline']['end']}",
                f"{change['baseline']['count']:,}",
            )
            given = report.change.given  # both windows whole (registry.windows)
            right.metric("Change", f"{change['change_pct']:+.1f}%" if given else "not given")
            st.write(
                (
                    f"95% exact interval {change['ci_low']:+.1f}% to {change['ci_high']:+.1f}%"
                    if given
                    else "No change, interval or test: a window is not wholly stored"
                )
                + (
                    f"; London includes {change['current']['unallocated']:,} unallocated now and "
                    f"{change['baseline']['unallocated']:,} in the baseline."
                    if area == "London"
                    else "."
                )
            )
            od = change["overdispersion"]
            if od["ci_low"] is not None:
                st.write(
                    f"Allowing for overdispersion: {od['ci_low']:+.1f}% to {od['ci_high']:+.1f}%. "
                    f"The totals vary {report.change.dispersion:.2f} times as much as chance "
                    f"alone would, judged from {od['year_pairs']} year-on-year pairs before the "
                    "current window; read this interval when it is wider."
                )
            for caveat in report.change.caveats:
                st.caption(md(caveat))
            crossed = [
                SeriesBreak(parse_month(b["month"]), b["note"]) for b in report.change.series_breaks
            ]
            st.subheader("Rolling 12-month totals")
            rolling = report.series[["month", "count", "rolling_12"]]
            chart_with_table(
                _lines(rolling[["month", "rolling_12"]], "12-month total", crossed),
                rolling,
                summary=(
                    f"The total of each 12 months to the month shown, {area}: "
                    f"{rolling['rolling_12'].dropna().iloc[-1]:,.0f} in the latest window."
                    if rolling["rolling_12"].notna().any()
                    else "No 12 months with data in a row yet."
                ),
                name="rolling-12",
                key="rolling",
            )
            if report.seasonal is not None:
                st.subheader("Seasonal decomposition (STL)")
                chart_with_table(
                    _lines(report.seasonal[["month", "observed", "trend"]], "Count", crossed),
                    report.seasonal,
                    summary=(
                        "Observed monthly counts and the trend once the seasonal pattern "
                        "(in the table) is taken out."
                    ),
                    name="stl",
                    key="stl",
                )
            if report.boroughs is not None:
                st.subheader("Boroughs")
                st.caption(
                    "Each borough's change with its exact test (a baseline of zero included); "
                    "'significant' after Holm's correction for testing every borough tested. "
                    "The 'od_' columns allow for each borough's overdispersion (its "
                    "'dispersion', from its own year-on-year history). A borough is tested "
                    "only when every month of both windows is stored and they hold an offence; "
                    "'not_tested_because' says why the others were not."
                )
                st.dataframe(report.boroughs, hide_index=True)
                table_download(
                    report.boroughs, name=f"boroughs-{measure}", key="trend_boroughs_csv"
                )
            st.subheader("Baseline sensitivity")
            st.caption("The same current window against every other baseline year and length.")
            table = report.sensitivity.assign(
                change=lambda t: (100 * t["change"].astype(float)).round(1),
                ci_low=lambda t: (100 * t["ci_low"].astype(float)).round(1),
                ci_high=lambda t: (100 * t["ci_high"].astype(float)).round(1),
            )
            st.dataframe(table, hide_index=True)
            table_download(table, name=f"sensitivity-{measure}", key="sensitivity_csv")

with model_tab:
    for code, sentence in MODEL_SENTENCES.items():
        st.markdown(f"- **{MODEL_NAMES[code]}**: {sentence}")
    with st.form("model"):
        outcome = st.selectbox("Outcome", list(labels), format_func=labels.get, key="model_outcome")
        model = st.selectbox("Model", MODELS, format_func=MODEL_NAMES.get, key="model_kind")
        lag = st.number_input("Lag of delivery (periods)", 0, 24, 1, key="model_lag")
        programme = st.selectbox(
            "Programme (all by default; needed for the event study)",
            ["(all programmes)", *options.programmes],
            key="model_programme",
        )
        start = st.selectbox(
            "Outcomes from", months, index=0, format_func=format_month, key="model_start"
        )
        end = st.selectbox(
            "Outcomes to",
            months,
            index=len(months) - 1,
            format_func=format_month,
            key="model_end",
        )
        frequency = st.radio(
            "Periods", ["month", "quarter"], horizontal=True, key="model_frequency"
        )
        at = st.selectbox(
            "Interruption (interrupted time series)",
            months,
            index=months.index(VRU_START) if VRU_START in months else 0,
            format_func=format_month,
            key="model_at",
        )
        fit = st.form_submit_button("Fit")

if fit:
    with model_tab:
        with st.status("Fitting the model...", expanded=True) as status:
            st.write("Assembling the borough panel and fitting; robustness checks follow.")
            with session() as s:
                result = attempt(
                    lambda: run_model(
                        s,
                        principal=who,
                        outcome=outcome,
                        model=model,
                        lag=int(lag),
                        programme=None if programme.startswith("(") else programme,
                        start=start,
                        end=end,
                        frequency=frequency,
                        at=at,
                    )
                )
                breaks = attempt(
                    lambda: model_series_breaks(
                        s, principal=who, outcome=outcome, start=start, end=end
                    )
                )
            status.update(
                label="Fitted." if result is not None else "Could not fit.",
                state="complete" if result is not None else "error",
                expanded=False,
            )
        if result is not None:
            render_result(result, breaks or [])
