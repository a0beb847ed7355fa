"""``interp train``, ``interp sweep`` and ``interp show feature``: sparse dictionaries.

    interp train --kind transcoder --model smollm2-135m --layer 15 --arch topk --k 32 --tokens 200000
    interp train --kind sae --model smollm2-135m --layer 15 --site blocks.15.hook_resid_post --arch relu --l1 0.05
    interp train --kind sae --model smollm2-135m --layer 15 --arch batchtopk --k 16 32 64 --tokens 200000
    interp train --kind transcoder --model smollm2-135m --layer 0-29 --k 16 32 --backend ray [--address HOST:PORT]
    interp sweep --model smollm2-135m --layer 15 --ks 8 16 32 --tokens 200000
    interp sweep --model smollm2-135m --layer 15 --ks 8 16 32 --backend ray [--address HOST:PORT]
    interp show feature smollm2-135m smollm2-135m/L15-transcoder-topk-k32-x8-200k 12 --format json

The long recipe (2M tokens at layer 15 took 45 minutes of a loaded 2-core CPU, see
benchmarks/bench_dictionary_tokens.py): activations are computed from the model chunk by
chunk as training goes, and a checkpoint is written every 50 steps, so the same command
started again after an interruption resumes where it stopped:

    interp train --kind transcoder --model smollm2-135m --layer 15 --k 16 --expansion 4 --skip --tokens 2000000

Several ``--k`` values train one dictionary each, together, on one pass of the model over the
corpus (`interp.jobs.dictionaries.train_and_publish_many`). Several layers (``--layer 0,5-7``
or ``all``) are one job unit each (`interp.jobs.training`), here or as Ray tasks; a dictionary
already stored with the same settings is not trained again (``--force`` retrains it). Flags
map one to one onto `TrainConfig`, `DataConfig` and `SweepConfig`.
"""

from __future__ import annotations

import argparse
import json

from interp.cli.backends import add_job_arguments, job_options
from interp.cli.options import add_config_arguments, config_from_args


_TRAIN_COMMON = ("arch", "expansion", "train_tokens", "batch_size", "lr", "warmup_steps", "b_dec_init", "seed")
_DATA_COMMON = ("corpus", "activation_tokens", "ctx_len", "eval_tokens", "skip_positions")


def _common(parser: argparse.ArgumentParser, *, many_layers: bool = False) -> None:
    from interp.dictionaries.train_config import ARCHS, TrainConfig
    from interp.jobs.dictionaries import DataConfig

    parser.add_argument("--model", default="smollm2-135m", help="model alias, hub id or local directory")
    if many_layers:
        parser.add_argument("--layer", "--layers", dest="layer", required=True, metavar="LAYERS",
                            help="block index (the MLP studied), or several: 0,5-7 or all (one job unit per layer)")
    else:
        parser.add_argument("--layer", type=int, required=True, help="block index (the MLP studied)")
    # The command line's recipe (lr, batch, warm-up, b_dec start, dead-latent handling) is the one
    # measured for the main job's transcoders; the configs' own defaults stay what a library caller gets.
    add_config_arguments(parser, TrainConfig, only=_TRAIN_COMMON, rename={"train_tokens": "--tokens"},
                         choices={"arch": tuple(ARCHS), "b_dec_init": ("mean", "geometric_median")},
                         defaults={"lr": 2e-3, "batch_size": 256, "warmup_steps": 50, "b_dec_init": "geometric_median"})
    add_config_arguments(parser, DataConfig, only=_DATA_COMMON, dest_prefix="data_", defaults={"eval_tokens": 10_240})
    parser.add_argument("--store", default=None, metavar="PATH", help="store root (default: <data root>/store)")


def register(subparsers) -> None:
    from interp.dictionaries.train_config import TrainConfig
    from interp.jobs.dictionaries import DataConfig

    train = subparsers.add_parser("train", help="train a transcoder or SAE, evaluate it, store it with its features")
    train.add_argument("--kind", choices=("transcoder", "sae"), required=True)
    _common(train, many_layers=True)
    train.add_argument("--site", default=None, help="SAE hook (default: the layer's MLP output)")
    sparsity = train.add_mutually_exclusive_group()
    # k and l1 default to None here so that giving the one the arch does not use is an error.
    sparsity.add_argument("--k", type=int, nargs="+", default=None,
                          help=f"active latents per token (topk, batchtopk, matryoshka_batchtopk; default "
                               f"{TrainConfig.k}); several values train one dictionary each on one model pass")
    sparsity.add_argument("--l1", type=float, default=None,
                          help=f"sparsity coefficient (relu/jumprelu; default {TrainConfig.l1})")
    # A command-line run is long and can be interrupted: it checkpoints by default (the config's default is none).
    # ... and TopK resampling as in the main job's recipe (`interp.jobs.recipe.transcoder_recipe`).
    add_config_arguments(train, TrainConfig, only=("skip", "checkpoint_every", "threshold_lr", "matryoshka_fractions",
                                                   "topk_resample_every", "topk_resample_scale",
                                                   "topk_resample_bias", "topk_resample_max_share"),
                         defaults={"checkpoint_every": 50, "topk_resample_every": 50, "topk_resample_scale": 1.5})
    add_config_arguments(train, DataConfig, only=("dashboard_tokens",), dest_prefix="data_")
    train.add_argument("--name", default=None, help="store name (default: derived from the settings)")
    train.add_argument("--force", action="store_true", help="train again dictionaries stored with these settings")
    add_job_arguments(train, unit="layer")
    train.set_defaults(func=_train)

    sweep = subparsers.add_parser("sweep", help="transcoders vs SAEs at several sparsities (L0 vs spliced CE)")
    _common(sweep)
    sweep.add_argument("--ks", type=int, nargs="+", default=[8, 16, 32], help="TopK sparsities")
    sweep.add_argument("--l1s", type=float, nargs="+", default=[], help="sparsity coefficients (relu/jumprelu)")
    sweep.add_argument("--kinds", nargs="+", choices=("transcoder", "sae"), default=["transcoder", "sae"])
    sweep.add_argument("--format", choices=("table", "json"), default="table")
    add_job_arguments(sweep, unit="dictionary")
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


