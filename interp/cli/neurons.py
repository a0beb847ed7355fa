"""Neuron commands: map neurons through the LM head, show one, verify by clamping.

    interp map-neurons --model smollm2-135m [--layers 0,5-7] [--top-k 20] [--directions up,gate,down]
    interp map-neurons --model smollm2-135m --backend ray [--address HOST:PORT] [--device cuda]
    interp show neuron smollm2-135m 12:345 [--format json]
    interp clamp --model smollm2-135m --neuron 12:345 --value 20 --prompt "I took my" [--generate 20]
    interp clamp-report --model smollm2-135m [--n 20] [--rank-by z|prob] [--format json] [--backend ray]
"""

from __future__ import annotations

import argparse
import json

from interp.cli.backends import add_job_arguments, job_options
from interp.cli.options import add_config_arguments, config_from_args


def _store_arg(parser) -> None:
    parser.add_argument("--store", default=None, metavar="PATH",
                        help="store root (default: <data root>/store; see --home / INTERP_HOME)")


def register(subparsers) -> None:
    from interp.jobs.neuron_map import MapConfig, parse_layers
    from interp.methods.neurons.clamping import ClampConfig

    mp = subparsers.add_parser("map-neurons", help="decode every MLP neuron through the LM head into the store")
    mp.add_argument("--model", action="append", required=True, help="model alias, hub id or local folder (repeatable)")
    add_config_arguments(mp, MapConfig, types={"layers": parse_layers},
                         choices={"reduction": ("auto", "kernel", "torch")},
                         rename={"layers": "--layers"})
    add_job_arguments(mp, unit="layer")
    mp.add_argument("--force", action="store_true", help="recompute layers already in the store")
    _store_arg(mp)
    mp.set_defaults(func=_map)

    neuron = _show_subparsers(subparsers).add_parser("neuron", help="decoded tokens of one neuron (from the store)")
    neuron.add_argument("model")
    neuron.add_argument("neuron", metavar="LAYER:INDEX")
    neuron.add_argument("--direction", default=None, help="only this direction (up, gate, down)")
    neuron.add_argument("--variant", default=None, help="only this variant (folded, raw)")
    neuron.add_argument("--format", choices=("table", "json"), default="table")
    _store_arg(neuron)
    neuron.set_defaults(func=_show)

    cl = subparsers.add_parser("clamp", help="clamp a neuron: dose-response vs random controls, KL, generation")
    cl.add_argument("--model", required=True)
    cl.add_argument("--neuron", required=True, metavar="LAYER:INDEX")
    cl.add_argument("--value", type=float, action="append", required=True,
                    help="clamp value (repeatable); one value V sweeps 0, V/4, V/2, V")
    cl.add_argument("--prompt", required=True)
    cl.add_argument("--target", default=None, help="token to track (default: the neuron's top decoded token)")
    add_config_arguments(cl, ClampConfig, only=("n_controls", "positions", "generate_tokens", "seed"),
                         rename={"n_controls": "--controls", "generate_tokens": "--generate"},
                         choices={"positions": ("all", "last")})
    cl.add_argument("--format", choices=("table", "json"), default="table")
    cl.add_argument("--device", default="auto", metavar="auto|cpu|cuda",
                    help="torch device of the model (auto: a GPU when one is visible)")
    _store_arg(cl)
    cl.set_defaults(func=_clamp)

    rep = subparsers.add_parser("clamp-report", help="clamp the most specialised mapped neurons vs controls")
    rep.add_argument("--model", required=True)
    rep.add_argument("--n", type=int, default=20, help="neurons to test")
    rep.add_argument("--rank-by", choices=("z", "prob"), default="z",
                     help="which neurons: highest top-logit z-score (default) or top-token probability (saturates)")
    rep.add_argument("--prompt", action="append", default=None, help="prompt (repeatable; default: a few generic ones)")
    rep.add_argument("--value", type=float, action="append", default=None, help="clamp value (repeatable)")
    add_config_arguments(rep, ClampConfig, only=("n_controls", "seed"), rename={"n_controls": "--controls"})
    rep.add_argument("--batch-size", type=int, default=4, help="neurons per unit of work")
    add_job_arguments(rep, unit="neuron batch")
    rep.add_argument("--format", choices=("table", "json"), default="table")
    _store_arg(rep)
    rep.set_defaults(func=_report)


