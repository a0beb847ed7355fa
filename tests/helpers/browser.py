"""Headless Chromium for the browser tier: Debian's build, driven by Playwright.

`make test` runs `make browser` first, which installs Debian's chromium when it is missing and
apt is usable as root; only where neither holds (a non-root machine without it) does the
browser tier skip, with the reason printed by both `make browser` and the skip below.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_browser() -> None:
    """Skip (naming what is missing) unless Chromium and Playwright are both available."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"Chromium is not installed at {CHROMIUM}: `make browser` installs it as root "
                    f"(apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


@contextmanager
def open_page(width: int = 1400, height: int = 1800):
    """A fresh page in headless Chromium, closed with the browser on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield browser.new_context(viewport={"width": width, "height": height}).new_page()
        finally:
            browser.close()


def settle(page, timeout_ms: int = 120_000) -> None:
    """Wait until Streamlit has finished running the page script and every visible data frame
    has drawn its grid (they load lazily)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=timeout_ms)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"stDataFrame\"]')]"
        ".filter(e => e.offsetParent !== null).every(e => e.querySelector('canvas'))",
        timeout=60_000)
    page.wait_for_timeout(500)
