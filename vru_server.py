"""The registry's web server: the Streamlit app (streamlit_app.py) plus the two routes that set
and clear the HttpOnly session cookie (dashboards/session_routes.py).

``vru serve`` runs it; so does ``streamlit run vru_server.py`` (Streamlit finds ``app``).
"""

from pathlib import Path

import streamlit as st

from dashboards.session_routes import refuse_browser_cache_clearing, routes

# At start-up, before any browser connects (the app also does it when first imported).
refuse_browser_cache_clearing()
# Beside this file in a checkout and in a wheel (registry/_data/), wherever the server starts.
app = st.App(str(Path(__file__).resolve().parent / "streamlit_app.py"), routes=routes())
