"""The VRU registry app: sign-in, the shared frame, and navigation over the pages by role."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import dashboards
from dashboards.common import PRINCIPAL_KEY, data_state, demo_banner, md, principal
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

who = principal()
if who is None:
    page = st.navigation(
        [st.Page(ROOT / "dashboards/sign_in.py", title="Sign in", icon=":material/login:")]
    )
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
        if st.button("Sign out", key="sign_out"):
            del st.session_state[PRINCIPAL_KEY]
            if getattr(st.user, "is_logged_in", False):
                st.logout()
            st.rerun()
    _, synthetic = data_state()
    if synthetic:
        demo_banner()

# .streamlit/config.toml sets client.showErrorDetails = "none": an unexpected error shows a
# short notice, never a traceback, and the server log keeps the details.
page.run()