def _configs(args, kind: str, k: int | None = None, l1: float | None = None):
    """TrainConfig and DataConfig from the options (a sweep keeps no checkpoints and no dashboards)."""
    from interp.jobs.dictionaries import DataConfig
    from interp.dictionaries.train_config import TrainConfig

    extra = {} if hasattr(args, "checkpoint_every") else {"checkpoint_every": 0, "skip": False}
    train = config_from_args(TrainConfig, args, kind=kind, k=k or TrainConfig.k,
                             l1=l1 if l1 is not None else TrainConfig.l1,
                             dead_after_tokens=min(50_000, max(256, args.train_tokens // 10)), aux_k=512,
                             aux_coefficient=0.5, **extra)
    data = config_from_args(DataConfig, args, dest_prefix="data_", seed=args.seed,
                            **({} if hasattr(args, "data_dashboard_tokens") else {"dashboard_tokens": 0}))
    return train, data


def _train(args) -> int:
    from interp.dictionaries.train_config import K_ARCHS
    from interp.jobs.neuron_map import parse_layers
    from interp.jobs.training import train_layers
    from interp.models.registry import known_shape
    from interp.store.files import check_name_fits

    if args.arch in K_ARCHS and args.l1 is not None:
        raise ValueError(f"--l1 is for --arch relu/jumprelu; a {args.arch} dictionary takes --k")
    if args.arch not in K_ARCHS and args.k is not None:
        raise ValueError(f"--k is for --arch {'/'.join(K_ARCHS)}; a {args.arch} dictionary takes --l1")
    ks = args.k or [None]
    if len(set(ks)) != len(ks) or (len(ks) > 1 and args.name):
        raise ValueError(f"--k {' '.join(map(str, ks))}: give distinct values, and no --name with several")
    store = _store(args)
    shape = known_shape(args.model, store)  # None: checked against the model once it loads
    layers = parse_layers(args.layer, shape.n_layers if shape else None)  # None: every layer
    if (layers is None or len(layers) > 1) and (args.name or args.site):
        raise ValueError(f"--layer {args.layer}: --name and --site name one dictionary; give one layer with them")
    if args.name:  # refused now, not after training
        check_name_fits(args.name, store.root, what="--name")
    jobs = job_options(args)
    trains = [_configs(args, args.kind, k, args.l1)[0] for k in ks]
    data = _configs(args, args.kind, ks[0], args.l1)[1]
    model = args.model
    if jobs["backend"] == "local":  # loaded here, so a bad name fails before the job opens a run
        from interp.jobs.units import resolve_device
        from interp.models import load_model

        model = load_model(args.model, device=resolve_device(jobs.pop("device")))
    for trained in train_layers(model, store, trains, layers, data=data, site=args.site, name=args.name,
                                force=args.force, **jobs):
        _print_trained(trained)
    return 0


def _print_trained(trained) -> None:
    m = trained.metrics
    print(f"{trained.name}: {trained.site_in} -> {trained.site_out}"
          + ("" if trained.trained else "  (already stored with these settings; --force trains it again)"))
    print(f"  L0 {m['l0']:.1f}  FVU {m['fvu']:.3f}  CE clean {m['ce_clean']:.3f}  spliced {m['ce_spliced']:.3f}  "
          f"zero-abl {m['ce_zero_ablation']:.3f}  CE recovered {m['ce_recovered']:.3f} "
          f"(mean-abl {m['ce_recovered_mean']:.3f})  KL {m['kl']:.4f}  dead {m['dead_fraction']:.1%}  "
          f"dense {m['dense_fraction']:.1%}  ({m['n_tokens']:,} held-out tokens)")
    for key, (lo, hi) in m.get("intervals", {}).items():
        print(f"  95% interval {key}: [{lo:.3f}, {hi:.3f}]")


def _sweep(args) -> int:
    from interp.jobs.dictionaries import SweepConfig, run_sweep

    train, data = _configs(args, "transcoder")
    config = SweepConfig(layer=args.layer, ks=tuple(args.ks), l1s=tuple(args.l1s), kinds=tuple(args.kinds),
                         train=train, data=data)
    jobs = job_options(args)
    result = run_sweep(args.model, _store(args), config, **jobs)
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
            f"it has no stored feature data (trained with --dashboard-tokens 0?); write it with " \
            f"interp dashboards --model {args.model} --dictionary {args.dictionary}"
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
