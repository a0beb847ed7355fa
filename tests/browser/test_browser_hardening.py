"""Crafted URLs in a real browser: the dashboard served by `interp app` shows one short error line
for a hostile ``?feature=`` / ``?model=`` (never a traceback, an exception box or a server path),
and `streamlit run app/Home.py` started from the repository root binds to 127.0.0.1 only."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from helpers.app_store import populate
from helpers.browser import open_page, require_browser
from helpers.paths import REPO

pytestmark = pytest.mark.browser

CRAFTED = [
    ("feature?feature=" + urllib.parse.quote("a/" * 100, safe=""), "is not a non-negative integer"),
    ("feature?feature=" + urllib.parse.quote("a" * 300 + "/x/blocks.0.mlp.hook_post/neuron/1", safe=""),
     "internal error (OSError)"),
    ("prompt?model=" + urllib.parse.quote("/etc", safe=""), "is not a model of the registry or of this store"),
    ("prompt?model=" + urllib.parse.quote("/etc/../etc/", safe=""), "is not a model of the registry or of this store"),
]

from helpers.server import free_port as _free_port, stop as _stop, wait_healthy as _wait_healthy  # noqa: E402,F401


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_browser()
    from interp.cli.app import serve

    root = tmp_path_factory.mktemp("browser_hardening_store")
    populate(root, n_layers=1, n_neurons=4, examples=False)
    port = _free_port()
    proc = serve(root, port=port, block=False)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def page(server):
    with open_page(height=1200) as page:
        yield page


@pytest.mark.parametrize("path,text", CRAFTED, ids=["feature-a-slash-x100", "feature-long-name", "model-etc",
                                                    "model-etc-respelled"])
def test_crafted_url_shows_one_short_line(page, server, path, text):
    page.goto(f"{server}/{path}", wait_until="domcontentloaded")
    page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
    try:
        page.get_by_text(text, exact=False).first.wait_for(timeout=60_000)
    except Exception:
        raise AssertionError(f"{text!r} not shown; the page says: {page.locator('body').inner_text()[-1500:]!r}") from None
    page.wait_for_timeout(500)
    assert page.locator('[data-testid="stException"]').count() == 0
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "/work/" not in body and "site-packages" not in body
    alert = page.locator('[data-testid="stAlert"]').filter(has_text=text).first
    assert len(alert.inner_text().strip().splitlines()) == 1


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent; picks the outgoing interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_streamlit_run_from_the_repo_binds_to_localhost(tmp_path):
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to probe")
    port = _free_port()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "INTERP_STORE": str(tmp_path / "store"),
           "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app/Home.py", "--server.port", str(port)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=2).close()
    finally:
        _stop(proc)
