"""``interp app``: serve the dashboard (Streamlit) over a feature store.

Binds to 127.0.0.1 unless ``--host`` names another address; the store root reaches the
app through ``$INTERP_STORE``. `serve` is the same thing as a function, for pipelines.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from interp.paths import store_dir

APP_ENTRY = Path(__file__).resolve().parent.parent.parent / "app" / "Home.py"
STORE_ENV = "INTERP_STORE"  # read by app/state.py
DEFAULT_PORT = 8501
LOCALHOST = "127.0.0.1"


def command(port: int = DEFAULT_PORT, host: str = LOCALHOST) -> list[str]:
    """The `streamlit run` command line, headless, telemetry off, no file watcher, no tracebacks in the browser."""
    if not 0 < int(port) < 65536:
        raise ValueError(f"port must be between 1 and 65535, got {port}")
    if not host:
        raise ValueError("host must be an address such as 127.0.0.1 (localhost) or 0.0.0.0 (every interface)")
    return [
        sys.executable, "-m", "streamlit", "run", str(APP_ENTRY),
        "--server.headless", "true", "--server.port", str(int(port)), "--server.address", host,
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--global.developmentMode", "false", "--client.toolbarMode", "minimal",
        "--client.showErrorDetails", "none",  # tracebacks stay in the server log (see .streamlit/config.toml)
    ]


def serve(store_root: str | os.PathLike | None = None, port: int = DEFAULT_PORT, host: str = LOCALHOST,
          block: bool = True) -> subprocess.Popen | int:
    """Serve the dashboard for the store at `store_root` (default `interp.paths.store_dir()`).

    With `block=True` runs until the server exits (Ctrl-C stops it) and returns its exit
    code; with `block=False` returns the running `subprocess.Popen` (the caller stops it).
    """
    if not APP_ENTRY.is_file():
        raise FileNotFoundError(f"dashboard entry {APP_ENTRY} is missing; interp app needs a source checkout")
    root = Path(store_root).expanduser().resolve() if store_root is not None else store_dir()
    env = dict(os.environ, **{STORE_ENV: str(root)})
    repo = str(APP_ENTRY.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([repo, *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.Popen(command(port, host), env=env, cwd=repo)
    if not block:
        return proc
    print(f"interp dashboard on http://{'localhost' if host == LOCALHOST else host}:{port} "
          f"(store {root}); Ctrl-C stops it", flush=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()


def _handler(args: argparse.Namespace) -> int:
    result = serve(args.store, port=args.port, host=args.host, block=True)
    return int(result) if isinstance(result, int) else 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "app", help="serve the dashboard over a feature store",
        description="Serve the interp dashboard (Streamlit). Binds to localhost unless --host says otherwise.")
    parser.add_argument("--store", default=None, help="store root (default: the data root's store/)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--host", default=LOCALHOST,
                        help="address to bind (default 127.0.0.1; 0.0.0.0 exposes it on every interface)")
    parser.set_defaults(func=_handler)
