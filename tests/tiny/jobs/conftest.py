"""One local Ray instance with 2 worker CPUs, shared by every job test of the session (starting
Ray costs seconds); tests that do not ask for it never start it."""

from __future__ import annotations

import os

import pytest

from helpers.paths import REPO


@pytest.fixture(scope="session")
def ray_local():
    ray = pytest.importorskip("ray")
    # Workers import interp from this checkout, and the test-only jobs from tests/helpers.
    path = os.pathsep.join([str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20,
             runtime_env={"env_vars": {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}})
    yield ray
    ray.shutdown()
