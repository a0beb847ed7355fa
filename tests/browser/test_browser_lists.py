"""A feature list in a real browser: add a feature to a new list on its page, reload, open the
list by its link (?list=NAME) and find the feature there."""

from __future__ import annotations

import urllib.parse

import pytest

from helpers.app_store import MODEL, populate
from helpers.browser import open_page, require_browser
from helpers.server import serving
from interp.features import FeatureId

pytestmark = pytest.mark.browser

NEURON = FeatureId(MODEL, "blocks.0.mlp.hook_post", "neuron", 2)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_browser()
    root = tmp_path_factory.mktemp("browser_lists_store")
    populate(root, n_layers=1, n_neurons=4, examples=False)
    with serving(root) as url:
        yield url


def _settle(page) -> None:
    page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=60_000)
    page.wait_for_timeout(1000)


def test_a_feature_added_to_a_list_is_there_after_a_reload(server):
    with open_page() as page:
        page.goto(f"{server}/feature?feature={urllib.parse.quote(NEURON.key, safe='')}",
                  wait_until="domcontentloaded")
        _settle(page)
        page.get_by_text("Add to a list").first.click(timeout=90_000)
        page.get_by_label("New list name").fill("browser picks")
        page.get_by_label("Note").fill("seen in chromium")
        page.get_by_role("button", name="Add to list").click()
        page.get_by_text("Added to list").first.wait_for(timeout=60_000)

        page.goto(f"{server}/lists?list={urllib.parse.quote('browser picks')}", wait_until="domcontentloaded")
        _settle(page)
        page.reload(wait_until="domcontentloaded")
        _settle(page)
        page.get_by_text("features on list").first.wait_for(timeout=60_000)
        summary = page.get_by_text("features on list").first.inner_text()
        assert summary.startswith("1 features on list browser picks"), summary
        page.get_by_text("Download CSV").first.wait_for(timeout=30_000)
        assert page.locator('[data-testid="stException"]').count() == 0
