"""Write a stored transcoder-vs-SAE comparison to a CSV that the transcoders notebook draws.

`bench_transcoder_vs_sae.py` stores its table in the store it ran on (a ``dictionary_sweep``
result, key ``<model>/L<layer>/<arch>-<tokens>[-<variant>]``). A fresh clone's store has none
(the run takes most of an hour on two cores), so the measured table is kept in the repository
as ``benchmarks/results/<key with / as _>.csv``:

1. Read the comparison `--key` from `--store`.
2. Keep the columns a reader needs (kind, k, L0, FVU, CEs, CE recovered, dead share and
   their 95% intervals), one row per dictionary, ordered by k then kind.
3. With `--merge`, keep the rows of the CSV already there that this comparison does not
   replace (same kind, architecture, k and variant), so runs at different k on the same
   held-out windows make one table; rows evaluated on other windows (a different clean CE or
   token count) are refused, since their CEs do not compare.
4. Write the CSV (`--out`, default under ``benchmarks/results/``) and print it.

    .venv/bin/python benchmarks/export_comparison.py --store /path/to/store \
        --key smollm2-135m/L15/topk-2000000-dens [--out FILE] [--merge]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).resolve().parent / "results"

COLUMNS = ("name", "variant", "kind", "arch", "k", "skip", "n_tokens", "l0", "l0_lo", "l0_hi", "fvu", "fvu_lo",
           "fvu_hi", "ce_clean", "ce_spliced", "delta_ce", "delta_ce_lo", "delta_ce_hi", "ce_recovered",
           "ce_recovered_lo", "ce_recovered_hi", "ce_recovered_mean", "kl", "dead_fraction", "dead_fraction_lo",
           "dead_fraction_hi")
"""The exported columns, those the stored table has (intervals are ``<metric>_lo`` / ``_hi``)."""


def default_out(key: str) -> Path:
    """``benchmarks/results/<key with / replaced by _>.csv``."""
    return RESULTS / f"{key.replace('/', '_')}.csv"


def comparison_table(store, key: str):
    """The stored comparison `key` as a DataFrame of `COLUMNS`, or the one-line error naming it."""
    import pandas as pd

    stored = store.read("results", where={"name": "dictionary_sweep", "key": key})
    if stored.empty:
        keys = store.read("results", where={"name": "dictionary_sweep"})
        known = ", ".join(sorted(keys["key"])) if not keys.empty else "none"
        return f"--key {key!r}: no stored comparison of that key (this store holds: {known})"
    payload = stored["payload"].iloc[0]
    payload = json.loads(payload) if isinstance(payload, str) else payload
    table = pd.DataFrame(payload["table"])
    table = table[[c for c in COLUMNS if c in table.columns]]
    return _ordered(table)


def _ordered(table):
    """By k, the transcoder before the SAE at each k."""
    return table.sort_values(["k", "kind"], key=lambda s: s if s.name == "k" else s != "transcoder",
                             ignore_index=True, kind="stable")


FLOAT_FORMAT = "%.6g"
"""How the CSV writes floats."""

IDENTITY = ("kind", "arch", "k", "variant")
"""The columns that name one dictionary of a comparison: a merged row with these replaces the old."""


def merged(table, earlier):
    """`table` plus the rows of `earlier` it does not replace, ordered as `comparison_table` orders;
    or the one-line error when the two were evaluated on different held-out tokens."""
    import pandas as pd

    for column in ("ce_clean", "n_tokens"):
        # Compared as the CSV writes them (FLOAT_FORMAT): the earlier rows went through it.
        new, old = ({float(FLOAT_FORMAT % v) for v in t[column]} for t in (table, earlier))
        if new != old:
            return (f"--merge: the CSV there has {column} {sorted(old)}, this comparison {sorted(new)}; "
                    "rows from different held-out tokens do not compare (write to another --out)")
    replaced = set(map(tuple, table[list(IDENTITY)].astype(str).to_numpy()))
    keep = [tuple(row) not in replaced for row in earlier[list(IDENTITY)].astype(str).to_numpy()]
    both = pd.concat([earlier[keep], table], ignore_index=True)[list(table.columns)]
    return _ordered(both)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="the store the benchmark ran on")
    parser.add_argument("--key", required=True, help="the comparison's key, e.g. smollm2-135m/L15/topk-2000000-dens")
    parser.add_argument("--out", default=None, help="CSV path (default: benchmarks/results/<key>.csv)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the rows of the CSV already at --out that this comparison does not replace")
    args = parser.parse_args()
    from interp.store import Store
    from interp.store.store import VERSION_FILE

    if not Path(args.store).is_dir():
        parser.error(f"--store {args.store!r}: no such directory")
    if not (Path(args.store) / VERSION_FILE).exists():  # Store() would make one: a read must not write
        parser.error(f"--store {args.store!r}: not a store (no {VERSION_FILE} file)")

    table = comparison_table(Store(args.store), args.key)
    if isinstance(table, str):
        parser.error(table)
    out = Path(args.out) if args.out else default_out(args.key)
    if args.merge and out.exists():
        import pandas as pd

        table = merged(table, pd.read_csv(out))
        if isinstance(table, str):
            parser.error(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False, float_format=FLOAT_FORMAT)
    print(table.to_string(index=False))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
