"""Streamlit pages. Each page reads widgets, calls registry functions and draws the result."""