def _show_subparsers(subparsers):
    """The sub-commands of ``interp show``, shared with other modules: get it or create it."""
    show = subparsers.choices.get("show")
    if show is None:
        show = subparsers.add_parser("show", help="show stored items")
        show.set_defaults(func=lambda args: (show.print_help(), 0)[1])
        return show.add_subparsers(dest="show_command", metavar="WHAT")
    # argparse keeps a parser's sub-commands in its (only) _SubParsersAction.
    return next(a for a in show._actions if isinstance(a, argparse._SubParsersAction))


def _open(args):
    from interp.paths import store_dir
    from interp.store import Store

    return Store(args.store if args.store else store_dir())


def parse_neuron(text: str) -> tuple[int, int]:
    """``"12:345"`` -> (12, 345)."""
    try:
        layer, index = text.split(":")
        return int(layer), int(index)
    except ValueError:
        raise ValueError(f"bad neuron {text!r}: use LAYER:INDEX, e.g. 12:345") from None


def _map(args) -> int:
    from interp.jobs.neuron_map import MapConfig, map_models

    config = config_from_args(MapConfig, args)
    jobs = job_options(args)
    summary = map_models(_open(args), args.model, config, backend=jobs["backend"], ray_address=jobs["address"],
                         force=args.force, device=jobs["device"])
    for model in summary.mapped:
        print(f"{model}: mapped layers {summary.mapped[model] or '-'}; already in the store: "
              f"{summary.skipped[model] or '-'}")
    print(f"run {summary.run_id} in {summary.seconds:.1f} s")
    return 0


def _show(args) -> int:
    from interp.models.registry import check_neuron_arg, store_model_name

    layer, index = parse_neuron(args.neuron)
    store = _open(args)
    check_neuron_arg(args.model, layer, index, store)
    model = store_model_name(args.model)
    where = {"model": model, "site": f"blocks.{layer}.mlp.hook_post", "kind": "neuron", "index": index, "source": ""}
    where.update({k: v for k, v in (("direction", args.direction), ("variant", args.variant)) if v})
    rows = store.read("feature_tokens", where=where)
    if rows.empty:
        raise ValueError(f"no decoded tokens for neuron {layer}:{index} of {model!r} in the store; "
                         f"run `interp map-neurons --model {args.model} --layers {layer}` first")
    if args.format == "json":
        out = {}
        for (d, v, end), g in rows.groupby(["direction", "variant", "end"], sort=True):
            cols = ["token_id", "token_str", "logit", "prob"]
            out.setdefault(f"{d}/{v}", {})[end] = g.sort_values("rank")[cols].to_dict("records")
        print(json.dumps({"model": model, "layer": layer, "index": index, "decodings": out}, indent=2))
        return 0
    print(f"{model}  neuron {layer}:{index}")
    for (d, v), g in rows.groupby(["direction", "variant"], sort=True):
        print(f"\n{d}/{v}")
        print(f"  {'top token':>18} {'logit':>8} {'prob':>7}    {'bottom token':>18} {'logit':>8} {'prob':>7}")
        top, bottom = (g[g["end"] == e].sort_values("rank") for e in ("top", "bottom"))
        for t, b in zip(top.itertuples(), bottom.itertuples()):
            print(f"  {t.token_str!r:>18} {t.logit:8.3f} {t.prob:7.4f}    {b.token_str!r:>18} {b.logit:8.3f} {b.prob:7.4f}")
    return 0


def _values(values: list[float]) -> tuple[float, ...]:
    if len(values) == 1:
        v = values[0]
        return (0.0, v / 4, v / 2, v)
    return tuple(values)


