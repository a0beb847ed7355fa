"""Cost of the corpus-examples job against plain forward passes over the same tokens.

1. Load the model once and cut the job's held-out windows (`interp.jobs.examples`).
2. Plain: `ModelAdapter.logits` over every window, in the job's batch size (a forward pass
   with full logits and nothing cached) - timed once before and once after the job, the
   faster of the two kept, so a busy neighbour on a shared machine does not flatter the ratio.
   Wall-clock and CPU time (`time.process_time`, every thread of this process) are both
   measured: on a machine shared with other jobs the CPU-time ratio is the steadier one.
3. Job: `collect_examples` into a fresh scratch store (every requested layer's neurons:
   forward with the sites cached, statistics, contexts, store writes), wall-clock, and the
   share of it spent in the forward.
4. Print one line per measurement and the ratio job / plain (the goal is <= 1.5).

    .venv/bin/python benchmarks/bench_examples.py [--model smollm2-135m] [--tokens 4096] [--layers all] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--layers", default="all", help="layers whose neurons the job covers (e.g. 0,5-7; all)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's); 1 gives the steadiest CPU times on a busy machine")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from interp.jobs.examples import ExamplesJobConfig, _windows, collect_examples
    from interp.jobs.neuron_map import parse_layers
    from interp.models import load_model
    from interp.store import Store

    adapter = load_model(args.model)
    config = ExamplesJobConfig(tokens=args.tokens, layers=parse_layers(args.layers, adapter.info.n_layers),
                               dictionaries=False)
    windows = _windows(adapter, config)
    n_tokens = windows.numel()

    def timed(fn) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - wall, time.process_time() - cpu

    def plain() -> None:
        with torch.no_grad():
            for i in range(0, len(windows), config.batch_size):
                adapter.logits(windows[i:i + config.batch_size])

    done = {}

    def job() -> None:
        with tempfile.TemporaryDirectory(prefix="bench-examples-") as root:
            done["summary"] = collect_examples(Store(root), adapter, config, windows=windows, progress=False)

    before = timed(plain)
    ran = timed(job)
    after = timed(plain)
    base = tuple(min(a, b) for a, b in zip(before, after))
    summary = done["summary"]
    print(f"torch threads {torch.get_num_threads()}; model {args.model}, {n_tokens:,} tokens ({len(windows)} windows of {windows.shape[1]}), "
          f"{len(summary.done)} layers x {adapter.info.d_mlp} neurons")
    print(f"plain forward passes: {base[0]:.1f} s wall, {base[1]:.1f} s CPU (runs: {before[0]:.1f}, {after[0]:.1f} s "
          f"wall)")
    print(f"examples job:         {ran[0]:.1f} s wall, {ran[1]:.1f} s CPU (its forward {summary.forward_seconds:.1f} s "
          f"wall, {summary.n_examples:,} example rows)")
    print(f"ratio job / plain:    {ran[0] / base[0]:.2f} wall, {ran[1] / base[1]:.2f} CPU (goal <= 1.5)")


if __name__ == "__main__":
    main()
