"""``interp lens``: the logit lens and the tuned lens.

    interp lens train --model smollm2-135m [--tokens 20000] [--lr 0.003] [--store PATH]
    interp lens show --model smollm2-135m --prompt "The capital of France is" [--tuned] [--top-k 1]

``train`` fits one affine translator per layer on the corpus, compares it with the logit lens
on held-out tokens (per-layer KL to the model's output) and stores it; ``show`` prints the
lens's top token and its probability at every (layer, position) of a prompt, with the KL of
each layer to the output (``--tuned``: the model's stored tuned lens).
"""

from __future__ import annotations

import argparse

from interp.cli.options import add_config_arguments, config_from_args


def register(subparsers) -> None:
    from interp.jobs.lenses import LensJobConfig
    from interp.methods.lenses import LensConfig, TunedLensConfig

    parser = subparsers.add_parser("lens", help="logit lens and tuned lens: per-layer next-token readouts",
                                   description=__doc__.split("\n\n", 1)[0])
    sub = parser.add_subparsers(dest="lens_command", metavar="LENS_COMMAND")
    parser.set_defaults(func=lambda args: (parser.print_help(), 0)[1])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", required=True, help="model alias, hub id or local folder")
    common.add_argument("--store", default=None, metavar="PATH",
                        help="store root (default: <data root>/store; see --home / INTERP_HOME)")

    train = sub.add_parser("train", parents=[common], help="train and store a tuned lens, compared with the logit lens")
    add_config_arguments(train, TunedLensConfig)
    add_config_arguments(train, LensJobConfig)
    train.set_defaults(func=_train)

    show = sub.add_parser("show", parents=[common], help="print the lens grid of a prompt")
    show.add_argument("--prompt", required=True, help="the text whose positions the lens reads")
    show.add_argument("--tuned", action="store_true", help="use the model's stored tuned lens (default: logit lens)")
    add_config_arguments(show, LensConfig, defaults={"top_k": 1})  # one token per cell keeps the grid readable
    show.set_defaults(func=_show)


def _store(args):
    from interp.paths import store_dir
    from interp.store import Store

    return Store(args.store if args.store else store_dir())


def _train(args) -> int:
    from interp.jobs.lenses import LensJobConfig, train_lens
    from interp.methods.lenses import TunedLensConfig

    config = config_from_args(TunedLensConfig, args)
    job = config_from_args(LensJobConfig, args)
    store = _store(args)
    print(f"training a tuned lens for {args.model}: {config.tokens:,} tokens of {config.corpus} in {config.steps} "
          f"steps of {config.batch_windows} x {config.ctx_len - 1} tokens, lr {config.lr:g}")
    s = train_lens(store, args.model, config, job)
    print(f"per-layer KL(final || lens) in nats on {s.comparison.n_tokens:,} held-out tokens "
          f"({s.comparison.n_windows} windows; 95% t intervals over windows):")
    print(kl_table(s.comparison.table))
    print(f"trained on {s.n_tokens:,} tokens in {s.train_seconds:.1f} s (job {s.seconds:.1f} s); "
          f"stored as {s.bundle}, run {s.run_id} in {store.root}")
    return 0


def kl_table(table) -> str:
    """The comparison table as aligned text: row, logit-lens KL [interval], tuned-lens KL [interval]."""
    lines = [f"{'layer':>6}  {'logit lens':>22}  {'tuned lens':>22}"]
    for r in table.to_dict("records"):
        cells = [f"{r[f'kl_{n}']:7.3f} [{r[f'kl_{n}_lo']:6.3f}, {r[f'kl_{n}_hi']:6.3f}]" if f"kl_{n}" in r else ""
                 for n in ("logit", "tuned")]
        lines.append(f"{r['row']:>6}  {cells[0]:>22}  {cells[1]:>22}")
    return "\n".join(lines)


def _show(args) -> int:
    from interp.methods.lenses import LensConfig, lens_grid
    from interp.models import load_model

    if not args.prompt.strip():
        raise ValueError(f"--prompt {args.prompt!r} is empty: give the text the lens should read")
    config = config_from_args(LensConfig, args)
    store = _store(args) if args.tuned else None
    if args.tuned:  # before loading the model: a missing lens is one line, at once
        from interp.methods.lenses.store import missing_lens_message, tuned_lens_record
        from interp.models import store_model_name

        if tuned_lens_record(store, store_model_name(args.model)) is None:
            raise FileNotFoundError(missing_lens_message(store, store_model_name(args.model)))
    adapter = load_model(args.model)
    translate = None
    if args.tuned:
        from interp.methods.lenses.store import load_tuned_lens

        translate = load_tuned_lens(store, adapter)
    grid = lens_grid(adapter, args.prompt, config, translate=translate, lens="tuned" if args.tuned else "logit")
    print(f"{grid.lens} lens of {adapter.store_name}: top token and its probability at every layer and position; "
          f"kl = KL(final || lens) in nats averaged over positions{'' if config.include_bos else ' (BOS left out)'}")
    print(grid_text(grid))
    return 0


def grid_text(grid) -> str:
    """The grid as text: one line per lens row (embed first), one column per prompt position."""
    import pandas as pd

    columns = [f"{i}:{t!r}" for i, t in enumerate(grid.tokens)]
    cells = [[" ".join(f"{tok!r} {p:.2f}" for tok, p in zip(grid.top_tokens[r, c], grid.top_probs[r, c]))
              for c in range(len(grid.tokens))] for r in range(len(grid.rows))]
    frame = pd.DataFrame(cells, index=grid.labels, columns=columns)
    frame["kl"] = [f"{v:.3f}" for v in grid.kl_mean]
    with pd.option_context("display.width", 10_000, "display.max_columns", None, "display.max_colwidth", 40):
        return frame.to_string()
