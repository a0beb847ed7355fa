"""Real-browser test of the Prompt page's lens view: a tiny llama reads a prompt and the page
draws the logit-lens grid - one row per layer (embeddings included), one column per token, each
cell the lens's top token - the same grid the library computes for that prompt."""

from __future__ import annotations

import html
import urllib.parse

import pytest

from helpers.browser import open_page, require_browser, settle
from helpers.paths import REPO
from helpers.server import serving
from helpers.tiny import save_tiny_model

pytestmark = pytest.mark.browser

SHOTS = REPO / "test-artifacts" / "screenshots"
PROMPT = "The cat sat on the mat"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The dashboard over a store that knows a tiny llama (so the Prompt page may load it)."""
    require_browser()
    from interp.models import load_model
    from interp.store import Store

    model_dir = save_tiny_model(tmp_path_factory.mktemp("tiny") / "llama", "llama")
    adapter = load_model(str(model_dir))
    store = Store(tmp_path_factory.mktemp("lens_browser_store"))
    with store.run("test", {}) as run:
        adapter.record(store, run)
    with serving(store.root) as url:
        yield url, adapter, model_dir


def test_prompt_page_draws_the_logit_lens_grid(served):
    from app.live import lens
    from interp.viz.lenses import lens_heatmap

    url, adapter, model_dir = served
    grid = lens(adapter, PROMPT)
    expected = lens_heatmap(grid).data[0]
    n_rows, n_pos = len(grid.labels), len(grid.tokens)
    assert n_rows == adapter.info.n_layers + 1  # embeddings, then every layer
    query = urllib.parse.urlencode({"model": str(model_dir), "prompt": PROMPT, "view": "Lens"})
    with open_page() as page:
        page.goto(f"{url}/prompt?{query}", wait_until="domcontentloaded")
        page.get_by_text("Cell text: the lens's top token").first.wait_for(timeout=240_000)  # model loaded, run
        settle(page)
        chart = page.locator(".js-plotly-plot").first
        chart.wait_for(timeout=60_000)
        page.wait_for_function("() => document.querySelector('.js-plotly-plot .hm, .js-plotly-plot image')",
                               timeout=60_000)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "prompt_lens.png"))
        errors = page.locator('[data-testid="stException"]')
        assert errors.count() == 0, errors.first.inner_text()[:500]
        drawn = chart.evaluate("gd => ({type: gd.data[0].type, y: gd.data[0].y, x: gd.data[0].x, "
                               "text: gd.data[0].text})")
        svg_texts = "els => els.map(e => e.textContent)"  # SVG text has no innerText
        rows = chart.locator(".yaxislayer-above .ytick text").evaluate_all(svg_texts)
        cells = chart.locator(".heatmaplayer text").evaluate_all(svg_texts)
        layer_html = chart.locator(".heatmaplayer").first.evaluate("e => e.outerHTML.slice(0, 1500)")
    assert drawn["type"] == "heatmap"
    assert [str(y) for y in drawn["y"]] == [str(y) for y in expected.y]
    assert sorted(set(rows)) == sorted(str(y) for y in expected.y), rows  # one drawn row per layer
    assert list(drawn["x"]) == list(expected.x) and len(drawn["x"]) == n_pos
    assert [list(row) for row in drawn["text"]] == [list(row) for row in expected.text]
    # every cell carries its top token as text; the model's own prediction at the last position among them
    assert len(cells) == n_rows * n_pos and html.unescape(expected.text[-1][-1]) in cells, (cells, layer_html)
