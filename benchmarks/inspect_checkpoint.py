"""What a dictionary's training checkpoint holds: the figures behind a resampling diagnosis.

Prints, from the checkpoint's own tensors (``<store>/tensors/checkpoints/<model>/<name>.safetensors``,
written every `checkpoint_every` steps): the step, the share of latents ever resampled, the 5th /
50th / 95th percentiles of the encoder column norms (overall, and never-resampled vs resampled),
and the norms of ``W_skip``, ``b_enc`` and ``b_dec``. A norm ratchet or a drifting ``b_dec`` shows
here before it shows in held-out metrics.

    .venv/bin/python benchmarks/inspect_checkpoint.py smollm2-135m/L15-transcoder-skip-topk-k8-x4-2000k \
        [--store PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="the dictionary's store name, e.g. smollm2-135m/L15-transcoder-topk-k16-x4-80k")
    parser.add_argument("--store", default=None, help="store root (default: <data root>/store)")
    args = parser.parse_args()

    import torch

    from interp.dictionaries.checkpoint import StoreCheckpoint
    from interp.paths import store_dir
    from interp.store import Store

    found = StoreCheckpoint(Store(args.store or store_dir()), args.name).load()
    if found is None:
        parser.error(f"no training checkpoint for {args.name!r} in {args.store or store_dir()} "
                     "(checkpoints are written by runs with checkpoint_every > 0)")
    tensors, meta = found
    q = torch.tensor([0.05, 0.5, 0.95])

    def quantiles(v: torch.Tensor) -> str:
        return " / ".join(f"{x:.3g}" for x in v.float().quantile(q).tolist())

    norms = tensors["param.W_enc"].norm(dim=0)
    print(f"step {meta['step']} of {args.name}")
    print(f"encoder column norms (5th / 50th / 95th percentile): {quantiles(norms)}")
    resampled = tensors.get("resampled")
    if resampled is not None:
        print(f"share of latents ever resampled: {resampled.float().mean():.3f}")
        for label, mask in (("never resampled", ~resampled), ("resampled", resampled)):
            if mask.any():
                print(f"  {label}: {quantiles(norms[mask])}")
    for key in ("param.W_skip", "param.b_enc", "param.b_dec"):
        if key in tensors:
            print(f"{key.removeprefix('param.')} norm {float(tensors[key].norm()):.4g}")


if __name__ == "__main__":
    main()
