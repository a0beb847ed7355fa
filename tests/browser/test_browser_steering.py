"""Real-browser test of steering: open a feature, follow its steer link, steer a tiny model; the
steered continuation differs from the default, and over 5 seeds it samples one of the feature's
top tokens more often than the default does."""

from __future__ import annotations

import urllib.parse

import pytest

from helpers.browser import open_page, require_browser
from helpers.paths import REPO
from helpers.server import free_port, stop, wait_healthy
from helpers.tiny import save_tiny_model

pytestmark = pytest.mark.browser

SHOTS = REPO / "test-artifacts" / "screenshots"
NEURON_SITE, NEURON_INDEX = "blocks.1.mlp.hook_post", 5
MAX_ACT = 7.5
"""Stored activation scale: the steer box suggests 8 x 7.5 = 60, a strength that shows the neuron's tokens."""
HIT, MISS = "samples a concept token", "no concept token sampled"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_browser()
    from interp.cli.app import serve
    from interp.features import FeatureId
    from interp.models import load_model
    from interp.store import Store

    model_dir = save_tiny_model(tmp_path_factory.mktemp("tiny") / "llama", "llama")
    store = Store(tmp_path_factory.mktemp("steer_browser_store"))
    fid = FeatureId("llama", NEURON_SITE, "neuron", NEURON_INDEX)
    with store.run("test", {}) as run:
        load_model(str(model_dir)).record(store, run)
        store.write("features", [{**fid.to_record(), "label": "tiny neuron", "max_act": MAX_ACT}], run_id=run)
    port = free_port()
    proc = serve(store.root, port=port, block=False)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}", fid, model_dir
    finally:
        stop(proc)


def _settle(page) -> None:
    page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=120_000)
    page.wait_for_timeout(500)


def _steer(page, seed: int) -> tuple[list[str], list[bool]]:
    """Submit the form with `seed`; the continuations (default first) and whether each samples a concept token."""
    seed_box = page.get_by_label("Seed", exact=True)
    seed_box.fill(str(seed))
    seed_box.press("Tab")
    page.get_by_role("button", name="Steer").click()
    page.get_by_text(f"seed {seed} - the same for every continuation").first.wait_for(timeout=120_000)
    _settle(page)
    # code blocks load their renderer lazily (a skeleton first)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stCode\"]').length >= 3", timeout=60_000)
    texts = [c.inner_text() for c in page.locator('[data-testid="stCode"]').all()]
    flags = page.get_by_text(HIT).or_(page.get_by_text(MISS)).all()
    return texts, [f.inner_text() == HIT for f in flags]


def test_feature_steer_link_and_five_seeds(server):
    url, fid, model_dir = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    with open_page(height=2200) as page:
        page.goto(f"{url}/feature?feature={urllib.parse.quote(fid.key, safe='')}", wait_until="domcontentloaded")
        _settle(page)
        page.get_by_text("suggested strength").first.wait_for(timeout=60_000)
        with page.context.expect_page(timeout=60_000) as opened:  # markdown links open a new tab
            page.get_by_role("link", name="Steer this feature").click()
        page = opened.value
        page.wait_for_load_state("domcontentloaded")
        assert "/steering?" in page.url, page.url
        _settle(page)
        page.get_by_label("Directions, one per line", exact=True).wait_for(timeout=60_000)
        assert page.get_by_label("Directions, one per line", exact=True).input_value() == f"{fid.key}=60"
        page.get_by_label("Model", exact=True).fill(str(model_dir))
        page.get_by_label("Prompt", exact=True).fill("The cat")
        page.get_by_label("Max tokens", exact=True).fill("8")
        default_hits = steered_hits = 0
        for seed in range(5):
            texts, hits = _steer(page, seed)
            assert len(texts) == 3 and len(hits) == 3, (texts, hits)  # default, frozen, live
            assert texts[1] != texts[0] and texts[2] != texts[0]
            default_hits += hits[0]
            steered_hits += hits[2]
        page.screenshot(path=str(SHOTS / "steering.png"))
        assert page.locator('[data-testid="stException"]').count() == 0
    assert steered_hits > default_hits, (steered_hits, default_hits)
