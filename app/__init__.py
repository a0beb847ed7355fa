"""The interp dashboard (Streamlit): `interp app` serves `app/Home.py`."""
