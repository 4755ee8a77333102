"""The analysis engine: panel assembly, trends and statsmodels models, with no Streamlit.

Every fit returns a plain :class:`~registry.analysis.result.ModelResult` (or
:class:`~registry.analysis.result.TrendChange`) carrying estimates, intervals, p-values, the
sample, diagnostics and caveats in words; pages, reports and the CLI only render it.
"""
