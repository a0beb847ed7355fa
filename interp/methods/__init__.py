"""Interpretability methods, one folder per family (neurons, circuits, obsprop, attribution, complexity, lenses, ...).

Each family folder holds one module per method step, a `store.py` (the only code that reads
or writes that family's results in the store) and an `__init__.py` naming its entry points.
Methods never import `interp.jobs`, `interp.viz`, `interp.cli` or `app`.
"""
