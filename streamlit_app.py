"""The VRU registry app: sign-in, the shared frame, and navigation over the pages by role."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import streamlit as st

import dashboards
from dashboards import session_routes, sign_in
from dashboards.common import data_state, demo_banner, end_session, md, resolve_principal
from registry.auth import allowed

# Page paths are relative to the folder holding the ``dashboards`` package: the repository in a
# source checkout, site-packages in a wheel (which carries this file under registry/_data).
ROOT = Path(dashboards.__file__).resolve().parent.parent

st.set_page_config(page_title="VRU registry", page_icon=":material/diversity_3:", layout="wide")

PAGES: dict[str, list[tuple[str, str, str, str | None]]] = {
    # section -> (file, title, icon, permission needed)
    "Registry": [("dashboards/home.py", "Home", ":material/home:", None)],
    "Explore": [
        ("dashboards/overview.py", "Overview", ":material/dashboard:", "outcomes.read"),
        ("dashboards/explore.py", "Explore", ":material/explore:", "outcomes.read"),
        ("dashboards/models.py", "Models", ":material/query_stats:", "models.run"),
    ],
    "Data entry": [
        ("dashboards/entry.py", "Record deliveries", ":material/edit_note:", "deliveries.write"),
        ("dashboards/programmes.py", "Programmes", ":material/category:", "deliveries.read"),
        (
            "dashboards/completeness.py",
            "Returns and sign-off",
            ":material/fact_check:",
            "deliveries.read",
        ),
    ],
    "Downloads": [
        ("dashboards/downloads.py", "Downloads", ":material/download:", "reports.read"),
    ],
    "Administration": [
        ("dashboards/outcome_data.py", "Outcome data", ":material/upload_file:", "outcomes.import"),
        ("dashboards/users.py", "Users", ":material/manage_accounts:", "users.manage"),
        ("dashboards/audit_log.py", "Audit trail", ":material/history:", "audit.read"),
    ],
}

who = resolve_principal()
if who is None:
    # The sign-in form answers at every page's address, so a shared link keeps its page and
    # query string; signing in then opens that view (dashboards/sign_in.py).
    addresses = [
        st.Page(sign_in.show, title="Sign in", url_path=Path(path).stem)
        for pages in PAGES.values()
        for path, *_ in pages
    ]
    page = st.navigation(
        [st.Page(sign_in.show, title="Sign in", icon=":material/login:", default=True), *addresses],
        position="hidden",
    )
    query = urlencode([(k, v) for k in st.query_params for v in st.query_params.get_all(k)])
    st.session_state[sign_in.NEXT_KEY] = f"/{page.url_path}" + (f"?{query}" if query else "")
else:
    sections = {
        section: [
            st.Page(ROOT / path, title=title, icon=icon, default=(path == "dashboards/home.py"))
            for path, title, icon, permission in pages
            if permission is None or allowed(who, permission)
        ]
        for section, pages in PAGES.items()
    }
    page = st.navigation({section: pages for section, pages in sections.items() if pages})
    with st.sidebar:
        st.write(f"Signed in as **{md(who.username)}** ({who.role})")
        this_browser = st.button("Sign out", key="sign_out", help="Every tab of this browser.")
        everywhere = st.button(
            "Sign out everywhere", key="sign_out_everywhere", help="Every browser you use."
        )
        if this_browser or everywhere:
            end_session(everywhere=everywhere)
            if getattr(st.user, "is_logged_in", False):
                st.logout()
            if session_routes.MOUNTED:  # clear the cookie too
                st.html(session_routes.signed_out_html(), unsafe_allow_javascript=True)
                st.stop()
            st.rerun()
    if data_state().synthetic:
        demo_banner()

# .streamlit/config.toml sets client.showErrorDetails = "none": an unexpected error shows a
# short notice, never a traceback, and the server log keeps the details.
page.run()
