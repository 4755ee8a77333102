"""The two HTTP routes that set and clear the session cookie, served by the app's own server.

Why routes: a Streamlit page talks to the browser over a websocket, and page JavaScript cannot set
an HttpOnly cookie; only an HTTP response can. Streamlit (1.67+) serves the app through Starlette
and lets an app add routes with ``st.App(..., routes=...)`` (see ``vru_server.py``, which
``vru serve`` runs). So after the sign-in page has checked the password it sends the browser, by
an auto-submitted form, to ``POST /_vru/session`` with a one-time claim code; the route swaps
the code for the session token (registry/sessions.py), sets the cookie and redirects to the
page the visitor asked for, with its query string. The browser then loads that page afresh with
the cookie, which Streamlit hands every run as ``st.context.cookies``.

Started as plain ``streamlit run streamlit_app.py`` (or under AppTest) the routes are absent:
the sign-in then lasts for the open tab only (the token kept in its server-side session state).

The server also loses one of Streamlit's messages here: a browser's "clear cache"
(:func:`refuse_browser_cache_clearing`).
"""

from __future__ import annotations

import functools
import html
import json
import logging
from urllib.parse import urlsplit

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from streamlit.runtime.app_session import AppSession

from registry import db, sessions
from registry.config import get_settings

log = logging.getLogger("vru.app")

SESSION_PATH = "/_vru/session"
SIGNED_OUT_PATH = "/_vru/signed-out"
# Set by :func:`routes` when the app server mounts them; the sign-in page reads it.
MOUNTED = False


def safe_next(target: str) -> str:
    """``target`` if it is a path on this site (with its query), else ``/``: never an open
    redirect to another host."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or "\\" in target:
        return "/"
    if parts.path.startswith("//"):
        return "/"
    return parts.path + (f"?{parts.query}" if parts.query else "")


def handover_html(claim_code: str, next_path: str) -> str:
    """A form that posts the claim code to the session route at once (a button, should
    JavaScript be off). Rendered by ``st.html`` with JavaScript allowed."""
    code = html.escape(claim_code, quote=True)
    target = html.escape(safe_next(next_path), quote=True)
    return (
        f'<form id="vru-handover" method="post" action="{SESSION_PATH}">'
        f'<input type="hidden" name="code" value="{code}">'
        f'<input type="hidden" name="next" value="{target}">'
        '<button type="submit">Continue</button></form>'
        f"<script>document.getElementById({json.dumps('vru-handover')}).submit();</script>"
    )


def signed_out_html() -> str:
    return f"<script>window.location.replace({json.dumps(SIGNED_OUT_PATH)});</script>"


@functools.cache
def _engine(url: str) -> Engine:
    return db.make_engine(url)


def _same_origin(request: Request) -> bool:
    """A browser's form post from another site names that site in ``Origin``: refuse it (a
    reverse proxy may rename the host, and says so in ``X-Forwarded-Host``)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    hosts = {request.headers.get("host"), request.headers.get("x-forwarded-host")}
    return urlsplit(origin).netloc in hosts - {None}


def _claim(code: str, user_agent: str) -> str | None:
    with db.session_scope(_engine(get_settings().database_url)) as s:
        return sessions.claim(s, code, user_agent=user_agent)


async def take_session(request: Request) -> Response:
    """Swap a claim code for the session cookie, then go where the visitor was going."""
    if not _same_origin(request):
        return PlainTextResponse("Sign in from the registry's own page.", status_code=403)
    form = await request.form()
    code, target = str(form.get("code", "")), safe_next(str(form.get("next", "/")))
    token = await run_in_threadpool(_claim, code, request.headers.get("user-agent", ""))
    response = RedirectResponse(target, status_code=303)
    if token is not None:
        response.set_cookie(
            sessions.COOKIE_NAME,
            sessions.cookie_value(token),
            max_age=get_settings().session_absolute_hours * 3600,
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response


async def signed_out(_request: Request) -> Response:
    """Clear the cookie after the page has ended the session, and go to sign-in."""
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(sessions.COOKIE_NAME, path="/", httponly=True, samesite="lax")
    return response


def routes() -> list[BaseRoute]:
    global MOUNTED
    MOUNTED = True
    return [
        Route(SESSION_PATH, take_session, methods=["POST"]),
        Route(SIGNED_OUT_PATH, signed_out, methods=["GET"]),
    ]


def _refuse_clear_cache_request(self: AppSession) -> None:
    log.warning("Refused a browser's request to clear the server's caches.")


def refuse_browser_cache_clearing() -> None:
    """Make the server ignore a browser's "clear cache" message.

    Streamlit's menu item and ``c`` shortcut send it, and the server obeys any connection,
    signed in or not, emptying every visitor's cached figures and the database engines.
    ``client.toolbarMode = "minimal"`` hides both, but a hand-made websocket message still
    arrives; so the handler itself is replaced. The app never clears its caches: every entry is
    keyed on the data version (``data_state`` in dashboards/common.py).
    """
    if not callable(getattr(AppSession, "_handle_clear_cache_request", None)):
        raise RuntimeError("Streamlit's clear-cache handler moved; update session_routes.py.")
    AppSession._handle_clear_cache_request = _refuse_clear_cache_request  # type: ignore[method-assign]
