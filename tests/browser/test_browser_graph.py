"""Real-browser test of the Circuits page on a stored attribution graph: click a node, pin two
nodes, reload, the pins are still there (they are saved with the graph)."""

from __future__ import annotations


import pytest

from helpers.graphs import F0, F2, IDS, MODEL, store_hand_graph
from helpers.browser import open_page, require_browser
from helpers.paths import REPO
from helpers.server import serving

pytestmark = pytest.mark.browser

SHOTS = REPO / "test-artifacts" / "screenshots"
KEY = "graph-hand"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_browser()
    from interp.store import Store

    store = Store(tmp_path_factory.mktemp("graph_store"))
    store_hand_graph(store, KEY)
    with store.run("interp train", {}) as run:
        store.write("dictionaries", [{"name": f"tc-l{l}", "model": MODEL, "site": f"blocks.{l}.ln2.hook_normalized",
                                      "hook_out": f"blocks.{l}.hook_mlp_out", "kind": "transcoder", "arch": "topk",
                                      "config": {}, "metrics": {}} for l in (0, 1)], run_id=run)
    with serving(store.root) as url:
        yield url, store


@pytest.fixture(scope="module")
def page(server):
    with open_page(height=1800) as page:
        yield page


def _settle(page) -> None:
    page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=60_000)
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    page.wait_for_timeout(1000)


def _pins(page) -> list[str]:
    box = page.get_by_test_id("stMultiSelect").first
    return [t.get_attribute("aria-label") for t in box.locator(".react-aria-ComboBox [data-tag]").all()]


def test_click_a_node_then_pin_two_and_reload(page, server):
    url, store = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{url}/circuits", wait_until="domcontentloaded")
    _settle(page)
    assert page.get_by_text("Incoming edges (1)").count() == 1  # the first node, F0: one edge in
    # Click F2 (third marker of the feature trace): its two incoming edges are listed.
    point = page.locator(".js-plotly-plot .scatterlayer .trace").nth(-2).locator("path.point").nth(2)
    box = point.bounding_box()  # node traces come last: ..., feature, logit
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)  # plotly clicks the hovered point (its drag layer takes the mouse events)
    page.wait_for_timeout(300)
    page.mouse.click(x, y)
    page.get_by_text("Incoming edges (2)").wait_for(timeout=30_000)
    for nid in (IDS[F0], IDS[F2]):
        box = page.get_by_test_id("stMultiSelect").first
        box.click()
        page.keyboard.type(nid)
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        _settle(page)
    page.screenshot(path=str(SHOTS / "circuits_graph_pinned.png"))
    from interp.methods.circuits.store import load_attribution_graph

    assert load_attribution_graph(store, KEY).qparams["pinnedIds"] == [IDS[F0], IDS[F2]]
    page.reload(wait_until="domcontentloaded")
    _settle(page)
    page.screenshot(path=str(SHOTS / "circuits_graph_reloaded.png"))
    pins = _pins(page)
    assert len(pins) == 2 and IDS[F0] in pins[0] and IDS[F2] in pins[1], pins
    page.get_by_text("Subgraph of the pinned nodes").wait_for(timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
