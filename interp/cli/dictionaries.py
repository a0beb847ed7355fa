"""``interp train``, ``interp sweep`` and ``interp show feature``: sparse dictionaries.

    interp train --kind transcoder --model smollm2-135m --layer 15 --arch topk --k 32 --tokens 200000
    interp train --kind sae --model smollm2-135m --layer 15 --site blocks.15.hook_resid_post --arch relu --l1 0.05
    interp sweep --model smollm2-135m --layer 15 --ks 8 16 32 --tokens 200000
    interp show feature smollm2-135m smollm2-135m/L15-transcoder-topk-k32-x8-200k 12 --format json

The long recipe (about an hour of a 2-core CPU per 200k tokens at layer 15, see
benchmarks/bench_dictionary_tokens.py): activations are computed from the model chunk by
chunk as training goes, and a checkpoint is written every 50 steps, so the same command
started again after an interruption resumes where it stopped:

    interp train --kind transcoder --model smollm2-135m --layer 15 --k 16 --expansion 4 --tokens 2000000

Flags map one to one onto `TrainConfig`, `DataConfig` and `SweepConfig`.
"""

from __future__ import annotations

import argparse
import json


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="smollm2-135m", help="model alias, hub id or local directory")
    parser.add_argument("--layer", type=int, required=True, help="block index (the MLP studied)")
    parser.add_argument("--arch", choices=("relu", "topk", "jumprelu"), default="topk", help="latent activation")
    parser.add_argument("--expansion", type=int, default=8, help="d_sae = expansion * d_in")
    parser.add_argument("--tokens", type=int, default=200_000,
                        help="training tokens (the budget; scale it up on a GPU)")
    parser.add_argument("--activation-tokens", type=int, default=None,
                        help="distinct tokens to compute activations for (default: --tokens, one epoch)")
    parser.add_argument("--batch-size", type=int, default=256, help="tokens per step")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    parser.add_argument("--warmup-steps", type=int, default=50, help="linear learning-rate warm-up steps")
    parser.add_argument("--b-dec-init", choices=("mean", "geometric_median"), default="geometric_median",
                        help="decoder bias start: mean or geometric median of the targets")
    parser.add_argument("--skip-positions", type=int, default=2,
                        help="leading positions per window kept out (BOS and the artefact position after it)")
    parser.add_argument("--seed", type=int, default=0, help="seed of init, batch order and corpus shuffle")
    parser.add_argument("--corpus", default="imdb", help="training corpus (imdb, python, c, text:PATH, jsonl:PATH)")
    parser.add_argument("--ctx-len", type=int, default=128, help="tokens per window, BOS included")
    parser.add_argument("--eval-tokens", type=int, default=10_240, help="held-out tokens for the metrics")
    parser.add_argument("--store", default=None, metavar="PATH", help="store root (default: <data root>/store)")


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="train a transcoder or SAE, evaluate it, store it with its features")
    train.add_argument("--kind", choices=("transcoder", "sae"), required=True)
    _common(train)
    train.add_argument("--site", default=None, help="SAE hook (default: the layer's MLP output)")
    sparsity = train.add_mutually_exclusive_group()
    sparsity.add_argument("--k", type=int, default=None, help="active latents per token (topk; default 32)")
    sparsity.add_argument("--l1", type=float, default=None, help="sparsity coefficient (relu/jumprelu)")
    train.add_argument("--skip", action="store_true", help="skip transcoder (adds a linear W_skip term)")
    train.add_argument("--dashboard-tokens", type=int, default=8192, help="held-out tokens for feature data (0: none)")
    train.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints (0: none)")
    train.add_argument("--name", default=None, help="store name (default: derived from the settings)")
    train.set_defaults(func=_train)

    sweep = subparsers.add_parser("sweep", help="transcoders vs SAEs at several sparsities (L0 vs spliced CE)")
    _common(sweep)
    sweep.add_argument("--ks", type=int, nargs="+", default=[8, 16, 32], help="TopK sparsities")
    sweep.add_argument("--l1s", type=float, nargs="+", default=[], help="sparsity coefficients (relu/jumprelu)")
    sweep.add_argument("--kinds", nargs="+", choices=("transcoder", "sae"), default=["transcoder", "sae"])
    sweep.add_argument("--format", choices=("table", "json"), default="table")
    sweep.set_defaults(func=_sweep)

    show = subparsers.add_parser("show", help="show stored items")
    show_sub = show.add_subparsers(dest="show_command", metavar="WHAT")
    show.set_defaults(func=lambda args: (show.print_help(), 0)[1])
    feature = show_sub.add_parser("feature", help="one dictionary latent: density, contexts, logit tables")
    feature.add_argument("model", help="model name as stored (e.g. smollm2-135m)")
    feature.add_argument("dictionary",
                         help="dictionary name (see `interp store query \"SELECT name FROM dictionaries\"`)")
    feature.add_argument("index", type=int, help="latent index")
    feature.add_argument("--format", choices=("text", "json"), default="text")
    feature.add_argument("--store", default=None, metavar="PATH", help="store root")
    feature.set_defaults(func=_show_feature)


def _store(args):
    from interp.paths import store_dir
    from interp.store import Store

    return Store(args.store or store_dir())


