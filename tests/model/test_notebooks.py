"""Every workflow notebook runs top to bottom on the embedded model (CPU, small budgets)."""

from __future__ import annotations


import nbformat
import pytest
from helpers.paths import REPO


NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


NOTEBOOK_TIMEOUT_S = 900  # whole notebook; each takes one to three minutes on two idle CPU cores


CELL_TIMEOUT_S = 600


async def _execute_within(client, seconds: float) -> bool:
    """Run the notebook; False (kernel shut down) if it takes longer than `seconds`."""
    import asyncio
    import contextlib

    task = asyncio.ensure_future(client.async_execute())
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        with contextlib.suppress(BaseException):  # the cancelled run reports a dead kernel
            await task
        return False
    task.result()  # re-raise a cell error
    return True


@pytest.mark.model
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    import asyncio

    from nbclient import NotebookClient

    monkeypatch.setenv("INTERP_STORE", str(tmp_path / "store"))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", startup_timeout=120,
                            resources={"metadata": {"path": str(tmp_path)}})
    if not asyncio.run(_execute_within(client, NOTEBOOK_TIMEOUT_S)):
        pytest.fail(f"{path.name} did not finish within {NOTEBOOK_TIMEOUT_S} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    last = next(c for c in reversed(nb.cells) if c.cell_type == "code")
    assert any(o.output_type in ("execute_result", "display_data") for o in last.outputs), "the last cell shows nothing"
