"""Plotly figure builders shared by notebooks and the app (never imports streamlit)."""
