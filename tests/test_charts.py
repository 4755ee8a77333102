"""Charts people can read: map labels with computed contrast and no "null", human axis titles,
and accessible names that say what each chart shows (issue #15)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

from dashboards import charts
from dashboards.common import md
from tests.test_app_dashboard import open_page

WCAG_TEXT = 4.5


def test_contrast_matches_wcag_reference_values() -> None:
    assert charts.contrast("#000000", "#FFFFFF") == pytest.approx(21.0)
    assert charts.contrast("#777777", "#777777") == pytest.approx(1.0)
    # WebAIM's checker: #767676 on white is 4.54:1, the lightest grey passing AA.
    assert charts.contrast("#767676", "#FFFFFF") == pytest.approx(4.54, abs=0.01)
    assert charts.contrast("#FFFFFF", "#FDE725") < 1.3  # why white on yellow could not be read


@pytest.mark.parametrize("fill", [*charts.TILE_COLOURS, charts.NO_DATA_COLOUR])
def test_every_tile_colour_has_a_label_ink_of_at_least_4_5_to_1(fill) -> None:
    assert charts.contrast(charts.ink(fill), fill) >= WCAG_TEXT


def test_tile_bands_run_dark_to_light_and_say_no_data() -> None:
    values = pd.Series([2.0, 24.0, np.nan, 13.0, 1234.0 / 100])
    bands = charts.tile_bands(values, "count")
    assert bands["fill"].tolist()[:3] == ["#440154", "#FDE725", charts.NO_DATA_COLOUR]
    assert bands["value_text"].tolist() == ["2", "24", "no data", "13", "12"]
    assert bands["band"].tolist()[0] == "2 to 6" and bands["band"].tolist()[2] == "no data"
    rates = charts.tile_bands(pd.Series([1234.56, 1234.56]), "rate")
    assert rates["value_text"].tolist() == ["1,234.6", "1,234.6"]  # one figure: the middle colour
    assert set(rates["fill"]) == {charts.TILE_COLOURS[2]}


def _map(at) -> tuple[dict, pd.DataFrame]:
    chart = next(e for e in at.get("vega_lite_chart") if e.key == "map_chart")
    spec = json.loads(chart.proto.spec)
    data = convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data)
    return spec, data


@pytest.mark.parametrize("figure", ["counts", "rates"])
def test_the_map_labels_read_on_their_tiles_and_never_say_null(
    seeded_url, monkeypatch, figure
) -> None:
    at = open_page(seeded_url, monkeypatch, "dashboards/explore.py")
    at.radio(key="figure").set_value(figure).run()
    assert not at.exception
    spec, data = _map(at)
    scale = spec["layer"][0]["encoding"]["color"]["scale"]
    fill_of = dict(zip(scale["domain"], scale["range"], strict=True))
    assert len(data) == 33
    for tile in data.itertuples():
        fill = fill_of[tile.band]
        assert fill == tile.fill
        assert charts.contrast(tile.ink, fill) >= WCAG_TEXT, (tile.borough, tile.ink, fill)
        assert tile.value_text not in {"null", "None", "nan", ""}, tile.borough
    # The demo data hold no counts for the City of London: its tile says so, in grey.
    city = data[data["borough"] == "City of London"].iloc[0]
    assert (city.value_text, city.fill) == ("no data", charts.NO_DATA_COLOUR)
    assert scale["domain"][-1] == "no data"
    # Labels take their colour from the data; nothing is drawn white on yellow.
    for layer in spec["layer"][1:]:
        assert layer["encoding"]["color"] == {"field": "ink", "scale": None, "type": "nominal"}


CHANNELS = ("x", "y", "color", "shape", "strokeDash", "size", "row", "column", "opacity")


def _untitled(spec: dict, where: str = "") -> list[str]:
    """Channels that would show a title and leave Vega-Lite to use the raw field name."""
    found = []
    for i, layer in enumerate(spec.get("layer", [])):
        found += _untitled(layer, f"{where}layer {i} ")
    for channel, encoding in (spec.get("encoding") or {}).items():
        if channel not in CHANNELS or not isinstance(encoding, dict) or "field" not in encoding:
            continue
        hidden = (
            encoding.get("axis", "") is None
            or encoding.get("legend", "") is None
            or encoding.get("scale", "") is None
        )
        if not hidden and "title" not in encoding:
            found.append(f"{where}{channel}: {encoding['field']}")
    return found


def _charts(at) -> list[tuple[str, dict]]:
    return [(c.key, json.loads(c.proto.spec)) for c in at.get("vega_lite_chart")]


@pytest.mark.slow
@pytest.mark.parametrize(
    "page", ["dashboards/overview.py", "dashboards/explore.py", "dashboards/models.py"]
)
def test_every_chart_has_human_titles_and_an_accessible_name(seeded_url, monkeypatch, page):
    at = open_page(seeded_url, monkeypatch, page)
    if page == "dashboards/explore.py":
        at.selectbox(key="detail").set_value("E09000012").run()  # Hackney's detail chart too
    if page == "dashboards/models.py":
        at.button(key="FormSubmitter:trend-Compare").click().run()
        at.selectbox(key="model_kind").set_value("its")
        at.button(key="FormSubmitter:model-Fit").click().run()
    assert not at.exception
    drawn = _charts(at)
    assert drawn, page
    captions = {c.value for c in at.caption}
    for key, spec in drawn:
        assert _untitled(spec) == [], key
        titles = json.dumps(spec)
        assert "rolling_12" not in titles and '"title": "series"' not in titles, key
        # The accessible name is the summary printed under the chart (escaped there as Markdown).
        assert md(spec.get("description", "")) in captions, key
