"""The neuron-mapping job: store content, resumption after kill -9, Ray parity, several models, CLI."""

from __future__ import annotations


import pandas as pd
import pytest

from interp.jobs.neuron_map import map_model
from interp.store import Store


from helpers.stores import assert_same_store as _assert_same_store, content as _content  # noqa: E402,F401


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
