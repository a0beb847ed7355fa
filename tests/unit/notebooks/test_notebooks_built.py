"""Every workflow notebook runs top to bottom on the embedded model (CPU, small budgets)."""

from __future__ import annotations


import nbformat
from helpers.paths import REPO


NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_notebooks_are_built_from_the_generator():
    import importlib.util

    spec = importlib.util.spec_from_file_location("nb_build", NOTEBOOKS[0].parent / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    ours = [NOTEBOOKS[0].parent / f"{name}.ipynb" for name in build.NOTEBOOKS]
    assert set(ours) == set(NOTEBOOKS), "every notebook (circuits.ipynb included) comes from notebooks/build.py"
    assert "circuits" in build.NOTEBOOKS
    for path in ours:
        nb = nbformat.read(path, as_version=4)
        assert [c.source for c in nb.cells] == build.NOTEBOOKS[path.stem], f"{path.name}: rerun notebooks/build.py"
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(not c.outputs for c in code), f"{path.name} is stored with outputs"
        assert not any("def " in c.source for c in code), f"{path.name} defines functions; they belong in interp"


def test_every_code_cell_is_python():
    """A prose line stored as a code cell (no markdown heading) would fail only when executed."""
    import ast

    for path in NOTEBOOKS:
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "code":
                lines = [ln for ln in cell.source.split("\n") if not ln.lstrip().startswith(("%", "!"))]
                try:
                    ast.parse("\n".join(lines))
                except SyntaxError as exc:
                    raise AssertionError(f"{path.name} cell {i} is not Python ({exc.msg}): {cell.source[:60]!r}")
