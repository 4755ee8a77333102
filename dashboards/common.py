"""What every page shares: the cached engine, the signed-in principal, sessions, messages."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

import altair.utils.schemapi as alt_schema
import pandas as pd
import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from dashboards import session_routes
from registry import audit, db, demo, sessions
from registry.auth import Principal, allowed
from registry.config import get_settings
from registry.errors import RegistryError, database_error_message
from registry.files import csv_bytes
from registry.numbers import PRINTF, column_kind

log = logging.getLogger("vru.app")
T = TypeVar("T")
PRINCIPAL_KEY = "principal"


@st.cache_resource(show_spinner=False)
def engine_for(url: str) -> Engine:
    """One engine (and connection pool) per database URL for the whole server process."""
    return db.make_engine(url)


def engine() -> Engine:
    return engine_for(get_settings().database_url)


@contextmanager
def session() -> Iterator[Session]:
    """A transaction: committed when the block succeeds, rolled back on any error.

    An error from the database itself (read-only, disk full, a clash with another writer) is
    shown as one plain message and the page stops there, instead of a traceback.
    """
    try:
        with db.session_scope(engine()) as s:
            yield s
    except DBAPIError as exc:
        log.warning("database error: %s", exc)
        st.error(md(database_error_message(exc)))
        st.stop()


# Characters that start Markdown or HTML markup Streamlit would render: links and images need
# brackets, raw HTML needs angle brackets, code needs backticks, LaTeX needs dollars.
_MARKUP = re.compile(r"([\\`*_~\[\]<>$|])")
_AUTOLINK = re.compile(r"(?i)\b(https?|ftp|mailto)(:)|\b(www)(\.)")


def md(text: object) -> str:
    """``text`` (anything a user typed: a name, a file name, a message quoting them) made safe
    for a Streamlit Markdown string: it shows as typed and never becomes a link, an image, HTML
    or formatting. The one place page text is escaped; every page uses it.
    """
    escaped = _MARKUP.sub(r"\\\1", str(text)).replace("\r", " ").replace("\n", " ")
    # GitHub-flavoured Markdown turns bare addresses into links; a backslash stops that.
    return _AUTOLINK.sub(lambda m: f"{m[1] or m[3]}\\{m[2] or m[4]}", escaped)


def show_error(exc: BaseException | str) -> None:
    """A refusal as one message box, its text escaped (it often quotes what the user typed)."""
    st.error(md(exc))


SESSION_TOKEN_KEY = "_vru_session_token"
SESSION_ENDED_KEY = "_vru_session_ended"
_RESOLVED_KEY = "_vru_principal"


def _user_agent() -> str:
    agent = st.context.headers.get("User-Agent")
    return agent if isinstance(agent, str) else ""


def session_token() -> str | None:
    """This visitor's session token: from the signed cookie this connection sent, or (without
    the app server's cookie routes: AppTest, plain ``streamlit run``) kept for this tab only."""
    raw = st.context.cookies.get(sessions.COOKIE_NAME)
    token = sessions.token_from_cookie(raw) if isinstance(raw, str) else None
    return token or st.session_state.get(SESSION_TOKEN_KEY)


def start_session(s: Session, who: Principal) -> sessions.Opened:
    """Open the server-side session for ``who``, just signed in. Without the cookie routes the
    token is kept in this tab's (server-side) state; with them the cookie will carry it."""
    opened = sessions.open_session(s, who, user_agent=_user_agent())
    if not session_routes.MOUNTED:
        st.session_state[SESSION_TOKEN_KEY] = opened.token
    return opened


def resolve_principal() -> Principal | None:
    """Who is signed in for this run, re-read from the database (one query): called once at
    the top of every run, so a disabled, demoted or signed-out user is stopped at the next
    action. A principal placed straight into session state (tests only: nothing in the app
    does) is taken as it is.
    """
    st.session_state.pop(_RESOLVED_KEY, None)
    token = session_token()
    if token is None:
        return st.session_state.get(PRINCIPAL_KEY)
    with session() as s:
        found = sessions.resume(s, token, user_agent=_user_agent())
    if isinstance(found, Principal):
        st.session_state[_RESOLVED_KEY] = found
        return found
    st.session_state.pop(SESSION_TOKEN_KEY, None)
    if isinstance(found, sessions.Ended):
        st.session_state[SESSION_ENDED_KEY] = found.message
    return None


def end_session(*, everywhere: bool) -> None:
    """Sign out: end this session (every tab of this browser) or all of the user's sessions."""
    token = session_token()
    if token is not None:
        with session() as s:
            sessions.sign_out(s, token, everywhere=everywhere)
    for key in (SESSION_TOKEN_KEY, _RESOLVED_KEY, PRINCIPAL_KEY):
        st.session_state.pop(key, None)


def principal() -> Principal | None:
    return st.session_state.get(_RESOLVED_KEY) or st.session_state.get(PRINCIPAL_KEY)


def current_principal() -> Principal:
    """The signed-in principal; pages are only routed to once someone has signed in."""
    who = principal()
    if who is None:
        st.error("Please sign in.")
        st.stop()
    return who


def can(permission: str) -> bool:
    who = principal()
    return who is not None and allowed(who, permission)


@st.cache_data(max_entries=8, show_spinner=False)
def _is_synthetic(url: str, version: int) -> bool:
    with db.session_scope(engine_for(url)) as s:
        return demo.is_synthetic(s)


