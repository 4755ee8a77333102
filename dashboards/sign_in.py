"""Sign-in page: registry username and password, or single sign-on where it is configured.

Shown at every address while nobody is signed in, so a shared link (``/explore?borough=...``)
keeps its page and query string, and signing in opens that view.
"""

from __future__ import annotations

import streamlit as st

from dashboards import session_routes
from dashboards.common import SESSION_ENDED_KEY, engine, session, show_error, start_session
from registry import auth


def sso_configured() -> bool:
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, KeyError, OSError):
        return False


def _signed_in(who: auth.Principal) -> None:
    """Open the server-side session; hand the browser its cookie (or keep it in this tab)."""
    with session() as s:
        opened = start_session(s, who)
    if session_routes.MOUNTED:
        st.html(
            session_routes.handover_html(opened.claim_code, st.session_state.get(NEXT_KEY, "/")),
            unsafe_allow_javascript=True,
        )
        st.stop()
    st.rerun()


NEXT_KEY = "_vru_next"  # where the visitor was going: set by streamlit_app.py


def _password_form() -> None:
    with st.form("sign_in"):
        username = st.text_input("Username", key="sign_in_username")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    if not username or not password:
        st.error("Enter your username and password.")
        return
    try:
        who = auth.sign_in(engine(), username=username, password=password)
    except auth.SignInError as exc:
        show_error(exc)
        return
    _signed_in(who)


def _single_sign_on() -> None:
    user = st.user
    if user.get("is_logged_in") and user.get("email"):
        try:
            who = auth.sign_in(
                engine(),
                email=str(user.get("email")),
                email_verified=user.get("email_verified") is True,
            )
        except auth.SignInError as exc:
            show_error(exc)
            st.button("Sign out of single sign-on", on_click=st.logout)
            return
        _signed_in(who)
    st.button("Sign in with single sign-on", on_click=st.login, type="primary")
    st.caption("Or sign in with a registry password:")


def show() -> None:
    st.title("Sign in to the VRU registry")
    ended = st.session_state.pop(SESSION_ENDED_KEY, None)
    if ended:
        st.info(ended)
    st.write(
        "The registry holds programme delivery and crime outcome figures for London's Violence "
        "Reduction Unit. Sign in with the account an administrator gave you."
    )
    if sso_configured():
        _single_sign_on()
    _password_form()
