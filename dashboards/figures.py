"""Registry figures cached for more than one page: one cache, so moving from Overview to
Explore (or back) does not query the same options again."""

from __future__ import annotations

from typing import NamedTuple

import streamlit as st

from dashboards.common import current_principal, data_state, session
from registry.auth import Principal, ReadScope, read_scope
from registry.config import get_settings
from registry.figures.explore import ExploreOptions, explore_options
from registry.periods import format_month, month_range


@st.cache_data(max_entries=8, show_spinner=False)
def cached_explore_options(
    url: str, version: int, scope: ReadScope, _who: Principal
) -> ExploreOptions:
    """:func:`registry.figures.explore.explore_options`, keyed on the database, its data version and
    what the core's check looks at (:func:`registry.auth.read_scope`: a hit never skips it)."""
    with session() as s:
        return explore_options(s, principal=_who)


class PageStart(NamedTuple):
    """What Overview and Explore both begin with: who, which data, and the months to offer."""

    who: Principal
    url: str
    version: int
    without_deliveries: int  # the version for caches of figures that read no delivery
    options: ExploreOptions
    months: list[str]  # YYYY-MM, first to last month with delivery or outcome data


def outcome_page_start(nothing: str) -> PageStart:
    """The signed-in user's options, or guidance and a stop when no outcome count is stored
    (``nothing`` says what the page cannot show, e.g. "there is nothing to explore")."""
    who = current_principal()
    url = get_settings().database_url
    state = data_state()
    options = cached_explore_options(url, state.version, read_scope(who), who)
    if options.empty or options.first_month is None or options.last_month is None:
        st.info(
            f"No outcome counts are stored yet, so {nothing}. An administrator can load crime "
            "and population data on the Outcome data page (or `vru import ...`), or demo data "
            "with `vru seed`."
        )
        st.stop()
    months = [format_month(m) for m in month_range(options.first_month, options.last_month)]
    return PageStart(who, url, state.version, state.without_deliveries, options, months)
