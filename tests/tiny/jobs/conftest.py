"""One local Ray instance with 2 worker CPUs, shared by every job test of the session (starting
Ray costs seconds); tests that do not ask for it never start it."""

from __future__ import annotations

import os
import random

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


WORDS = ("the cat dog sat on mat ate bone she he said that was a nurse doctor movie great bad acting "
         "capital france paris return main int void and of to in").split()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A text corpus of 80 paragraphs (enough documents for the train and held-out splits)."""
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("corpus") / "docs.txt"
    path.write_text("\n\n".join(" ".join(rng.choice(WORDS) for _ in range(60)) + "." for _ in range(80)))
    return f"text:{path}"
