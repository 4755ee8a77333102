"""Trends and models: is more delivery in a borough followed by less violence there?"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from dashboards.common import attempt, current_principal, session
from registry.analysis import DEFINITIONS
from registry.analysis.run import MODELS, VRU_START, analysis_options, run_model
from registry.analysis.trends import trend_report
from registry.boroughs import BOROUGHS
from registry.periods import add_months, format_month

MODEL_NAMES = {
    "fe": "Two-way fixed effects (rate on lagged delivery rate)",
    "poisson": "Poisson count model (incidence rate ratio)",
    "negbin": "Negative binomial count model (incidence rate ratio)",
    "its": "Interrupted time series",
    "event": "Event study around first delivery",
}

st.title("Trends and models")
who = current_principal()
with st.expander("Definitions", expanded=False):
    st.markdown("\n".join(f"- {d}" for d in DEFINITIONS))

with session() as s:
    options = analysis_options(s, principal=who)
if not options.measures or options.last_month is None:
    st.info("No outcome counts are stored yet, so there is nothing to analyse.")
    st.stop()
first, last = options.first_month or options.last_month, options.last_month
months = [
    add_months(first, i)
    for i in range((last.year - first.year) * 12 + last.month - first.month + 1)
]
labels = dict(options.measures)

trend_tab, model_tab = st.tabs(["Trend against a baseline", "Models"])

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
            right.metric("Change", f"{change['change_pct']:+.1f}%")
            st.write(
                f"95% exact interval {change['ci_low']:+.1f}% to {change['ci_high']:+.1f}%"
                + (
                    f"; London includes {change['current']['unallocated']:,} unallocated now and "
                    f"{change['baseline']['unallocated']:,} in the baseline."
                    if area == "London"
                    else "."
                )
            )
            for caveat in report.change.caveats:
                st.caption(caveat)
            st.subheader("Rolling 12-month totals")
            st.line_chart(report.series.set_index("month")["rolling_12"])
            if report.seasonal is not None:
                st.subheader("Seasonal decomposition (STL)")
                st.line_chart(report.seasonal.set_index("month")[["observed", "trend"]])
                st.line_chart(report.seasonal.set_index("month")[["seasonal"]])
            if report.boroughs is not None:
                st.subheader("Boroughs")
                st.caption(
                    "Each borough's change with its exact test; 'significant' after Holm's "
                    "correction for testing every borough."
                )
                st.dataframe(report.boroughs, hide_index=True)
            st.subheader("Baseline sensitivity")
            st.caption("The same current window against every other baseline year and length.")
            table = report.sensitivity.assign(
                change=lambda t: (100 * t["change"]).round(1),
                ci_low=lambda t: (100 * t["ci_low"]).round(1),
                ci_high=lambda t: (100 * t["ci_high"]).round(1),
            )
            st.dataframe(table, hide_index=True)

with model_tab, st.form("model"):
    outcome = st.selectbox("Outcome", list(labels), format_func=labels.get, key="model_outcome")
    model = st.selectbox("Model", MODELS, format_func=MODEL_NAMES.get, key="model_kind")
    lag = st.number_input("Lag of delivery (months)", 0, 24, 1, key="model_lag")
    programme = st.selectbox(
        "Programme (all by default; needed for the event study)",
        ["(all programmes)", *options.programmes],
        key="model_programme",
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
    with model_tab, session() as s, st.spinner("Fitting..."):
        result = attempt(
            lambda: run_model(
                s,
                principal=who,
                outcome=outcome,
                model=model,
                lag=int(lag),
                programme=None if programme.startswith("(") else programme,
                at=at,
            )
        )
        if result is not None:
            st.subheader(MODEL_NAMES[result.model])
            left, mid, right = st.columns(3)
            left.metric(result.term, f"{result.estimate:.4g}")
            mid.metric("95% interval", f"{result.ci_low:.4g} to {result.ci_high:.4g}")
            right.metric("p-value", f"{result.p_value:.3g}")
            st.caption(
                f"{result.n_obs:,} observations, {result.n_areas} boroughs, "
                f"{result.n_periods} periods."
            )
            if "irr" in result.extra:
                st.write(
                    f"Incidence rate ratio per extra opportunity per 1,000 young people: "
                    f"{result.extra['irr']:.4f} ({result.extra['irr_ci_low']:.4f} to "
                    f"{result.extra['irr_ci_high']:.4f})."
                )
            if "coefficients" in result.extra:
                coefficients = pd.DataFrame(result.extra["coefficients"])
                st.line_chart(
                    coefficients.set_index("relative_period")[["estimate", "ci_low", "ci_high"]]
                )
            st.subheader("Caveats")
            st.markdown("\n".join(f"- {c}" for c in result.caveats))
            st.json(result.to_dict(), expanded=False)
