"""Every workflow notebook runs top to bottom on the embedded model (CPU, small budgets)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
TIMEOUT_S = 600  # per notebook; each takes a minute or two on two CPU cores


def test_notebooks_are_built_from_the_generator():
    import importlib.util

    spec = importlib.util.spec_from_file_location("nb_build", NOTEBOOKS[0].parent / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert sorted(f"{name}.ipynb" for name in build.NOTEBOOKS) == [p.name for p in NOTEBOOKS]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(not c.outputs for c in code), f"{path.name} is stored with outputs"
        assert not any("def " in c.source for c in code), f"{path.name} defines functions; they belong in interp"


@pytest.mark.model
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("INTERP_STORE", str(tmp_path / "store"))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}},
                            startup_timeout=120)
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    last = next(c for c in reversed(nb.cells) if c.cell_type == "code")
    assert any(o.output_type in ("execute_result", "display_data") for o in last.outputs), "the last cell shows nothing"
