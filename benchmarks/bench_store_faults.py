"""The store under concurrent writers, readers and a compactor, and with one damaged file.

Prints, for a race of `--seconds`:

* torn reads: queries that saw part of a two-partition write (5 of its 10 rows), with
  the commit-marker folder listed at normal speed and with `--slow-listing` ms added to
  each listing of it (as on a loaded network filesystem);
* compactor race: reader queries that failed (and how many called a file corrupt) while
  a compactor ran in a loop, and the commit markers left after the race and after a
  final compaction;
* one corrupt file: of a query per table, how many failed.

    python benchmarks/bench_store_faults.py --seconds 8
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WRITER = r"""
import sys, time
import numpy as np
from interp.store import Store
store, seconds = Store(sys.argv[1]), float(sys.argv[2])
half = np.arange(10) % 2 == 0
deadline, batch = time.time() + seconds, 0
while time.time() < deadline:
    store.write("features", {"model": ["org/m"] * 10, "site": ["blocks.0.mlp.hook_post"] * 10,
                             "kind": np.where(half, "neuron", "sae"), "source": np.where(half, "", "d"),
                             "index": batch * 10 + np.arange(10), "label": [f"b{batch}"] * 10}, run_id="w")
    batch += 1
"""
COMPACTOR = r"""
import sys, time
from interp.store import Store
store, seconds = Store(sys.argv[1]), float(sys.argv[2])
deadline = time.time() + seconds
while time.time() < deadline:
    store.compact("features")
"""


def _spawn(script: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)])


def _race(store, procs: list[subprocess.Popen]) -> tuple[int, int, list[str]]:
    """(queries, torn queries, error messages) until the processes end."""
    from interp.store import StoreError

    n = torn = 0
    errors = []
    while any(p.poll() is None for p in procs):
        try:
            if n % 2:
                labels = store.sql("SELECT label FROM features")["label"]
            else:
                labels = store.read("features", columns=["label"])["label"]
            torn += bool(set(labels.value_counts()) - {10})
        except StoreError as exc:
            errors.append(str(exc))
        n += 1
    for p in procs:
        p.wait()
    return n, torn, errors


def torn_reads(root: Path, seconds: float, slow_ms: float) -> str:
    from interp.store import Store

    real = os.listdir

    def listdir(path="."):
        if slow_ms and os.path.basename(os.fspath(path)) == "commits":
            time.sleep(slow_ms / 1000)
        return real(path)

    os.listdir = listdir
    try:
        store = Store(root)
        n, torn, errors = _race(store, [_spawn(WRITER, root, seconds)])
    finally:
        os.listdir = real
    return f"torn reads (listing +{slow_ms:g} ms): {torn} of {n} queries; {len(errors)} errors"


def compactor_race(root: Path, seconds: float) -> str:
    from interp.store import Store

    store = Store(root)
    n, torn, errors = _race(store, [_spawn(WRITER, root, seconds), _spawn(COMPACTOR, root, seconds)])
    corrupt = sum("corrupt" in e for e in errors)
    markers = len(os.listdir(root / "commits"))
    store.compact()
    left = len(os.listdir(root / "commits"))
    return (f"compactor race: {len(errors)} of {n} queries failed ({corrupt} said corrupt), {torn} torn; "
            f"commit markers after the race {markers}, after a final compact {left}")


def one_corrupt_file(root: Path) -> str:
    import warnings

    from interp.store import TABLES, Store

    store = Store(root)
    run = store.start_run("bench", {})
    store.write("features", [{"model": "m", "site": "blocks.0.hook_resid_post", "kind": "neuron", "index": 0}],
                run_id=run)
    victim = next((root / "tables" / "features").rglob("part-*.parquet"))
    victim.write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")
    failed = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in TABLES:
            try:
                store.sql(f"SELECT count(*) FROM {name}")
            except ValueError:
                failed += 1
    return f"one corrupt features file: {failed} of {len(TABLES)} table queries failed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each race")
    parser.add_argument("--slow-listing", type=float, default=20.0, metavar="MS",
                        help="extra time per listing of the commit-marker folder in the second torn-read race")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(torn_reads(tmp / "a", args.seconds, 0.0))
        print(torn_reads(tmp / "b", args.seconds, args.slow_listing))
        print(compactor_race(tmp / "c", args.seconds))
        print(one_corrupt_file(tmp / "d"))


if __name__ == "__main__":
    main()
