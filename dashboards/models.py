"""Models: is more delivery in a borough followed by less violence there? Trends too."""

from __future__ import annotations

import datetime as dt
import re
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
    data_state,
    md,
    session,
    table_download,
)
from dashboards.synth_tab import synth_section
from registry import numbers
from registry.analysis import DEFINITIONS
from registry.analysis.estimators import (
    EVENT_CHANGE,
    EVENT_HIGH,
    EVENT_LOW,
    EVENT_PERIODS,
    event_study_percent,
)
from registry.analysis.fixed_effects import describe_term
from registry.analysis.headline import UNIT, lag_words
from registry.analysis.result import (
    ASSOCIATION_FOUND,
    NO_ASSOCIATION,
    NOT_INTERPRETABLE,
    ModelResult,
)
from registry.analysis.run import (
    MODEL_TYPES,
    MODELS,
    VRU_START,
    AnalysisOptions,
    analysis_options,
    model_series_breaks,
    run_model,
    run_specs,
)
from registry.analysis.trends import TrendReport, trend_report
from registry.auth import Principal, ReadScope, read_scope
from registry.boroughs import BOROUGHS
from registry.config import get_settings
from registry.outcomes.measures import SeriesBreak
from registry.periods import format_month, month_range, parse_month

TERM_LABELS = {
    "level_change": "Change in London's rate per 100,000 young people at the interruption",
    "mean_post_delivery": "Average change in the rate per 100,000 after first delivery",
}
FITTED_SERIES = {
    "observed": "Observed",
    "without_delivery": "Model's prediction with no delivery",
    "fitted": "Model's prediction",
}
VERDICT_BOX = {
    NOT_INTERPRETABLE: st.warning,
    NO_ASSOCIATION: st.info,
    ASSOCIATION_FOUND: st.success,
}


def _event_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """The event study's % changes by period from first delivery, each with its 95% interval,
    and a dashed line at no change."""
    base = alt.Chart(frame).encode(x=alt.X(f"{EVENT_PERIODS}:O", title=EVENT_PERIODS))
    y_title = "Change in counts against the prediction (%), with 95% interval"
    return alt.layer(
        base.mark_rule(color=OKABE_ITO[0], strokeWidth=2).encode(
            y=alt.Y(f"{EVENT_LOW}:Q", title=y_title), y2=f"{EVENT_HIGH}:Q"
        ),
        base.mark_point(filled=True, shape="diamond", size=90, color=OKABE_ITO[1]).encode(
            y=alt.Y(f"{EVENT_CHANGE}:Q", title=y_title),
            tooltip=[
                alt.Tooltip(f"{EVENT_PERIODS}:O"),
                *(
                    alt.Tooltip(f"{c}:Q", format="+.1f")
                    for c in (EVENT_CHANGE, EVENT_LOW, EVENT_HIGH)
                ),
                alt.Tooltip("p-value:Q", format=".3f"),
                alt.Tooltip("Boroughs:Q", format="d"),
            ],
        ),
        alt.Chart(pd.DataFrame({"zero": [0.0]}))
        .mark_rule(strokeDash=[4, 4])
        .encode(y=alt.Y("zero:Q", title=y_title)),
    )


def _p(p: float) -> str:
    if numbers.missing(p):
        return "p not available"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def effect_line(result: ModelResult) -> str:
    """The headline figure in words with its interval written out in full."""
    effect = result.extra.get("effect")
    if effect:
        fmt = numbers.change if effect["scale"] == "percent" else _signed
        return (
            f"**{md(effect['label'])}**: {fmt(effect['value'])} (95% interval "
            f"{fmt(effect['ci_low'])} to {fmt(effect['ci_high'])}; {_p(effect['p_value'])})."
            + (f" That is {effect['ratio_words']}." if "ratio_words" in effect else "")
        )
    label = TERM_LABELS.get(result.term, describe_term(result.term).capitalize())
    return (
        f"**{md(label)}**: {_signed(result.estimate)} (95% interval {_signed(result.ci_low)} to "
        f"{_signed(result.ci_high)}; {_p(result.p_value)})."
    )


def _signed(value: float) -> str:
    return numbers.MISSING if numbers.missing(value) else f"{value:+,.2f}"