def _clamp(args) -> int:
    from interp.jobs.clamp_check import check_neuron
    from interp.methods.neurons.clamping import ClampConfig
    from interp.models import load_model
    from interp.models.registry import check_neuron_arg

    from interp.jobs.units import resolve_device

    device = resolve_device(args.device)  # before anything loads
    layer, index = parse_neuron(args.neuron)
    if not args.prompt.strip():
        raise ValueError(f"--prompt {args.prompt!r} is empty: give the text the clamp is measured on")
    store = _open(args)
    check_neuron_arg(args.model, layer, index, store)  # before the model loads
    config = config_from_args(ClampConfig, args, values=_values(args.value))
    adapter = load_model(args.model, device=device)
    target = adapter.token_id(args.target) if args.target else None
    r = check_neuron(store, adapter, layer, index, args.prompt, config, target)
    if args.format == "json":
        print(json.dumps({"target": adapter.decode([r.target_id]), **r.to_payload()}, indent=2))
        return 0
    print(f"neuron {layer}:{index}  target {adapter.decode([r.target_id])!r}  prompt {args.prompt!r}")
    print(f"p(target) unclamped {r.baseline_prob:.3e}  (log p {_logp(r.baseline_prob):.3f})")
    print(f"{'value':>8} {'p(target)':>10} {'log p':>8} {'controls mean':>14} {'KL neutral':>11}")
    for j, v in enumerate(r.values):
        controls = r.control_probs[:, j].mean() if len(r.control_probs) else float("nan")
        print(f"{v:8.2f} {r.target_probs[j]:10.3e} {_logp(r.target_probs[j]):8.3f} {controls:14.3e} {r.kl[j]:11.4f}")
    print(_verdict(r))
    if r.generation is not None:
        print(f"generation (clamped):   {r.generation!r}\ngeneration (unclamped): {r.baseline_generation!r}")
    return 0


def _logp(p: float) -> float:
    import math

    return math.log(p) if p > 0 else float("-inf")


def _verdict(r) -> str:
    """The rise, and a claim about the controls only when the permutation test finds one."""
    from interp.methods.neurons.clamping import ALPHA, MIN_CONTROLS

    n = len(r.control_rises)
    head = f"rise {r.rise:+.3e}"
    if not n:
        return f"{head}; no controls, so no verdict (give --controls >= {MIN_CONTROLS})"
    test = f"one-sided permutation test vs {n} random controls: p = {r.p_value:.3f}"
    if r.significant:
        return f"{head}; beats the random controls ({test} < {ALPHA})"
    floor = "" if n >= MIN_CONTROLS else f"; p < {ALPHA} needs --controls >= {MIN_CONTROLS}"
    return f"{head}; not significant ({test}{floor})"


def _report(args) -> int:
    from interp.jobs.clamp_check import REPORT_PROMPTS, check_specialised
    from interp.jobs.units import resolve_device, worker_model
    from interp.methods.neurons.clamping import ALPHA, MIN_CONTROLS, ClampConfig

    jobs = job_options(args)
    config = config_from_args(ClampConfig, args, neutral_prompts=(),
                              **({"values": tuple(args.value)} if args.value else {}))
    report = check_specialised(_open(args), args.model, args.n, tuple(args.prompt or REPORT_PROMPTS), config,
                               rank_by=args.rank_by, batch_size=args.batch_size, progress=True, **jobs)
    adapter = worker_model(args.model, resolve_device(args.device))  # the tokenizer, for the table
    table = report.table()
    table["target"] = [adapter.decode([t]) for t in table["target_id"]]
    if args.format == "json":
        print(json.dumps({"rank_by": args.rank_by, "fraction_beats_mean": report.fraction_beats_mean,
                          "fraction_significant": report.fraction_significant,
                          "fraction_beats_all": report.fraction_beats_all,
                          "neurons": table.to_dict("records")}, indent=2, default=str))
        return 0
    print(table.to_string(index=False))
    n_controls = config.n_controls
    print(f"\nclamping raises the decoded token more than the controls' mean in "
          f"{report.fraction_beats_mean:.0%} of {len(table)} neurons (more than every control: "
          f"{report.fraction_beats_all:.0%}); significant at p < {ALPHA} (one-sided permutation test vs "
          f"{n_controls} controls): {report.fraction_significant:.0%}"
          + ("" if n_controls >= MIN_CONTROLS else f" - with {n_controls} controls p >= {1 / (n_controls + 1):.3f}, "
             f"so none can be; use --controls >= {MIN_CONTROLS}"))
    return 0
