"""The import graph of `interp/` has no circle and no forbidden direction (issue 13).

Every module under `interp/` is parsed with `ast` (imports inside functions included, relative
imports resolved). `from interp.x import y` is an edge to `interp.x.y` when that is a module,
else to `interp.x`.

Package `__init__` files: an `__init__` counts as its own module, but its imports of its own
submodules are re-exports, not dependencies, so they add no edge (importing `interp.a.b`
runs `interp/a/__init__.py` first anyway). A name that a module takes from a package which
re-exports it (`from interp.methods.obsprop import ObsPropConfig`) is followed to the
submodule that defines it, so two siblings that reach each other through their package are
still caught as a circle.

A package that loads names lazily (a module-level ``_LAZY`` dict, name -> submodule, read by its
``__getattr__``) is treated the same way: such a name is followed to its submodule.

Forbidden directions: interp.methods.* -> interp.jobs / interp.viz / interp.cli / app;
interp.store.* -> interp.methods.*; interp.* -> app; interp.* -> streamlit.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "interp"

FORBIDDEN = [  # (importer prefix, imported prefix)
    ("interp.methods", "interp.jobs"), ("interp.methods", "interp.viz"), ("interp.methods", "interp.cli"),
    ("interp.methods", "app"), ("interp.store", "interp.methods"), ("interp", "app"), ("interp", "streamlit"),
]


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the package (`__init__` -> the package)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path, name: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """(base module, imported names) for every import in the file; `import a.b` gives ("a.b", [])."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.append((base, [alias.name for alias in node.names]))
    return found


def _lazy_names(path: Path, pkg: str) -> dict[str, str]:
    """Names a package loads lazily (a module-level ``_LAZY = {"name": "submodule"}``) -> their submodule."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_LAZY" for t in node.targets):
            value = ast.literal_eval(node.value)
            return {name: f"{pkg}.{sub}" for name, sub in value.items()}
    return {}


def import_graph(package: Path = PACKAGE) -> tuple[dict[str, set[str]], dict[str, Path]]:
    """Edges module -> imported modules (interp modules, plus the top names of outside ones)."""
    files = module_files(package)
    packages = {n for n, p in files.items() if p.name == "__init__.py"}
    parsed = {n: _imports(p, n, n in packages) for n, p in files.items()}
    reexports: dict[str, dict[str, str]] = {}  # package -> name -> defining submodule
    for pkg in packages:
        for base, names in parsed[pkg]:
            if _under(base, pkg) and base != pkg and base in files:
                reexports.setdefault(pkg, {}).update({n: base for n in names})
        reexports.setdefault(pkg, {}).update(_lazy_names(files[pkg], pkg))
    graph: dict[str, set[str]] = {n: set() for n in files}
    for mod, imports in parsed.items():
        for base, names in imports:
            targets = set()
            if not names:
                targets.add(base)
            for n in names:
                sub = f"{base}.{n}"
                targets.add(sub if sub in files else reexports.get(base, {}).get(n, base))
            for target in targets:
                if target in files or not _under(target, package.name):
                    if mod in packages and _under(target, mod) and target != mod:
                        continue  # a package re-exporting its own submodule
                    if target != mod:
                        graph[mod].add(target if target in files else target.split(".")[0])
    return graph, files


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter[0]; counter[0] += 1
        stack.append(start); on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        top = stack.pop(); on_stack.discard(top); comp.append(top)
                        if top == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
            elif child not in graph:
                continue
            elif child not in index:
                index[child] = low[child] = counter[0]; counter[0] += 1
                stack.append(child); on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return out


def forbidden_edges(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a, targets in graph.items() for b in targets
                  for src, dst in FORBIDDEN if _under(a, src) and _under(b, dst))


def test_checker_finds_a_circle_and_a_forbidden_edge():
    graph = {"interp.a": {"interp.b"}, "interp.b": {"interp.c"}, "interp.c": {"interp.a"},
             "interp.methods.x": {"interp.jobs.y", "torch"}, "interp.jobs.y": set(), "interp.store.s": {"interp.methods.x"}}
    assert circles(graph) == [["interp.a", "interp.b", "interp.c"]]
    assert forbidden_edges(graph) == [("interp.methods.x", "interp.jobs.y"), ("interp.store.s", "interp.methods.x")]
    assert circles({"interp.a": {"interp.b"}, "interp.b": set()}) == []


def test_checker_resolves_relative_and_reexported_imports(tmp_path):
    pkg = tmp_path / "interp"
    (pkg / "fam").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "fam" / "__init__.py").write_text("from interp.fam.one import f\nfrom .two import g\n")
    (pkg / "fam" / "one.py").write_text("def f():\n    from interp.fam import g\n")
    (pkg / "fam" / "two.py").write_text("from . import one\nimport streamlit\n")
    (pkg / "lazy").mkdir()
    (pkg / "lazy" / "__init__.py").write_text("_LAZY = {'h': 'impl'}\n")
    (pkg / "lazy" / "impl.py").write_text("from interp.fam import f\n")
    (pkg / "user.py").write_text("from interp.lazy import h\nfrom interp import lazy\n")
    graph, _ = import_graph(pkg)
    assert graph["interp.fam"] == set()  # re-exports only
    assert graph["interp.fam.one"] == {"interp.fam.two"}  # followed through the package
    assert graph["interp.fam.two"] == {"interp.fam.one", "streamlit"}
    assert graph["interp.user"] == {"interp.lazy.impl", "interp.lazy"}  # lazy name followed; `from interp import lazy`
    assert graph["interp.lazy.impl"] == {"interp.fam.one"}
    assert circles(graph) == [["interp.fam.one", "interp.fam.two"]]
    assert forbidden_edges(graph) == [("interp.fam.two", "streamlit")]


def test_interp_has_no_import_circle():
    graph, files = import_graph()
    assert len(files) > 50 and any(graph.values())
    found = circles(graph)
    assert not found, "import circles in interp/:\n" + "\n".join(
        " <-> ".join(str(files[m].relative_to(ROOT)) for m in comp) for comp in found)


def test_interp_has_no_forbidden_import():
    graph, files = import_graph()
    bad = forbidden_edges(graph)
    assert not bad, "forbidden imports in interp/:\n" + "\n".join(
        f"{files[a].relative_to(ROOT)} imports {b}" for a, b in bad)