def short_caveat(text: str) -> str:
    """A caveat in one line: its first sentence, and missing population years as ranges
    ("2021-2025 use 2020 population")."""
    if text.startswith("Missing population years"):
        pairs = sorted({(int(y), int(u)) for y, u in re.findall(r"(\d{4}) \(used (\d{4})\)", text)})
        by_used: dict[int, list[int]] = {}
        for year, used in pairs:
            by_used.setdefault(used, []).append(year)
        parts = [
            f"{min(ys)}-{max(ys)} use {u} population" if len(ys) > 1 else f"{ys[0]} uses {u}"
            for u, ys in sorted(by_used.items())
        ]
        return "Missing population years: " + "; ".join(parts) + "."
    head = text.split(". ", 1)[0]
    if len(head) > 160 and ": " in head:
        head = head.split(": ", 1)[0]
    return head.rstrip(".") + "."


def render_result(result: ModelResult, breaks: Sequence[SeriesBreak] = ()) -> None:
    """The verdict first, then the figure in words, short caveats, the chart, the details.

    ``breaks`` are the series breaks inside the model's period: said beside the figures and
    marked on the fitted chart.
    """
    st.subheader(MODEL_TYPES[result.model].name)
    box = VERDICT_BOX.get(result.verdict, st.info)
    box(md(result.verdict_text or "No verdict was given for this model."))
    for brk in breaks:
        st.warning(md(brk.sentence()), icon=":material/timeline:")
    if result.checks:
        st.markdown(
            "\n".join(
                f"- {'Passed' if c.passed else 'Failed'}: {md(c.detail[0].upper() + c.detail[1:])}"
                for c in result.checks
            )
        )
    st.markdown(effect_line(result))
    effect = result.extra.get("effect")
    if effect:
        fmt = numbers.change if effect["scale"] == "percent" else _signed
        st.markdown(
            f"Smallest change these data could detect (80% power): about "
            f"{fmt(-abs(effect['mde_fall']))} or {fmt(abs(effect['mde']))}. "
            f"{result.n_obs:,} borough-periods, {result.n_areas} boroughs, "
            f"{result.n_periods} periods."
        )
        st.caption(md(f"Interval and p-value: {effect['inference']}."))
    else:
        st.markdown(
            f"{result.n_obs:,} observations, {result.n_areas} boroughs, {result.n_periods} periods."
        )
    st.markdown("**Read with these caveats**")
    st.markdown("\n".join(f"- {md(short_caveat(c))}" for c in result.caveats))
    with st.expander("Caveats in full"):
        st.markdown("\n".join(f"- {md(c)}" for c in result.caveats))
    _fitted_chart(result, breaks)
    if "coefficients" in result.extra:
        st.subheader("Event study")
        changes = event_study_percent(result.extra["coefficients"])
        chart_with_table(
            _event_chart(changes),
            changes,
            summary=(
                "Each diamond is the % change in counts against the prediction from boroughs "
                "not yet or never reached (0%: no difference), with its 95% interval; before "
                "first delivery (periods below 0) they should sit near 0%."
            ),
            name="event-study",
            key="event",
        )
    with st.expander("Details for analysts"):
        items = {
            "term": result.term,
            "estimate (model scale)": result.estimate,
            "standard error (clustered)": result.std_error,
            **result.diagnostics,
            **_scalars(result.extra),
        }
        # Numbers stay numbers (a text "-0.03" would be guarded as a formula in the CSV).
        diagnostics = pd.DataFrame(
            [
                (k, float(v), "")
                if isinstance(v, int | float) and not isinstance(v, bool)
                else (k, float("nan"), str(v))
                for k, v in items.items()
            ],
            columns=["diagnostic", "value", "text"],
        )
        st.dataframe(diagnostics, hide_index=True, key="diagnostics")
        table_download(diagnostics, name=f"diagnostics-{result.model}", key="diagnostics_csv")


def _fitted_chart(result: ModelResult, breaks: Sequence[SeriesBreak] = ()) -> None:
    """London's series against what the model says: with delivery's term taken out (the gap is
    the association), or the interrupted series' own prediction. A fit that matches the observed
    series by construction is not drawn."""
    fitted = result.fitted
    if fitted is None or fitted.empty:
        return
    series = [c for c in fitted.columns if c != "period"]
    if "without_delivery" in series:
        st.subheader("London: observed and the model's prediction with no delivery")
        summary = (
            f"Observed (solid, circles) and the model's prediction had there been no delivery "
            f"(dashed, squares), {result.fitted_unit}; the gap is the association the model "
            "estimates, not a measured effect."
        )
    else:
        st.subheader("London: observed and the model's prediction")
        summary = (
            f"Observed (solid, circles) and the model's prediction (dashed, squares), "
            f"{result.fitted_unit}."
        )
    long = fitted.melt(id_vars="period", var_name="series").assign(
        series=lambda t: t["series"].map(FITTED_SERIES).fillna(t["series"])
    )
    chart = charts.with_breaks(
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("period:T", title="Month"),
            y=alt.Y("value:Q", title=result.fitted_unit[:1].upper() + result.fitted_unit[1:]),
            color=alt.Color("series:N", title=None, scale=alt.Scale(range=list(OKABE_ITO[:3]))),
            shape=alt.Shape("series:N", title=None),
            strokeDash=alt.StrokeDash("series:N", title=None),
        ),
        breaks,
        "period",
        "Month",
    )
    chart_with_table(chart, fitted, summary=summary, name=f"fitted-{result.model}", key="fitted")


