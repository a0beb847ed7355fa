"""Starting and stopping the dashboard server for the browser tests."""

from __future__ import annotations

import socket
import subprocess
from contextlib import contextmanager
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc, timeout: float = 90.0) -> None:
    """Wait for Streamlit's health endpoint; fail with the reason when the server exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the dashboard server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"the dashboard did not answer at {url} within {timeout:.0f}s")


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextmanager
def serving(root):
    """The dashboard served over store `root` on a free localhost port: yields its URL, stops it on exit."""
    from interp.cli.app import serve

    port = free_port()
    proc = serve(root, port=port, block=False)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
