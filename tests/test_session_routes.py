"""The cookie routes (dashboards/session_routes.py) over HTTP, without a browser."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dashboards import session_routes
from registry import auth, db, sessions
from tests.conftest import ADMIN
from tests.streamlit_ws import handover_form

AGENT = "Mozilla/5.0 Chrome/140"


@pytest.fixture
def client(db_url, monkeypatch):
    monkeypatch.setenv("VRU_DATABASE_URL", db_url)
    monkeypatch.setattr(session_routes, "MOUNTED", False)  # routes() sets it; put it back
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        auth.add_user(s, principal=ADMIN, username="sam", role="staff", password="kettle-orbit-2")
        opened = sessions.open_session(s, auth.Principal("sam", "staff"), user_agent=AGENT)
    app = Starlette(routes=session_routes.routes())
    with TestClient(app, base_url="http://registry.test", follow_redirects=False) as c:
        c.headers["user-agent"] = AGENT
        yield c, opened
    engine.dispose()


def test_claim_sets_a_signed_httponly_lax_cookie_once(client) -> None:
    c, opened = client
    form = {"code": opened.claim_code, "next": "/explore?borough=E09000012&freq=quarter"}
    first = c.post(session_routes.SESSION_PATH, data=form)
    assert first.status_code == 303
    assert first.headers["location"] == "/explore?borough=E09000012&freq=quarter"
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"{sessions.COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert sessions.token_from_cookie(value) == opened.token
    again = c.post(session_routes.SESSION_PATH, data=form)
    assert "set-cookie" not in again.headers


def test_claim_from_another_site_is_refused(client) -> None:
    c, opened = client
    refused = c.post(
        session_routes.SESSION_PATH,
        data={"code": opened.claim_code, "next": "/"},
        headers={"origin": "https://elsewhere.example"},
    )
    assert refused.status_code == 403 and "set-cookie" not in refused.headers


def test_signed_out_clears_the_cookie(client) -> None:
    c, _ = client
    response = c.get(session_routes.SIGNED_OUT_PATH)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert 'vru_session=""' in response.headers["set-cookie"]
    assert "Max-Age=0" in response.headers["set-cookie"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/explore?borough=E09000012&freq=quarter", "/explore?borough=E09000012&freq=quarter"),
        ("https://evil.example/explore", "/"),
        ("//evil.example/explore", "/"),
        ("/\\evil.example", "/"),
        ("explore", "/"),
        ("/explore#x", "/explore"),
    ],
)
def test_next_stays_on_this_site(target, expected) -> None:
    assert session_routes.safe_next(target) == expected


def test_handover_escapes_what_it_carries() -> None:
    page = session_routes.handover_html('a"b<c', '/explore?x="><script>')
    assert 'a"b<c' not in page and "<script>alert" not in page
    assert 'value="a&quot;b&lt;c"' in page


def test_the_protocol_client_reads_the_handover() -> None:
    """tests/streamlit_ws.py signs in as a browser by reading this form: keep them in step."""
    page = session_routes.handover_html("c0de&x", "/explore?borough=E09000012&freq=quarter")
    assert handover_form(page) == {
        "code": "c0de&x",
        "next": "/explore?borough=E09000012&freq=quarter",
    }
