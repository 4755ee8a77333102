"""Registry figures cached for more than one page: one cache, so moving from Overview to
Explore (or back) does not query the same options again."""

from __future__ import annotations

import streamlit as st

from dashboards.common import session
from registry.auth import Principal
from registry.explore import ExploreOptions, explore_options


@st.cache_data(max_entries=8, show_spinner=False)
def cached_explore_options(url: str, version: int, _who: Principal) -> ExploreOptions:
    """:func:`registry.explore.explore_options`, keyed on the database and its data version."""
    with session() as s:
        return explore_options(s, principal=_who)
