"""The steps of ``make run`` on the embedded default model, in order.

Each step calls one method's own entry point with a budget sized for a 2-core CPU (about
15 minutes for the whole build on a fresh machine); `Budget.scale` grows every budget.
"""

from __future__ import annotations

from interp.pipeline import Budget, Step


def default_steps() -> list[Step]:
    """Every step of the main job, in the order they run."""
    return []
