"""The analysis engine: panel assembly, trends and statsmodels models, with no Streamlit.

Every fit returns a plain :class:`~registry.analysis.result.ModelResult` (or
:class:`~registry.analysis.result.TrendChange`) carrying estimates, intervals, p-values, the
sample, diagnostics and caveats in words; pages, reports and the CLI only render it.
"""

from __future__ import annotations

# The definitions, word for word as the issue states them; the README and the pages show these
# (a test checks the README).
DEFINITIONS: tuple[str, ...] = (
    "young people: a borough's population aged 10-24 for the calendar year containing the month "
    "(nearest available year when a year is missing, said in the caveats);",
    "delivery rate: opportunities per 1,000 young people; outcome rate: count per 100,000 people "
    "of the measure's population band (residents, or aged 1-24 for knife crime with injury, "
    "victims under 25), by the same year rule;",
    "London: every stored count for the measure, boroughs plus London unallocated, so a London "
    "total matches the publisher's; a borough: that borough's counts only;",
    "a window: N whole months ending with a stated month; change against a baseline window is "
    "(current - baseline) / baseline, reported with both windows' start, end and totals, and "
    "given only when every month of both windows is stored.",
)
