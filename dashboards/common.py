"""What every page shares: the cached engine, the signed-in principal, sessions, messages."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from registry import audit, db, demo
from registry.auth import Principal, allowed
from registry.config import get_settings
from registry.errors import RegistryError, database_error_message

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
        st.error(database_error_message(exc))
        st.stop()


def principal() -> Principal | None:
    return st.session_state.get(PRINCIPAL_KEY)


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


@st.cache_data(ttl=60, show_spinner=False)
def _version_and_demo(url: str, _nonce: int) -> tuple[int, bool]:
    with db.session_scope(engine_for(url)) as s:
        return audit.data_version(s), demo.is_synthetic(s)


def data_state() -> tuple[int, bool]:
    """The data version (grows with every change) and whether the data is synthetic demo data.

    Cached for a minute per server; a page that writes calls :func:`data_changed`.
    """
    return _version_and_demo(get_settings().database_url, st.session_state.get("_nonce", 0))


def data_changed() -> None:
    """Forget cached figures after this session wrote to the registry."""
    st.session_state["_nonce"] = st.session_state.get("_nonce", 0) + 1
    st.cache_data.clear()


def demo_banner() -> None:
    st.warning(
        "**Synthetic demo data.** Every figure shown here is invented for demonstration: these "
        "are not real programmes, real delivery or real crime counts.",
        icon=":material/science:",
    )


def attempt(fn: Callable[[], T]) -> T | None:
    """Run ``fn``; show a refusal as a plain message instead of a traceback."""
    try:
        return fn()
    except RegistryError as exc:
        st.error(str(exc))
    return None
