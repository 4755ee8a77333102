"""Sign-in page: registry username and password, or single sign-on where it is configured."""

from __future__ import annotations

import streamlit as st

from dashboards.common import PRINCIPAL_KEY, engine, show_error
from registry import auth


def sso_configured() -> bool:
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, KeyError, OSError):
        return False


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
    st.session_state[PRINCIPAL_KEY] = who
    st.rerun()


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
        st.session_state[PRINCIPAL_KEY] = who
        st.rerun()
    st.button("Sign in with single sign-on", on_click=st.login, type="primary")
    st.caption("Or sign in with a registry password:")


st.title("Sign in to the VRU registry")
st.write(
    "The registry holds programme delivery and crime outcome figures for London's Violence "
    "Reduction Unit. Sign in with the account an administrator gave you."
)
if sso_configured():
    _single_sign_on()
_password_form()
