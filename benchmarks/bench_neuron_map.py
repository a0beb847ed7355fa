"""Whole-model neuron mapping of SmolLM2-135M against a plain GEMM of the same FLOP count.

Maps every neuron of one direction (30 layers x 1536 neurons x 49152 tokens, 2.6e12 FLOP)
into a scratch store with `interp.jobs.neuron_map.map_model`, and in the same run, on the
same threads, times a plain fp32 product ``(1536, 576) @ (576, 49152)`` per layer (before and
after each of ``--repeats`` jobs, so that both share any background load; medians compared).
Prints:

- ``job_time / matmul_time`` (target <= 1.25: the job is GEMM-bound);
- the job's peak extra memory (RSS above the loaded model, sampled) and the stated bound;
- the speed-up over decoding one neuron at a time (on a sample);
- correctness: the stored top-k equal a per-neuron fp32 reference (full softmax + topk)
  for a random sample of neurons across all layers (ties aside).

    .venv/bin/python benchmarks/bench_neuron_map.py [--threads 2] [--layers 30] [--repeats 3] [--sample 256]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interp.jobs.neuron_map import map_model  # noqa: E402
from interp.methods.neurons.decoding import DecodeConfig, neuron_directions, prepare_directions  # noqa: E402
from interp.methods.neurons.vocab_reduction import resolve_backend  # noqa: E402
from interp.models import load_model  # noqa: E402
from interp.store import Store  # noqa: E402
from interp.sites import layer_of  # noqa: E402


class PeakRSS:
    """Samples this process's RSS every few ms in a thread; `.peak` in bytes."""

    def __init__(self, interval: float = 0.005) -> None:
        self.proc, self.interval, self.peak, self._stop = psutil.Process(), interval, 0, threading.Event()

    def __enter__(self):
        self.base = self.peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def plain_matmul(model, layers: int) -> float:
    """Seconds for one (d_mlp, d_model) @ (d_model, d_vocab) fp32 product per layer."""
    W_U = model.weights.W_U
    out = torch.empty(model.info.d_mlp, model.info.d_vocab)
    a = neuron_directions(model.weights, 0, "down")
    torch.matmul(a, W_U, out=out)  # warm-up
    start = time.perf_counter()
    for _ in range(layers):
        torch.matmul(a, W_U, out=out)
    return time.perf_counter() - start