def render_specs(table: pd.DataFrame) -> None:
    """The specification table in plain words, with how its p-values were adjusted."""
    st.subheader("Every outcome at every lag (no lag picked for looking best)")
    st.caption(
        f"The headline model for each outcome with delivery 0 to 3 months before; change in the "
        f"rate per extra {UNIT} opportunities per 1,000 young people. 'Adjusted p' is Holm's "
        "correction across every row, so a row is an association only if it stands out against "
        "them all; 'not interpretable' means its lead placebo failed."
    )
    shown = pd.DataFrame(
        {
            "Outcome": table["outcome"],
            "Delivery": [lag_words(int(lag)) for lag in table["lag"]],
            "Change": [numbers.change(v) for v in table.get("change_pct", [])],
            "95% interval": [
                f"{numbers.change(lo)} to {numbers.change(hi)}"
                for lo, hi in zip(
                    table.get("ci_low_pct", []), table.get("ci_high_pct", []), strict=True
                )
            ],
            "p": [_p(v) for v in table["p_value"]],
            "Adjusted p (Holm)": [_p(v) for v in table["holm_p_value"]],
            "Verdict": table["verdict"],
        }
    )
    st.dataframe(shown, hide_index=True, key="specs")
    table_download(table, name="specification-table", key="specs_csv")


SERIES_NAMES = {"rolling_12": "12-month total", "observed": "Observed", "trend": "Trend"}


def _lines(
    frame: pd.DataFrame, title: str, breaks: Sequence[SeriesBreak] = ()
) -> alt.Chart | alt.LayerChart:
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


@st.cache_data(max_entries=8, show_spinner=False)
def _options(url: str, version: int, scope: ReadScope, _who: Principal) -> AnalysisOptions:
    with session() as s:
        return analysis_options(s, principal=_who)


# Keyed on the data version like every page cache: many commissioners asking the same question
# of the same data get one computation (BENCHMARKS.md, load).
@st.cache_data(max_entries=32, show_spinner=False)
def _trend_report(
    url: str,
    version: int,
    measure: str,
    end: dt.date,
    baseline_end: dt.date,
    window: int,
    area: str,
    scope: ReadScope,
    _who: Principal,
) -> TrendReport:
    with session() as s:
        return trend_report(
            s,
            principal=_who,
            measure=measure,
            end=end,
            baseline_end=baseline_end,
            window=window,
            borough=None if area == "London" else area,
        )


st.title("Models")
who = current_principal()
url = get_settings().database_url
# Nothing on this page's forms or trend comparison reads delivery figures (the model fit does,
# and is not cached): a delivery saved elsewhere keeps these caches.
version = data_state().without_deliveries
with st.expander("Definitions", expanded=False):
    st.markdown("\n".join(f"- {d}" for d in DEFINITIONS))

options = _options(url, version, read_scope(who), who)
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
    measure = st.selectbox(
        "Measure", list(labels), format_func=labels.__getitem__, key="trend_measure"
    )
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
    with trend_tab:
        report = attempt(
            lambda: _trend_report(
                url, version, measure, end, baseline_end, int(window), area, read_scope(who), who
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
            overdispersion = report.change.overdispersion_words()
            if overdispersion:
                st.write(overdispersion)
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
    for kind in MODEL_TYPES.values():
        st.markdown(f"- **{kind.name}**: {kind.sentence}")
    with st.form("model"):
        outcome = st.selectbox(
            "Outcome", list(labels), format_func=labels.__getitem__, key="model_outcome"
        )
        model = st.selectbox(
            "Model", MODELS, format_func=lambda c: MODEL_TYPES[c].name, key="model_kind"
        )
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
    specs = st.button(
        "Specification table: every outcome at lags 0-3 (headline model)", key="specs_button"
    )

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

if specs:
    with model_tab, session() as s:
        spec_table = attempt(lambda: run_specs(s, principal=who, first=outcome))
        if spec_table is not None and not spec_table.empty:
            render_specs(spec_table)
