"""app/ builds no SQL: every store read goes through `interp.store.read` (named in app.state.READS)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

APP = Path(__file__).resolve().parents[3] / "app"
SQL = re.compile(r"\bselect\s|\bfrom\s+features\b|\bwhere\s|\bjoin\s", re.I)


def sql_literals(source: str) -> list[str]:
    """String literals (f-string parts included) in `source` that read like SQL."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            found.append(node.value)
    return found


def sql_calls(source: str) -> list[int]:
    """Lines of `<anything>.sql(...)` calls (`Store.sql` runs SQL text)."""
    return [n.lineno for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "sql"]


def test_the_scanner_finds_sql():
    source = 'q = f"SELECT key FROM results WHERE name = {x}"\nstore.sql(q)\nlabel = "a detector"\n'
    assert sql_literals(source) == ["SELECT key FROM results WHERE name = "]
    assert sql_calls(source) == [2]
    assert sql_literals('"""Features where the token is."""') == ['Features where the token is.']


def test_app_has_no_sql_text_and_runs_no_sql():
    files = sorted(APP.rglob("*.py"))
    assert len(files) >= 10  # Home, state, live and the pages
    offenders = {str(p.relative_to(APP)): hits for p in files
                 if (hits := sql_literals(p.read_text()) + sql_calls(p.read_text()))}
    assert offenders == {}


def test_every_read_the_app_names_is_the_read_api():
    from app import state
    from interp.store import read

    from interp.methods.circuits import store as circuit_store
    from interp.methods.lenses import store as lens_store
    from interp.methods.labels import store as label_store
    from interp.methods.neurons import store as neuron_store
    from interp.methods.steering import store as steering_store
    from interp.methods.steering.strength import suggest_strength

    family_reads = {"clamp_sweeps": neuron_store.clamp_sweeps,  # a family's own store module reads these
                    "attribution_graphs": circuit_store.attribution_graph_table,
                    "attribution_graph_file": circuit_store.attribution_graph_file,
                    "tuned_lens": lens_store.tuned_lens_record,
                    "feature_labels": label_store.feature_labels, "label_agreement": label_store.label_agreement,
                    "steering_run": steering_store.load_run, "suggested_strength": suggest_strength}
    assert set(state.READS) - set(family_reads) <= set(read.__all__)
    assert all(state.READS[name] is family_reads.get(name, getattr(read, name, None)) for name in state.READS)
    used = set()
    for path in APP.rglob("*.py"):
        used |= set(re.findall(r"""query\(\s*["'](\w+)["']""", path.read_text()))
    assert used and used <= set(state.READS)