class DataState(NamedTuple):
    """Which data a page is looking at: the version every cache keys on, the version ignoring
    delivery figures (for caches of figures that do not read them) and whether it is demo data."""

    version: int
    without_deliveries: int
    synthetic: bool


def data_state() -> DataState:
    """The data versions (:func:`registry.audit.data_version`) and whether the data is
    synthetic demo data.

    The versions are read from the database on every run (indexed queries), never cached: with
    several server processes on one database (README, "Deploying"), another process may have
    saved since this one last looked, and every page cache is keyed on them. Nothing clears the
    caches: a write moves the version, later runs ask for new entries, and each cache's
    ``max_entries`` bounds the memory the old ones hold.
    """
    url = get_settings().database_url
    with db.session_scope(engine_for(url)) as s:
        version = audit.data_version(s)
        without_deliveries = audit.data_version(s, ignoring_deliveries=True)
    return DataState(version, without_deliveries, _is_synthetic(url, version))


# Before any page runs: a browser's clear-cache message is ignored (see the function).
session_routes.refuse_browser_cache_clearing()


def demo_banner() -> None:
    st.warning(
        "**Synthetic demo data.** Every figure shown here is invented for demonstration: these "
        "are not real programmes, real delivery or real crime counts.",
        icon=":material/science:",
    )


def attempt(fn: Callable[[], T]) -> T | None:
    """Run ``fn``; show a refusal as a plain message instead of a traceback.

    For reads. A write goes through :func:`write`: a refusal caught inside an open
    ``with session()`` would let the block end normally and commit what was done before it.
    """
    try:
        return fn()
    except RegistryError as exc:
        show_error(exc)
    return None


def write(fn: Callable[[Session], T]) -> T | None:
    """Run the registry write ``fn(session)`` in a transaction of its own, opened inside the
    refusal handling: a refusal rolls back everything ``fn`` did, then shows as a message.

    Returns what ``fn`` returned, or ``None`` when it was refused.
    """

    def run() -> T:
        with session() as s:
            return fn(s)

    return attempt(run)


alt_schema.disable_debug_mode()  # no validation while a chart is being put together, either

# Okabe-Ito: distinguishable with every common form of colour-blindness.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")


def query_defaults(defaults: dict[str, str | list[str]], allowed: dict[str, list[str]]) -> None:
    """Seed widget state from the URL's query parameters the first time a page runs.

    ``defaults`` maps a widget key (also the query parameter's name) to its default; list
    defaults are multi-valued parameters. Values not in ``allowed[key]`` are dropped, so an
    edited or stale URL falls back to the defaults. Widgets are then created with ``key=`` only.
    """
    for key, default in defaults.items():
        if key in st.session_state:
            continue
        options = allowed[key]
        if isinstance(default, list):
            given = [v for v in st.query_params.get_all(key) if v in options]
            st.session_state[key] = given or default
        else:
            value = st.query_params.get(key, default)
            st.session_state[key] = value if value in options else default


def keep_in_url(keys: list[str]) -> None:
    """Write the widgets' current values into the URL so the view can be shared."""
    wanted: dict[str, list[str]] = {}
    for key in keys:
        value = st.session_state.get(key)
        if value is None or value == []:
            continue
        wanted[key] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    current = {k: st.query_params.get_all(k) for k in st.query_params}
    if current != wanted:
        st.query_params.from_dict(wanted)


def number_columns(table: pd.DataFrame) -> dict[str, Any]:
    """Column formats for ``st.dataframe`` that write ``table``'s figures the one way
    (:mod:`registry.numbers`): counts with separators, rates and changes to one decimal."""
    config: dict[str, Any] = {}
    for name in table.columns:
        column = table[name]
        if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
            continue
        kind = column_kind(str(name), column.dropna().unique().tolist())
        if kind is not None:
            config[name] = st.column_config.NumberColumn(format=PRINTF[kind])
    return config


def chart_png(chart: Any) -> bytes:
    import vl_convert  # imported on demand: only a PNG download needs it

    return vl_convert.vegalite_to_png(chart.to_dict(validate=False), scale=2)


def chart_with_table(
    chart: Any, table: pd.DataFrame, *, summary: str, name: str, key: str, **select: Any
) -> Any:
    """Draw ``chart``, a one-line summary, its data as a table, and CSV and PNG downloads.

    The summary is also the chart's accessible name (Vega-Lite's ``description``, which the
    rendered SVG carries as its ``aria-label``), so a screen reader says what the chart shows.
    Returns the chart's selection event when ``select`` asks for one (``on_select=...``).
    """
    # The spec goes to Streamlit as a dict built without Altair's JSON-schema validation, which
    # costs more than everything else on a rerun (the charts are built by code, not typed in).
    spec = chart.to_dict(validate=False) | {"description": summary}
    event = st.vega_lite_chart(spec, width="stretch", key=f"{key}_chart", **select)
    st.caption(md(summary))
    st.dataframe(table, hide_index=True, key=f"{key}_table", column_config=number_columns(table))
    left, right = st.columns(2)
    left.download_button(
        "Download data (CSV)",
        csv_bytes(table),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"{key}_csv",
        on_click="ignore",
    )
    right.download_button(
        "Download chart (PNG)",
        lambda: chart_png(chart),
        file_name=f"{name}.png",
        mime="image/png",
        key=f"{key}chart_png",
        on_click="ignore",
    )
    return event


def table_download(table: pd.DataFrame, *, name: str, key: str) -> None:
    st.download_button(
        "Download table (CSV)",
        csv_bytes(table),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=key,
        on_click="ignore",
    )