def per_neuron_reference(model, layer: int, index: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The naive way: one neuron, full-vocabulary logits, softmax, topk (fp32)."""
    w = neuron_directions(model.weights, layer, "down")[index:index + 1]
    logits = prepare_directions(w, model.weights.final_norm, "folded") @ model.weights.W_U
    logits.softmax(-1)  # what a naive loop computes for the probabilities
    return logits[0].topk(k), (-logits[0]).topk(k)


def map_once(model, layers: int, args) -> tuple[float, PeakRSS, Path]:
    """One whole mapping job into a fresh scratch store: (seconds, memory sampler, store root)."""
    root = Path(tempfile.mkdtemp(prefix="bench_neuron_map_"))
    with PeakRSS() as mem:
        start = time.perf_counter()
        map_model(Store(root), model, layers=range(layers), directions=("down",), top_k=args.top_k,
                  chunk_size=args.chunk_size, progress=False)
        seconds = time.perf_counter() - start
    return seconds, mem, root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layers", type=int, default=30, help="layers to map (30 = the whole model)")
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--chunk-size", type=int, default=1536)
    parser.add_argument("--repeats", type=int, default=3, help="jobs, each between two matmul timings")
    parser.add_argument("--sample", type=int, default=256, help="neurons for the per-neuron loop and the check")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model("smollm2-135m")
    info = model.info
    flop = 2 * args.layers * info.d_mlp * info.d_model * info.d_vocab
    lib = resolve_backend("auto")
    kind = "none: torch ops" if lib is None else ("AVX-512" if lib.vocab_reduce_simd() else "plain C")
    print(f"SmolLM2-135M: {args.layers} layers x {info.d_mlp} neurons x {info.d_vocab} tokens, "
          f"{flop:.2e} FLOP, {args.threads} threads; reduction kernel: {kind}")

    before = psutil.Process().memory_info().rss
    for layer in range(info.n_layers):  # the bridge materialises each layer's weights on first access
        neuron_directions(model.weights, layer, "down")
    print(f"loaded model: {before / 2**20:.0f} MiB RSS; {(psutil.Process().memory_info().rss - before) / 2**20:.0f} MiB "
          f"more once every layer's weights were read (a one-time cost of the model, not of the job)")

    # matmul, job, matmul, job, ... so that both see the same background load; medians compared.
    matmuls = [plain_matmul(model, args.layers)]
    jobs, roots, mems = [], [], []
    try:
        # A 3-layer job first, from the same starting memory: its peak against the whole model's
        # shows whether memory grows with the number of layers mapped.
        _, short_mem, short_root = map_once(model, 3, args)
        roots.append(short_root)
        for _ in range(args.repeats):
            seconds, mem, root = map_once(model, args.layers, args)
            jobs.append(seconds)
            roots.append(root)
            mems.append(mem)
            matmuls.append(plain_matmul(model, args.layers))
        for i, job in enumerate(jobs):
            around = (matmuls[i] + matmuls[i + 1]) / 2
            print(f"run {i}: mapping job {job:.2f} s, plain matmul {matmuls[i]:.2f} / {matmuls[i + 1]:.2f} s "
                  f"-> ratio {job / around:.3f}")
        job, matmul = float(np.median(jobs)), float(np.median(matmuls))
        print(f"median: mapping job {job:.2f} s = {flop / job / 1e9:.0f} GFLOP/s, plain fp32 matmul {matmul:.2f} s "
              f"= {flop / matmul / 1e9:.0f} GFLOP/s")
        print(f"job_time / matmul_time = {job / matmul:.3f}   (target <= 1.25)")
        peak = max(m.peak for m in mems)
        from interp.jobs.backends.local import GROUP

        rows = min(args.chunk_size, GROUP * info.d_mlp)
        bound = args.threads * 4 * rows * DecodeConfig().vocab_block + 2 * 4 * GROUP * info.d_mlp * info.d_model
        base = short_mem.base
        print(f"peak RSS during the whole-model jobs: {peak / 2**20:.0f} MiB, {(peak - base) / 2**20:.0f} MiB above the "
              f"loaded model ({base / 2**20:.0f} MiB); a 3-layer job peaked {(short_mem.peak - base) / 2**20:.0f} MiB "
              f"above it. "
              f"Stated bound: decode working set {bound / 2**20:.1f} MiB + two layers' rows and Parquet buffers; "
              f"the rest is allocator caches (full logits of one layer would be "
              f"{4 * info.d_mlp * info.d_vocab / 2**20:.0f} MiB, of the whole model "
              f"{4 * args.layers * info.d_mlp * info.d_vocab / 2**30:.1f} GiB)")

        rng = np.random.default_rng(0)
        picks = sorted(zip(rng.integers(0, args.layers, args.sample).tolist(),
                           rng.integers(0, info.d_mlp, args.sample).tolist()))
        start = time.perf_counter()
        refs = {(layer, i): per_neuron_reference(model, layer, i, args.top_k) for layer, i in picks}
        per_neuron = (time.perf_counter() - start) / len(picks)
        batched = job / (args.layers * info.d_mlp)
        print(f"per-neuron loop: {per_neuron * 1e3:.1f} ms/neuron vs {batched * 1e3:.3f} ms/neuron in the job "
              f"-> speed-up x{per_neuron / batched:.0f}")
        check(Store(roots[-1]), refs, args.top_k)
    finally:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)


def check(store, refs: dict, k: int) -> None:
    """Stored top/bottom-k against the per-neuron fp32 reference (ties aside)."""
    rows = store.read("feature_tokens", columns=["site", "index", "end", "rank", "token_id", "logit"])
    rows["layer"] = rows["site"].map(layer_of).astype(int)
    rows = rows.set_index(["layer", "index", "end"]).sort_values("rank")
    same = same_top1 = ties = 0
    for (layer, i), (top, bottom) in refs.items():
        got_top = rows.loc[(layer, i, "top")]
        got_bottom = rows.loc[(layer, i, "bottom")]
        exact = (got_top["token_id"].tolist() == top.indices.tolist()
                 and got_bottom["token_id"].tolist() == bottom.indices.tolist())
        tie = np.allclose(got_top["logit"].to_numpy(), top.values.numpy(), atol=1e-5) and np.allclose(
            got_bottom["logit"].to_numpy(), -bottom.values.numpy(), atol=1e-5)
        same += exact
        ties += (not exact) and tie
        same_top1 += int(got_top["token_id"].iloc[0]) == int(top.indices[0])
    n = len(refs)
    print(f"correctness on {n} sampled neurons: top-{k} and bottom-{k} lists identical for "
          f"{same / n:.2%} ({ties} more differ only by tied logits), top-1 identical for {same_top1 / n:.2%} "
          f"(target >= 99.9%)")


if __name__ == "__main__":
    main()
