"""Explore: delivery against an outcome, borough by borough, with chance variation marked."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import charts
from dashboards.common import (
    attempt,
    chart_with_table,
    keep_in_url,
    md,
    number_columns,
    query_defaults,
    session,
    table_download,
)
from dashboards.figures import outcome_page_start
from registry.auth import Principal, ReadScope, read_scope
from registry.denominators import people_words, rate_unit
from registry.errors import RegistryError
from registry.figures.explore import (
    FREQUENCIES,
    ExploreData,
    ExploreFilter,
    area_names,
    delivery_by_month,
    measure_population,
    outcomes_by_month,
    partial_periods,
    population_note,
    tile_map,
    trend_series,
    young_people,
)
from registry.figures.explore import borough_table as borough_figures
from registry.figures.funnel import Funnel, funnel
from registry.numbers import change, count, rate
from registry.outcomes.measures import SeriesBreak, series_breaks
from registry.periods import format_month, parse_month
from registry.windows import is_whole, stored_words

FIGURES = {"counts": "Counts", "rates": "Rates per population"}
KEYS = ["measure", "borough", "programme", "stream", "start", "end", "figure", "freq", "detail"]


# Each part is cached on its own, keyed on the data version: a new measure does not reload
# delivery, a borough, period or frequency change reloads nothing, and the parts that read no
# delivery figures key on the version without them, so a delivery saved elsewhere reloads only
# delivery.
@st.cache_data(max_entries=16, show_spinner=False)
def _delivery(
    url: str,
    version: int,
    programmes: tuple[str, ...],
    streams: tuple[str, ...],
    scope: ReadScope,
    _who: Principal,
) -> pd.DataFrame:
    with session() as s:
        return delivery_by_month(s, principal=_who, programmes=programmes, funding_streams=streams)


@st.cache_data(max_entries=16, show_spinner=False)
def _outcomes(
    url: str, version: int, measure: str, scope: ReadScope, _who: Principal
) -> pd.DataFrame:
    with session() as s:
        return outcomes_by_month(s, principal=_who, measure=measure)


@st.cache_data(max_entries=4, show_spinner=False)
def _people(
    url: str, version: int, first: int, last: int, scope: ReadScope, _who: Principal
) -> pd.DataFrame:
    with session() as s:
        return young_people(s, principal=_who, first_year=first, last_year=last)


@st.cache_data(max_entries=8, show_spinner=False)
def _band_people(
    url: str,
    version: int,
    measure: str,
    first: int,
    last: int,
    scope: ReadScope,
    _who: Principal,
) -> tuple[str, pd.DataFrame]:
    with session() as s:
        found = measure_population(
            s, principal=_who, measure=measure, first_year=first, last_year=last
        )
    return found.band, found.people


@st.cache_data(max_entries=4, show_spinner=False)
def _areas(url: str, version: int, scope: ReadScope, _who: Principal) -> pd.DataFrame:
    with session() as s:
        return area_names(s, principal=_who)


@st.cache_data(max_entries=16, show_spinner=False)
def _breaks(
    url: str, version: int, measure: str, start: str, end: str, scope: ReadScope, _who: Principal
) -> list[SeriesBreak]:
    with session() as s:
        return series_breaks(s, measure, parse_month(start), parse_month(end))


def _data(measure: str, programmes: tuple[str, ...], streams: tuple[str, ...]) -> ExploreData:
    assert options.first_month is not None and options.last_month is not None
    first, last = options.first_month.year, options.last_month.year
    return ExploreData(
        measure,
        labels[measure],
        _areas(url, outcomes_version, read_scope(who), who),
        _delivery(url, version, programmes, streams, read_scope(who), who),
        _outcomes(url, outcomes_version, measure, read_scope(who), who),
        _people(url, outcomes_version, first, last, read_scope(who), who),
        *_band_people(url, outcomes_version, measure, first, last, read_scope(who), who),
    )


st.title("Explore")
who, url, version, outcomes_version, options, months = outcome_page_start(
    "there is nothing to explore"
)
names = dict(options.areas)
labels = dict(options.measures)
# By default the period ends on complete outcome data (the latest month whose outcome windows
# are wholly stored), as Overview's does.
last = months.index(format_month(options.default_end)) if options.default_end else len(months) - 1
query_defaults(
    {
        "measure": options.measures[0][0],
        "borough": [],
        "programme": [],
        "stream": [],
        "start": months[max(0, last - 35)],
        "end": months[last],
        "figure": "counts",
        "freq": "month",
        "detail": "",
    },
    {
        "measure": list(labels),
        "borough": list(names),
        "programme": options.programmes,
        "stream": options.funding_streams,
        "start": months,
        "end": months,
        "figure": list(FIGURES),
        "freq": list(FREQUENCIES),
        "detail": ["", *names],
    },
)

with st.sidebar:
    st.header("Filters")
    st.selectbox("Outcome", list(labels), format_func=labels.__getitem__, key="measure")
    st.multiselect(
        "Boroughs (all when empty)", list(names), format_func=names.__getitem__, key="borough"
    )
    st.multiselect("Programmes (all when empty)", options.programmes, key="programme")
    st.multiselect("Funding streams (all when empty)", options.funding_streams, key="stream")
    st.selectbox("From", months, key="start")
    st.selectbox("To", months, key="end")
    st.radio("Show", list(FIGURES), format_func=FIGURES.__getitem__, key="figure", horizontal=True)
    st.selectbox("Periods", list(FREQUENCIES), format_func=FREQUENCIES.__getitem__, key="freq")
keep_in_url(KEYS)

state = st.session_state
flt = attempt(
    lambda: ExploreFilter(
        parse_month(state["start"]),
        parse_month(state["end"]),
        tuple(state["borough"]),
        state["freq"],
        state["figure"] == "rates",
    )
)
if flt is None:
    st.stop()
data = attempt(lambda: _data(state["measure"], tuple(state["programme"]), tuple(state["stream"])))
if data is None:
    st.stop()
rates = flt.rates
outcome = data.measure_label
where = ", ".join(names[a] for a in flt.areas) if flt.areas else "all boroughs"
span = f"{format_month(flt.start)} to {format_month(flt.end)}"
st.write(
    f"**{md(outcome)}** and positive opportunities delivered, {md(where)}, {span}, "
    f"{FREQUENCIES[flt.frequency].lower()}."
)
unit = rate_unit(data.band)
years_note = population_note(data, flt)
st.caption(
    f"Rates: opportunities per 1,000 aged 10-24 and {md(outcome.lower())} {unit} over each "
    "period (not annualised). Borough figures count offences the police place in a borough; "
    "change compares the period with the same months one year earlier."
    + (f" Population: {years_note}." if rates and years_note else "")
)

# Trend: delivery against the outcome --------------------------------------------------------
st.subheader("Delivery against the outcome")
breaks = _breaks(
    url, outcomes_version, data.measure, state["start"], state["end"], read_scope(who), who
)
for brk in breaks:  # beside every figure below: the period crosses the break
    st.warning(md(brk.sentence()), icon=":material/timeline:")
trend = trend_series(data, flt)
left_out = partial_periods(flt)
if left_out:
    st.caption(
        f"Left out: {' and '.join(left_out)}, of which the period chosen holds only some months."
    )
if trend["label"].str.endswith("(part)").any():
    st.caption("A period marked (part) has a figure left empty: not all its months are stored.")
d_col, o_col = ("delivery_rate", "outcome_rate") if rates else ("opportunities", "count")
d_title = "Opportunities per 1,000 aged 10-24" if rates else "Opportunities delivered"
o_title = f"{outcome} {unit}" if rates else f"{outcome} (count)"
number = charts.number_format(o_col)  # counts print whole, rates to one decimal
if trend.empty:
    st.info("No delivery or outcome figures are stored for this selection.")
else:
    chart = charts.with_breaks(
        charts.with_data(charts.trend(d_col, o_col, d_title, o_title), trend), breaks
    )
    # The outcome's first and last periods with a figure (counts may stop before delivery).
    known = trend.dropna(subset=[o_col])
    outcome_span = (
        f"{known.iloc[0]['label']} {known.iloc[0][o_col]:{number}} to "
        f"{known.iloc[-1]['label']} {known.iloc[-1][o_col]:{number}} for the outcome"
        if len(known)
        else "no outcome figures in this period"
    )
    chart_with_table(
        chart,
        trend[list(dict.fromkeys(["label", "opportunities", "count", d_col, o_col]))],
        summary=(
            f"Bars show {d_title.lower()}, the line with diamonds {o_title}: {outcome_span}; "
            f"{count(trend['opportunities'].sum())} opportunities in all."
            + "".join(
                f" A dashed rule marks the series break in {format_month(b.month)}." for b in breaks
            )
        ),
        name="trend",
        key="trend",
    )

# Borough comparison --------------------------------------------------------------------------
st.subheader("Borough comparison")
table = borough_figures(data, flt)
shown = table.rename(
    columns={
        "borough": "Borough",
        "opportunities": "Opportunities",
        "count": f"{outcome}",
        "young_people": "People aged 10-24",
        "population": people_words(data.band),
        "count_year_earlier": "Same months a year earlier",
        "delivery_rate": "Opportunities per 1,000",
        "outcome_rate": f"Rate {unit}",
        "change_pct": "Change on a year earlier (%)",
        "months_stored": "Months stored",
    }
).drop(columns="area")
short = table[~is_whole(flt.start, flt.end, table["months_stored"])]
gaps = [
    f"{stored_words(flt.start, flt.end, int(n))} for "
    + (", ".join(group["borough"]) if len(group) <= 5 else f"{len(group)} areas")
    for n, group in short.groupby(short["months_stored"])
]
st.caption(
    md(
        "Click a column heading to sort. Change is empty where the earlier count was zero. A "
        "rate or a change needs every month of the period stored"
        + (": " + "; ".join(gaps) + ", so they have neither." if gaps else ".")
    )
)
st.dataframe(
    shown,
    hide_index=True,
    key="boroughs_table",
    column_config=number_columns(shown),
)
table_download(shown, name="boroughs", key="boroughs_csv")

# Funnel plot --------------------------------------------------------------------------------
st.subheader("Borough rates against the London rate (funnel plot)")
try:
    plot: Funnel | None = funnel(data, flt, every=None if flt.areas else table)
except RegistryError as exc:  # a gap in the data, not a mistake: guidance, not an error box
    plot = None
    st.info(
        f"{exc} Rates need outcome counts and the population: an administrator loads them on "
        "the Outcome data page or with `vru import crime` and `vru import population`."
    )
if plot is not None:
    limits = plot.limits.assign(curve=plot.limits["limit"] + " " + plot.limits["side"])
    lines, centre, points = charts.funnel(outcome, data.band)
    funnel_chart = alt.layer(
        charts.with_data(lines, limits),
        charts.with_data(centre, pd.DataFrame({"rate": [plot.london_rate]})),
        charts.with_data(points, plot.points),
    )
    outside = plot.points[~plot.points["band"].str.startswith("within")]
    chart_with_table(
        funnel_chart,
        plot.points,
        summary=(
            f"London rate {rate(plot.london_rate)} {unit} (black line); "
            f"{len(outside)} of {len(plot.points)} boroughs fall outside the 95% limits "
            f"(solid lines; 99.8% dashed) — "
            + (", ".join(f"{r.borough} ({r.band})" for r in outside.itertuples()) or "none")
            + (
                ". Inside the limits, differences are what chance and the usual spread between "
                "boroughs would produce."
                if plot.tau > 0
                else ". Inside the limits, differences are what chance alone would produce."
            )
        ),
        name="funnel",
        key="funnel",
    )
    for note in plot.notes:
        st.caption(md(note))

# Tile map -----------------------------------------------------------------------------------
st.subheader("London map")
figure = "outcome_rate" if rates else "count"
figure_title = f"{outcome} {unit}" if rates else f"{outcome} (count)"
tiles = tile_map(table).assign(value=lambda t: t[figure].round(1))
if tiles.empty:
    st.info("None of the areas chosen is a London borough, so there is no map to draw.")
else:
    tiles = tiles.join(charts.tile_bands(tiles["value"], charts.kind_of(figure)))
    tile_chart = charts.with_data(charts.tiles(figure_title, number, tiles), tiles)
    ranked = tiles.dropna(subset=["value"]).sort_values("value", ascending=False)
    highest = (
        f"Highest: {ranked.iloc[0]['borough']} ({ranked.iloc[0]['value']:{number}})."
        if len(ranked)
        else "No borough has a figure for this period."
    )

    def _pick_from_map() -> None:
        """A click on a tile chooses its borough for the detail below.

        Only a new click: the tile stays selected on the map across reruns, and the box must
        still be able to choose another borough afterwards.
        """
        clicked = st.session_state["map_chart"].selection.get("pick", [])
        if clicked and clicked[0].get("area") in names:
            st.session_state["detail"] = clicked[0]["area"]

    chart_with_table(
        tile_chart,
        tiles[["borough", "short", "row", "col", "value"]],
        summary=(
            f"Each square is a borough placed roughly where it lies, labelled with its short "
            f"name and {figure_title.lower()}; darker is lower, grey has no figure. {highest}"
        ),
        name="map",
        key="map",
        on_select=_pick_from_map,
        selection_mode="pick",
    )

# Borough detail -----------------------------------------------------------------------------
st.subheader("Borough detail")
st.selectbox(
    "Borough (or click one on the map)",
    ["", *names],
    format_func=lambda c: names.get(c, "Choose a borough"),
    key="detail",
)
keep_in_url(KEYS)
if state["detail"]:
    code = state["detail"]
    row = table[table["area"] == code]
    if not row.empty:
        r = row.iloc[0]
        left, mid, right = st.columns(3)
        left.metric("Opportunities", count(r["opportunities"]))
        mid.metric(
            f"{outcome}",
            "no data" if pd.isna(r["count"]) else count(r["count"]),
            None if pd.isna(r["change_pct"]) else f"{change(r['change_pct'])} on a year earlier",
            delta_color="inverse",
        )
        right.metric(
            f"Rate {unit}",
            "no data" if pd.isna(r["outcome_rate"]) else rate(r["outcome_rate"]),
        )
    detail = trend_series(
        data, ExploreFilter(flt.start, flt.end, (code,), flt.frequency, flt.rates)
    )
    if not detail.empty:
        long = detail.rename(columns={d_col: d_title, o_col: o_title}).melt(
            id_vars=["period", "label"], value_vars=[d_title, o_title], var_name="series"
        )
        chart = charts.with_data(charts.detail(), long)
        chart_with_table(
            chart,
            detail[["label", d_col, o_col]],
            summary=f"{names[code]}: {d_title.lower()} and {o_title} per period, {span}."
            + "".join(f" Series break in {format_month(b.month)} (see above)." for b in breaks),
            name=f"detail-{code}",
            key="detail",
        )
