"""The pages' shared caches: keyed on who asks, so a hit never skips the core's permission
check, and cleared only by the app after a write, never by a visitor."""

from __future__ import annotations

import ast
from pathlib import Path
from unittest.mock import MagicMock

import pytest
import streamlit as st
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.runtime.app_session import AppSession, AppSessionState

from dashboards import common
from dashboards.figures import cached_explore_options
from registry.auth import Principal
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


def test_every_cached_page_function_keys_on_the_principal() -> None:
    """A parameter named with a leading underscore is left out of Streamlit's cache key: a
    principal passed that way would let one user's cached figures answer another's request."""
    checked = 0
    for name, fn in _cached_functions():
        for arg in fn.args.args + fn.args.kwonlyargs:
            if arg.annotation is not None and "Principal" in ast.unparse(arg.annotation):
                assert not arg.arg.startswith("_"), f"{name}:{fn.name} hides {arg.arg} from the key"
                checked += 1
    assert checked >= 8  # Overview, Explore (5), the explore options, Downloads


def test_a_cache_hit_never_skips_the_permission_check(seeded_url, monkeypatch) -> None:
    monkeypatch.setenv("VRU_DATABASE_URL", seeded_url)
    cached_explore_options.clear()
    options = cached_explore_options(seeded_url, 1, COMMISSIONER)
    assert options.measures
    # Same database, same data version, cached for the commissioner: the funder still asks the
    # core, which refuses (funders see only their own summaries, not the outcome figures).
    with pytest.raises(PermissionDenied, match="fran \\(funder\\)"):
        cached_explore_options(seeded_url, 1, FUNDER)
    # Demoted or re-scoped, the same name is a different key, checked afresh.
    with pytest.raises(PermissionDenied):
        cached_explore_options(seeded_url, 1, Principal(COMMISSIONER.username, "funder", "X"))
    assert cached_explore_options(seeded_url, 1, STAFF) == options
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


def test_only_pages_that_need_a_permission_clear_caches() -> None:
    """The caches are cleared in one place, :func:`dashboards.common.data_changed`, called only
    by pages the navigation (streamlit_app.py) shows to someone signed in with a permission,
    never to a signed-out visitor (who is only ever shown the sign-in form)."""
    app = ast.parse((DASHBOARDS.parent / "streamlit_app.py").read_text())
    pages = next(
        ast.literal_eval(node.value)
        for node in app.body
        if isinstance(node, ast.AnnAssign) and ast.unparse(node.target) == "PAGES"
    )
    permission = {Path(path).name: needed for group in pages.values() for path, *_, needed in group}
    clearing = set()
    for path in DASHBOARDS.glob("*.py"):
        source = path.read_text()
        if path.name != "common.py":
            assert "cache_data.clear" not in source and "cache_resource.clear" not in source
        if "data_changed()" in source and path.name != "common.py":
            clearing.add(path.name)
    assert clearing == {
        "entry.py",
        "programmes.py",
        "completeness.py",
        "outcome_data.py",
        "users.py",
    }
    assert all(permission[name] is not None for name in clearing)