def _configs(args, kind: str, k: int | None = None, l1: float | None = None, skip: bool = False,
             dashboard_tokens: int = 0, checkpoint_every: int = 0):
    from interp.jobs.dictionaries import DataConfig
    from interp.dictionaries.training import TrainConfig

    train = TrainConfig(kind=kind, arch=args.arch, expansion=args.expansion, k=k or 32,
                        l1=l1 if l1 is not None else TrainConfig.l1, skip=skip, lr=args.lr,
                        batch_size=args.batch_size, train_tokens=args.tokens, seed=args.seed,
                        checkpoint_every=checkpoint_every, warmup_steps=args.warmup_steps,
                        b_dec_init=args.b_dec_init,
                        dead_after_tokens=min(50_000, max(256, args.tokens // 10)), aux_k=512,
                        aux_coefficient=0.5)
    data = DataConfig(corpus=args.corpus, ctx_len=args.ctx_len, activation_tokens=args.activation_tokens,
                      eval_tokens=args.eval_tokens, dashboard_tokens=dashboard_tokens, seed=args.seed,
                      skip_positions=args.skip_positions)
    return train, data


def _train(args) -> int:
    from interp.jobs.dictionaries import train_and_publish
    from interp.models import load_model

    if args.arch == "topk" and args.l1 is not None:
        raise ValueError("--l1 is for --arch relu/jumprelu; a topk dictionary takes --k")
    if args.arch != "topk" and args.k is not None:
        raise ValueError(f"--k is for --arch topk; a {args.arch} dictionary takes --l1")
    train, data = _configs(args, args.kind, args.k, args.l1, args.skip, args.dashboard_tokens, args.checkpoint_every)
    adapter = load_model(args.model)
    pub = train_and_publish(adapter, _store(args), train, args.layer, site=args.site, data=data, name=args.name)
    m = pub.metrics
    print(f"{pub.name}: {pub.site_in} -> {pub.site_out}")
    print(f"  L0 {m.l0:.1f}  FVU {m.fvu:.3f}  CE clean {m.ce_clean:.3f}  spliced {m.ce_spliced:.3f}  "
          f"zero-abl {m.ce_zero_ablation:.3f}  CE recovered {m.ce_recovered:.3f} (mean-abl {m.ce_recovered_mean:.3f})  "
          f"KL {m.kl:.4f}  dead {m.dead_fraction:.1%}  dense {m.dense_fraction:.1%}  ({m.n_tokens:,} held-out tokens)")
    for key, (lo, hi) in m.intervals.items():
        print(f"  95% interval {key}: [{lo:.3f}, {hi:.3f}]")
    return 0


def _sweep(args) -> int:
    from interp.jobs.dictionaries import SweepConfig, run_sweep
    from interp.models import load_model

    train, data = _configs(args, "transcoder")
    config = SweepConfig(layer=args.layer, ks=tuple(args.ks), l1s=tuple(args.l1s), kinds=tuple(args.kinds),
                         train=train, data=data)
    result = run_sweep(load_model(args.model), _store(args), config)
    table = result.table.drop(columns=["name"])
    print(table.to_json(orient="records") if args.format == "json" else table.to_string(index=False))
    return 0


def _show_feature(args) -> int:
    store = _store(args)
    found = store.read("dictionaries", where={"model": args.model, "name": args.dictionary})
    if found.empty:
        names = store.read("dictionaries", where={"model": args.model}, columns=["name"])["name"].tolist()
        raise ValueError(f"no dictionary {args.dictionary!r} for model {args.model!r}; stored: {names or 'none'}")
    row = found.iloc[0]
    where = {"model": args.model, "kind": row["kind"], "source": args.dictionary, "index": args.index}
    feats = store.read("features", where=where)
    if feats.empty:
        n = len(store.read("features", where={k: v for k, v in where.items() if k != "index"}, columns=["index"]))
        valid = f"valid indices 0..{n - 1}" if n else \
            "it has no stored feature data (trained with --dashboard-tokens 0?)"
        raise ValueError(f"latent {args.index} of {args.dictionary!r} not found: {valid}")
    tokens = store.read("feature_tokens", where=where)
    examples = store.read("activation_examples", where=where)
    record = _record(feats.iloc[0], tokens, examples)
    if args.format == "json":
        print(json.dumps(record, indent=2, default=str))
    else:
        _print_feature(record)
    return 0


def _record(feature, tokens, examples) -> dict:
    """One JSON-able record of a latent: identity, statistics, token tables, examples."""
    ident = {k: feature[k] for k in ("model", "site", "kind", "index", "source")}
    tables: dict[str, dict[str, list]] = {}
    for (direction, end), rows in tokens.groupby(["direction", "end"], sort=False):
        tables.setdefault(direction, {})[end] = [
            {"token": r.token_str, "token_id": int(r.token_id), "score": float(r.logit)} for r in rows.itertuples()]
    groups: dict[str, list] = {}
    for r in examples.itertuples():
        groups.setdefault(r.group, []).append({"tokens": list(r.tokens), "acts": [float(a) for a in r.acts],
                                               "max_act": float(r.max_act), "max_pos": int(r.max_pos)})
    return {**ident, "index": int(feature["index"]), "density": float(feature["density"]),
            "max_act": float(feature["max_act"]), "token_tables": tables, "examples": groups}


def _print_feature(record: dict) -> None:
    print(f"{record['source']} latent {record['index']}  ({record['kind']} at {record['site']})")
    print(f"  density {record['density']:.4%}   max activation {record['max_act']:.3f}")
    for direction, ends in record["token_tables"].items():
        for end, rows in ends.items():
            print(f"  {direction} {end}: " + "  ".join(f"{r['token']!r} {r['score']:+.2f}" for r in rows))
    for group, items in sorted(record["examples"].items()):
        print(f"  {group}:")
        for ex in items[:5]:
            text = "".join(f"[{t}]" if i == ex["max_pos"] else t for i, t in enumerate(ex["tokens"]))
            print(f"    {ex['max_act']:7.3f}  {text!r}")
