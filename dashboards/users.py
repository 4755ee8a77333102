"""Users (admins only): add users, change roles, disable accounts, reset passwords."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from dashboards.common import attempt, current_principal, session
from registry import auth
from registry.schema import ROLES

st.title("Users")
who = current_principal()

with session() as s:
    users = attempt(lambda: auth.list_users(s, principal=who))
if users is None:
    st.stop()

st.dataframe(pd.DataFrame(users), hide_index=True, width="stretch")
names = [str(u["username"]) for u in users]


def _do(action: str, fn: Callable[[Session], object]) -> None:
    def run() -> bool:
        with session() as s:
            fn(s)
        return True

    if attempt(run):
        st.success(action)


with st.expander("Add a user", expanded=not users), st.form("add_user", clear_on_submit=True):
    username = st.text_input("Username", key="add_username")
    role = st.selectbox("Role", ROLES, key="add_role")
    funder = st.text_input("Funder (funder accounts only)", key="add_funder")
    email = st.text_input("Email for single sign-on (optional)", key="add_email")
    password = st.text_input(
        "Password (10 or more characters, not a common one)", type="password", key="add_password"
    )
    if st.form_submit_button("Add user", type="primary"):
        _do(
            f"Added {username}.",
            lambda s: auth.add_user(
                s,
                principal=who,
                username=username,
                role=role,
                funder=funder or None,
                email=email or None,
                password=password or None,
            ),
        )

if names:
    with st.expander("Change a user"):
        target = st.selectbox("User", names, key="change_user")
        new_role = st.selectbox("New role", ROLES, key="change_role")
        new_funder = st.text_input("Funder (for the funder role)", key="change_funder")
        c1, c2, c3 = st.columns(3)
        if c1.button("Set role", key="set_role"):
            _do(
                f"{target} is now {new_role}.",
                lambda s: auth.set_role(
                    s, principal=who, username=target, role=new_role, funder=new_funder or None
                ),
            )
        if c2.button("Disable", key="disable_user"):
            _do(
                f"{target} is disabled.",
                lambda s: auth.set_disabled(s, principal=who, username=target, disabled=True),
            )
        if c3.button("Enable", key="enable_user"):
            _do(
                f"{target} is enabled.",
                lambda s: auth.set_disabled(s, principal=who, username=target, disabled=False),
            )
        new_password = st.text_input("New password", type="password", key="reset_password")
        if st.button("Reset password", key="reset_password_button"):
            _do(
                f"Password for {target} reset.",
                lambda s: auth.reset_password(
                    s, principal=who, username=target, password=new_password
                ),
            )
