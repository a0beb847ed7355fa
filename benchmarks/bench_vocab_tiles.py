"""Tile shapes of the vocabulary reduction against a plain GEMM (what `DecodeConfig`'s defaults rest on).

For every (chunk, block) pair given, decodes SmolLM2-135M's down directions in the job's
groups of three layers with `interp.methods.neurons.vocab_reduction.reduce_vocab` (GEMM tiles and the
reduction, no store writes), and, interleaved with it on the same threads, times the plain
fp32 products ``(d_mlp, d_model) @ (d_model, d_vocab)`` of the same layers. Prints each
shape's ``decode_time / matmul_time``, best first.

    .venv/bin/python benchmarks/bench_vocab_tiles.py [--threads 2] [--repeats 2] [--tiles 1536x3072,2048x4096]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interp.jobs.backends.local import GROUP  # noqa: E402
from interp.methods.neurons.decoding import neuron_directions, prepare_directions  # noqa: E402
from interp.methods.neurons.vocab_reduction import reduce_vocab  # noqa: E402
from interp.models import load_model  # noqa: E402

DEFAULT_TILES = "1536x3072,2048x4096,1152x3072,1024x2048,1536x2048,768x4096,512x8192"


def parse_tiles(text: str) -> list[tuple[int, int]]:
    try:
        tiles = [tuple(int(v) for v in item.split("x")) for item in text.split(",")]
    except ValueError:
        tiles = []
    if not tiles or any(len(t) != 2 or min(t) < 1 for t in tiles):
        raise SystemExit(f"--tiles {text!r}: expected CHUNKxBLOCK[,CHUNKxBLOCK...], e.g. 1536x3072,2048x4096")
    return tiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="passes over the model")
    parser.add_argument("--tiles", default=DEFAULT_TILES, help="CHUNKxBLOCK shapes, comma-separated")
    parser.add_argument("--top-k", type=int, default=20)
    args = parser.parse_args()
    tiles = parse_tiles(args.tiles)
    torch.set_num_threads(args.threads)
    model = load_model("smollm2-135m")
    weights, info = model.weights, model.info
    groups = [prepare_directions(torch.cat([neuron_directions(weights, layer, "down")
                                            for layer in range(g, min(g + GROUP, info.n_layers))]),
                                 weights.final_norm, "folded").contiguous()
              for g in range(0, info.n_layers, GROUP)]
    out = torch.empty(info.d_mlp, info.d_vocab)

    def plain(vectors: torch.Tensor) -> float:
        start = time.perf_counter()
        for r0 in range(0, len(vectors), info.d_mlp):
            torch.matmul(vectors[r0:r0 + info.d_mlp], weights.W_U, out=out)
        return time.perf_counter() - start

    matmul, decode = 0.0, dict.fromkeys(tiles, 0.0)
    for _ in range(args.repeats):
        for vectors in groups:  # plain, every shape, plain: both see the same background load
            matmul += plain(vectors) / 2
            for chunk, block in tiles:
                start = time.perf_counter()
                reduce_vocab(vectors, weights.W_U, args.top_k, chunk, block)
                decode[(chunk, block)] += time.perf_counter() - start
            matmul += plain(vectors) / 2
    print(f"SmolLM2-135M down directions, groups of {GROUP} layers, {args.threads} threads, "
          f"{args.repeats} passes; plain matmul {matmul:.2f} s")
    for (chunk, block), seconds in sorted(decode.items(), key=lambda item: item[1]):
        print(f"{chunk:5d} x {block:5d} tiles ({4 * chunk * block / 2**20:5.1f} MiB a thread): "
              f"decode {seconds:.2f} s, decode_time / matmul_time = {seconds / matmul:.3f}")


if __name__ == "__main__":
    main()
