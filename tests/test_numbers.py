"""One number format everywhere (issue #15): counts with thousands separators, rates and
percentages to one decimal, from `registry.numbers`, on pages, in tables and in CLI text."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from registry import numbers
from tests.test_app_dashboard import open_page


def test_each_kind_of_figure_is_written_one_way() -> None:
    assert numbers.count(1236) == "1,236" and numbers.count(np.int64(1236)) == "1,236"
    assert numbers.count(12.0) == "12"
    assert numbers.rate(1234.5678) == "1,234.6" and numbers.rate(-6.8966) == "-6.9"
    assert numbers.percent(6.8966) == "6.9%"
    assert numbers.change(-6.8966) == "-6.9%" and numbers.change(12.25) == "+12.2%"
    assert numbers.money(1250.5) == "£1,250.50"
    assert numbers.figure(1236) == "1,236" and numbers.figure(19.0462) == "19.0"
    for nothing in (None, float("nan"), pd.NA, np.nan):
        for write in (numbers.count, numbers.rate, numbers.change, numbers.money):
            assert write(nothing) == numbers.MISSING


@pytest.mark.parametrize(
    "name,values,kind",
    [
        ("opportunities", [1236, 5], "count"),
        ("count", [12.0, math.nan], "count"),
        ("outcome_rate", [19.0462], "rate"),
        ("Rate per 100,000", [19.0], "rate"),
        ("change on a year earlier (%)", [-6.8966], "change"),
        ("change_pct", [3.0], "change"),
        ("spend_gbp", [1250.5], "money"),
        ("cost_per_opportunity_gbp", [2.5], "money"),
        ("year", [2024], "plain"),
        ("batch", [12], "plain"),
        ("row", [3], "plain"),
        ("estimate", [-0.0123], None),
        ("p_value", [0.04], None),
        ("borough", ["Camden"], None),
        ("signed_off", [True, False], None),
        ("Same months a year earlier", [1236], "count"),
    ],
)
def test_column_kinds(name, values, kind) -> None:
    assert numbers.column_kind(name, values) == kind


def test_d3_and_printf_formats_say_the_same_thing() -> None:
    assert numbers.D3["count"] == ",.0f" and numbers.PRINTF["count"] == "%,d"
    assert numbers.D3["rate"] == ",.1f" and numbers.PRINTF["rate"] == "%,.1f"
    assert numbers.D3["change"] == "+,.1f" and numbers.PRINTF["change"] == "%+,.1f"
    # The d3 strings are also Python format specs, so a sentence and a tooltip agree.
    assert f"{1236:{numbers.D3['count']}}" == numbers.count(1236)
    assert f"{-6.8966:{numbers.D3['change']}}%" == numbers.change(-6.8966)


def _formats(element) -> dict[str, str]:
    config = json.loads(element.proto.columns or "{}")
    return {name: c.get("type_config", {}).get("format") for name, c in config.items()}


def test_overview_table_writes_counts_and_changes_the_one_way(seeded_url, monkeypatch) -> None:
    at = open_page(seeded_url, monkeypatch, "dashboards/overview.py")
    table = next(d for d in at.dataframe if "count" in d.value.columns)
    formats = _formats(table)
    assert formats["count"] == "%,d" and formats["a year earlier"] == "%,d"
    assert formats["change on a year earlier (%)"] == "%+,.1f"
    assert formats["change on 2019 (%)"] == "%+,.1f"
    metrics = {m.label: m.value for m in at.metric}
    assert all("," in v for v in metrics.values() if v.replace(",", "").isdigit() and len(v) > 4)


def test_home_table_and_tiles_agree(seeded_url, monkeypatch) -> None:
    at = open_page(seeded_url, monkeypatch, "dashboards/home.py")
    tiles = {m.label: m.value for m in at.metric}
    table = at.table[0].value
    for measure, row in table.iterrows():
        assert row["London total"] == tiles[measure]
    assert any(len(v) > 3 and "," in v for v in table["London total"])
