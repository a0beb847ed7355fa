"""Real-browser smoke test: serve the dashboard on a free localhost port over a populated
store, visit every page in headless Chromium (Debian's, driven by Playwright), check that
the expected elements render and that no exception box appears; a screenshot per page goes
to test-artifacts/screenshots/."""

from __future__ import annotations

import socket
import time
import urllib.parse
import urllib.request

import pytest

from helpers.app_store import LATENT, TOP_NEURON, populate
from helpers.browser import open_page, require_browser
from helpers.paths import REPO

pytestmark = pytest.mark.browser

SHOTS = REPO / "test-artifacts" / "screenshots"

# (url path, screenshot name, text that must appear - one the page writes late -, plotly charts drawn at least)
PAGES = [
    ("", "overview", "Provenance of run", 0),  # the default page lives at the root
    ("search", "search", "matching features", 0),
    ("search?token=Paris", "search_token", "matching features", 0),
    ("feature?feature=" + urllib.parse.quote(TOP_NEURON.key, safe=""), "feature_neuron", "top tokens", 0),
    ("feature?feature=" + urllib.parse.quote(LATENT.key, safe=""), "feature_transcoder", "top tokens", 0),
    ("feature?feature=not%2Fa%2Fkey", "feature_bad_key", "is not 'model/source/site/kind/index'", 0),
    ("prompt?model=no-such-model", "prompt_missing_model", "could not be loaded", 0),
    ("neurons", "neurons", "Most specialised neurons", 2),
    ("dictionaries", "dictionaries", "latents of tc-l2 with dashboards", 2),
    ("obsprop", "obsprop", "Component ranking", 2),
    ("attribution", "attribution", "Faithfulness", 3),
    ("complexity", "complexity", "Feature complexity", 3),
    ("circuits", "circuits", "Nodes by |influence|", 1),
]

from helpers.server import free_port as _free_port, stop as _stop, wait_healthy as _wait_healthy  # noqa: E402,F401


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_browser()
    from interp.cli.app import serve

    root = tmp_path_factory.mktemp("browser_store")
    populate(root)
    port = _free_port()
    proc = serve(root, port=port, block=False)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except Exception:
            proc.kill()


@pytest.fixture(scope="module")
def page(server):
    with open_page(height=1800) as page:
        yield page


def _settle(page) -> None:
    """Wait until Streamlit has finished running the page script."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=60_000)
    # data frames load their grid lazily: wait until every visible one has drawn its canvas
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"stDataFrame\"]')]"
        ".filter(e => e.offsetParent !== null).every(e => e.querySelector('canvas'))",
        timeout=60_000)
    page.wait_for_timeout(1000)


@pytest.mark.parametrize("path,name,text,charts", PAGES, ids=[p[1] for p in PAGES])
def test_page_renders(page, server, path, name, text, charts):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{server}/{path}", wait_until="domcontentloaded")
    _settle(page)
    page.get_by_text(text, exact=False).first.wait_for(timeout=60_000)
    if charts:
        page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot').length >= {charts}",
                               timeout=60_000)
    page.screenshot(path=str(SHOTS / f"{name}.png"))  # full_page re-lays out and blanks the grids
    assert page.get_by_text("Page not found").count() == 0, f"{path}: not a page of the app"
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, f"{path}: exception box shown: {errors.first.inner_text()[:500]}"
    # the navigation lists every page
    assert page.locator('[data-testid="stSidebarNav"]').get_by_text("Feature search").count() >= 1


def test_search_links_to_feature_page(page, server):
    page.goto(f"{server}/search?token=Paris", wait_until="domcontentloaded")
    _settle(page)
    page.get_by_text("matching features").first.wait_for(timeout=60_000)
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.wait_for(timeout=30_000)
    assert grid.is_visible()
    page.goto(f"{server}/feature?feature={urllib.parse.quote(TOP_NEURON.key, safe='')}", wait_until="domcontentloaded")
    _settle(page)
    page.get_by_role("tab", name="Top contexts").click()
    page.wait_for_timeout(500)
    # the escaped "<script>" token is shown as text, never run as markup
    assert page.locator("span", has_text="<script>").count() >= 1
    page.screenshot(path=str(SHOTS / "feature_contexts.png"))  # full_page re-lays out and blanks the grids
