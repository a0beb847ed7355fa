"""The neuron-mapping job: store content, resumption after kill -9, Ray parity, several models, CLI."""

from __future__ import annotations


import pandas as pd
import pytest

from interp.jobs.neuron_map import map_model
from interp.store import Store


def _content(store: Store, table: str) -> pd.DataFrame:
    """A table's rows without provenance, in a canonical order."""
    frame = store.read(table).drop(columns=["run_id"])
    return frame.sort_values(list(frame.columns[:10])).reset_index(drop=True)


def _assert_same_store(a: Store, b: Store, exact: bool = True) -> None:
    for table in ("feature_tokens", "features"):
        x, y = _content(a, table), _content(b, table)
        if exact:
            pd.testing.assert_frame_equal(x, y)
        else:
            pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-5)
    keys = lambda s: sorted(s.read("results", where={"name": "neuron_map"})["key"])  # noqa: E731
    assert keys(a) == keys(b)


@pytest.mark.heavy
def test_ray_backend_equals_local_backend(tmp_path, tiny_dirs):
    ray = pytest.importorskip("ray")
    model = str(tiny_dirs["llama"])
    local, distributed = Store(tmp_path / "local"), Store(tmp_path / "ray")
    map_model(local, model, directions=("up", "down"), top_k=3, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = map_model(distributed, model, directions=("up", "down"), top_k=3, backend="ray", progress=False)
    finally:
        ray.shutdown()
    assert summary.mapped == {"llama": [0, 1]}
    _assert_same_store(local, distributed, exact=False)
