"""Chart downloads: the PNG is rendered offline from the chart's own spec."""

from __future__ import annotations

import altair as alt
import pandas as pd
import pytest

from dashboards import charts
from dashboards.common import chart_png

# Slow lane: pages rendered with AppTest; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow


def test_chart_png_is_rendered_from_a_template_with_data() -> None:
    frame = pd.DataFrame(
        {
            "period": pd.to_datetime(["2024-01-01", "2024-02-01"]),
            "label": ["2024-01", "2024-02"],
            "opportunities": [10, 12],
            "count": [3, 2],
        }
    )
    chart = charts.with_data(charts.trend("opportunities", "count", "Opps", "Count"), frame)
    png = chart_png(chart)
    assert png.startswith(b"\x89PNG")
    # The template itself is untouched: the next run attaches its own data.
    assert charts.trend("opportunities", "count", "Opps", "Count").data is alt.Undefined
