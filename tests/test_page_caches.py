"""The pages' shared caches: keyed on what the core's permission check looks at (role and
funder), so a hit never skips it, and cleared only by the app after a write, never by a visitor."""

from __future__ import annotations

import ast
from pathlib import Path
from unittest.mock import MagicMock

import pytest
import streamlit as st
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.runtime.app_session import AppSession, AppSessionState

from dashboards import common, figures
from dashboards.figures import cached_explore_options
from registry.auth import Principal, read_scope
from registry.errors import PermissionDenied
from tests.conftest import COMMISSIONER, FUNDER, STAFF
from tests.test_app_home import app_as

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards"


def _cached_functions() -> list[tuple[str, ast.FunctionDef]]:
    found = []
    for path in sorted(DASHBOARDS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any(
                "cache_data" in ast.unparse(d) for d in node.decorator_list
            ):
                found.append((path.name, node))
    return found


def test_every_cached_page_function_keys_on_what_the_core_checks() -> None:
    """A parameter named with a leading underscore is left out of Streamlit's cache key. A
    principal passed that way must come with its read scope (role and funder, what the core's
    check looks at) in the key, or one user's cached figures would answer another's request."""
    checked = 0
    for name, fn in _cached_functions():
        args = fn.args.args + fn.args.kwonlyargs
        annotations = {a.arg: ast.unparse(a.annotation) for a in args if a.annotation is not None}
        for arg, annotation in annotations.items():
            if "Principal" in annotation and arg.startswith("_"):
                assert "ReadScope" in annotations.values(), f"{name}:{fn.name} keys on nobody"
                checked += 1
    assert checked >= 9  # Overview, Explore (6), the explore options, Models (2)


def test_a_cache_hit_never_skips_the_permission_check(seeded_url, monkeypatch) -> None:
    monkeypatch.setenv("VRU_DATABASE_URL", seeded_url)
    cached_explore_options.clear()

    def options(who: Principal) -> object:
        return cached_explore_options(seeded_url, 1, read_scope(who), who)

    found = options(COMMISSIONER)
    assert found.measures
    # Same database, same data version, cached for the commissioner: the funder still asks the
    # core, which refuses (funders see only their own summaries, not the outcome figures).
    with pytest.raises(PermissionDenied, match="fran \\(funder\\)"):
        options(FUNDER)
    # Demoted or re-scoped, the same name is a different key, checked afresh.
    with pytest.raises(PermissionDenied):
        options(Principal(COMMISSIONER.username, "funder", "X"))
    assert options(STAFF) == found
    cached_explore_options.clear()


def test_people_with_the_same_role_share_one_cache_entry(seeded_url, monkeypatch) -> None:
    """Fifty commissioners looking at the same figures make one computation, not fifty."""
    monkeypatch.setenv("VRU_DATABASE_URL", seeded_url)
    cached_explore_options.clear()
    calls: list[str] = []
    real = figures.explore_options

    def counted(s, *, principal: Principal) -> object:
        calls.append(principal.username)
        return real(s, principal=principal)

    monkeypatch.setattr(figures, "explore_options", counted)
    for name in ("cara", "chris", "cleo"):
        who = Principal(name, "commissioner")
        cached_explore_options(seeded_url, 1, read_scope(who), who)
    assert calls == ["cara"]
    cached_explore_options.clear()


def test_name_role_and_funder_are_each_part_of_the_key() -> None:
    """Streamlit hashes a dataclass by its fields: any difference is a fresh call."""
    calls: list[Principal] = []

    @st.cache_data
    def asked(who: Principal) -> str:
        calls.append(who)
        return who.username

    other_funder = Principal(FUNDER.username, FUNDER.role, "Another Trust")
    for who in (FUNDER, other_funder, Principal("fred", "funder", FUNDER.funder), FUNDER):
        asked(who)
    assert calls == [FUNDER, other_funder, Principal("fred", "funder", FUNDER.funder)]
    asked.clear()


def test_a_browser_cannot_clear_the_servers_caches() -> None:
    """Streamlit's "Clear cache" menu item and ``c`` shortcut (hidden by toolbarMode "minimal")
    send a ``clear_cache`` message any connection can forge; the server now ignores it."""
    calls: list[int] = []

    @st.cache_data
    def figure(n: int) -> int:
        calls.append(n)
        return n

    figure(1)
    app_session = object.__new__(AppSession)  # the real dispatcher, without a live server
    app_session._session_state = MagicMock()
    app_session._state = AppSessionState.SHUTDOWN_REQUESTED  # nothing to shut down later
    AppSession.handle_backmsg(app_session, BackMsg(clear_cache=True))
    figure(1)
    assert calls == [1]  # still cached
    app_session._session_state.clear.assert_not_called()
    figure.clear()


def test_signed_out_visitor_reaches_no_code_that_clears_caches(seeded_url, monkeypatch) -> None:
    cleared: list[bool] = []
    monkeypatch.setattr(common.st.cache_data, "clear", lambda: cleared.append(True))
    at = app_as(seeded_url, monkeypatch)
    at.text_input(key="sign_in_username").input("nobody")
    at.text_input(key="sign_in_password").input("not-a-password")
    at.button[0].click().run()
    assert not at.exception
    assert at.title[0].value == "Sign in to the VRU registry"
    assert not cleared


def test_no_page_clears_the_caches() -> None:
    """Every page cache is keyed on the data version, so a write needs no clearing; clearing
    after a delivery save emptied the outcome figures' caches too (BENCHMARKS.md, load)."""
    for path in [*DASHBOARDS.glob("*.py"), DASHBOARDS.parent / "streamlit_app.py"]:
        source = path.read_text()
        assert "cache_data.clear()" not in source and "cache_resource.clear()" not in source, path
