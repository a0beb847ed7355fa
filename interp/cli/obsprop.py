"""``interp obsprop``: ObsProp feature vectors of an observable, and what carries them.

    interp obsprop --observable " she" -" he" --prompts prompts.txt
    interp obsprop --observable '0.5*" great" +0.5*" excellent" -" bad"' --mlp-method linear
    interp obsprop --observable " she" -" he" --path L20H3 M26 --path embed L0H1
    interp obsprop-rank --observable " she" -" he" --component M26 --prompts prompts.txt
    interp obsprop --observable " she" -" he" --prompts prompts.txt --device cuda
    interp obsprop-study                                # gendered-pronoun study, stored
    interp obsprop-efficiency --tasks code sentiment    # ObsProp vs probe vs diff-of-means

Observable terms are ``[+|-][weight*]token``; the shell turns ``" she" -" he"`` into the two
terms `` she`` and ``- he``. A token without a leading space that starts with ``-`` must be
quoted inside the term (``'-"-"'``), or give the whole observable as one quoted string.
"""

from __future__ import annotations

import json
from pathlib import Path

from interp.cli.backends import add_device_argument, device_option
from interp.cli.options import add_config_arguments, config_from_args


def register(subparsers) -> None:
    from interp.methods.obsprop.efficiency import EfficiencyConfig

    common = _common()
    p = subparsers.add_parser("obsprop", parents=[common], help="ObsProp feature vectors of an observable",
                              description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--path", action="append", nargs="+", default=[], metavar="COMPONENT",
                   help="a multi-hop path from input to logits, e.g. --path L3H5 M7 (repeatable)")
    p.add_argument("--top", type=int, default=20, help="components to print")
    p.add_argument("--name", default=None, help="store source name (default: from the observable)")
    p.add_argument("--no-store", action="store_true", help="compute and print only")
    p.add_argument("--replace", action="store_true",
                   help="overwrite a source that holds vectors of another configuration (refused otherwise)")
    p.add_argument("--html", default=None, metavar="FILE", help="write the ranking figure as HTML")
    p.add_argument("--json", action="store_true", help="print the ranking as JSON")
    p.set_defaults(func=_obsprop)

    r = subparsers.add_parser("obsprop-rank", parents=[common],
                              help="rank neurons / dictionary latents by alignment with an ObsProp vector")
    r.add_argument("--component", required=True, help="component whose input-site vector is used: L3H5, M7, embed")
    r.add_argument("--kinds", nargs="+", default=["neuron", "transcoder", "sae"], help="feature kinds to rank")
    r.add_argument("--metric", choices=("cosine", "coupling"), default="cosine")
    r.add_argument("--top", type=int, default=20)
    r.set_defaults(func=_rank)

    s = subparsers.add_parser("obsprop-study", help="the gendered-pronoun ObsProp study (stored)")
    s.add_argument("--model", default="smollm2-135m")
    s.add_argument("--store", default=None, metavar="PATH", help="store root (default: <data root>/store)")
    s.add_argument("--n-reference", type=int, default=8)
    s.add_argument("--top-ablation", type=int, default=20)
    s.add_argument("--replace", action="store_true",
                   help="overwrite a study stored under the same source with another configuration")
    s.set_defaults(func=_study)

    e = subparsers.add_parser("obsprop-efficiency", help="data efficiency: ObsProp vs probe vs difference of means")
    e.add_argument("--model", default="smollm2-135m")
    e.add_argument("--store", default=None, metavar="PATH", help="store root (default: <data root>/store)")
    e.add_argument("--tasks", nargs="+", default=["pronoun", "code", "sentiment"])
    add_config_arguments(e, EfficiencyConfig)  # --ks 1,2,4 --seeds --component --batch-size
    e.add_argument("--html", default=None, metavar="DIR", help="write one figure per task as HTML here")
    e.set_defaults(func=_efficiency)


def _common():
    import argparse

    from interp.methods.obsprop.propagation import ObsPropConfig

    c = argparse.ArgumentParser(add_help=False)
    c.add_argument("--model", default="smollm2-135m", help="model alias, hub id or local directory")
    c.add_argument("--observable", nargs="+", required=True, metavar="TERM",
                   help='e.g. " she" -" he"  or  0.5*" great" -" bad"')
    c.add_argument("--prompts", default=None, metavar="FILE", help="reference prompts, one per line")
    c.add_argument("--mlp-method", choices=("gradient", "linear"), default=None,
                   help="MLP crossing (default: gradient with --prompts, linear without)")
    add_config_arguments(c, ObsPropConfig, only=("positions",), choices={"positions": ("last", "all")})
    c.add_argument("--store", default=None, metavar="PATH", help="store root (default: <data root>/store)")
    add_device_argument(c)
    return c


def _setup(args):
    from interp.methods.obsprop.observables import parse_observable
    from interp.methods.obsprop.propagation import ObsPropConfig
    from interp.models import load_model

    adapter = load_model(args.model, device=device_option(args))
    spec = args.observable[0] if len(args.observable) == 1 and args.observable[0].lstrip()[:1] in "\"'" else args.observable
    obs = parse_observable(adapter, spec)
    prompts = None
    if args.prompts:
        path = Path(args.prompts)
        if not path.is_file():
            raise FileNotFoundError(f"--prompts {args.prompts!r} is not a file (one prompt per line)")
        prompts = [line for line in path.read_text().splitlines() if line.strip()]
        if not prompts:
            raise ValueError(f"--prompts {args.prompts!r} has no non-empty lines")
    method = args.mlp_method or ("gradient" if prompts else "linear")
    return adapter, obs, prompts, config_from_args(ObsPropConfig, args, mlp_method=method)


def _open_store(args):
    from interp.paths import store_dir
    from interp.store import Store

    return Store(args.store if args.store else store_dir())


def _obsprop(args) -> int:
    from interp.methods.obsprop.propagation import obsprop, path_vector
    from interp.methods.obsprop.store import Provenance, check_source, save_obsprop, store_source

    adapter, obs, prompts, config = _setup(args)

    def compute():
        result = obsprop(adapter, obs, prompts, config)
        return result, tuple(path_vector(adapter, obs, p, prompts, config) for p in args.path)

    if args.no_store:
        result, paths = compute()
    else:
        store = _open_store(args)
        source = args.name or store_source(obs.name)
        provenance = Provenance.of(obs, config, prompts)
        check_source(store, adapter.store_name, source, provenance, args.replace)  # before the work
        command = "interp obsprop --model {} --observable {}".format(args.model, " ".join(repr(t) for t in args.observable))
        with store.run(command, {"observable": obs.to_record(), "mlp_method": config.mlp_method,
                                 "positions": config.positions, "paths": [list(p) for p in args.path],
                                 "n_prompts": len(prompts or []), "source": source, "replace": args.replace,
                                 "config_hash": provenance.config_hash}) as run_id:
            result, paths = compute()
            source = save_obsprop(store, adapter, result, run_id, source, paths, prompts=prompts, replace=args.replace)
    ranking = result.ranking()
    if args.json:
        print(json.dumps({"observable": obs.to_record(), "mlp_method": config.mlp_method,
                          "ranking": ranking.head(args.top).to_dict("records"),
                          "paths": [{"path": fv.label, "site": fv.site, "norm": fv.norm} for fv in paths]}, indent=2))
    else:
        print(f"observable {obs.name}  (MLPs: {config.mlp_method}, {result.n_reference} reference positions)")
        print(ranking.head(args.top)[["component", "site", "norm"]].to_string(index=False))
        for fv in paths:
            print(f"path {fv.label}: site {fv.site}, norm {fv.norm:.3f}")
    if not args.no_store:
        print(f"stored {len(result.vectors) + len(paths)} obsprop vectors as source {source!r} (run {run_id})")
    if args.html:
        from interp.viz.obsprop import component_ranking_figure

        component_ranking_figure(ranking, title=f"ObsProp feature norms: {obs.name}").write_html(args.html)
    return 0


def _rank(args) -> int:
    from interp.methods.obsprop.propagation import path_vector
    from interp.methods.obsprop.known_features import rank_known_features

    adapter, obs, prompts, config = _setup(args)
    fv = path_vector(adapter, obs, [args.component], prompts, config)
    table = rank_known_features(adapter, fv.vector, fv.site, _open_store(args), args.metric, args.top, tuple(args.kinds))
    print(f"{obs.name} at {fv.site} ({fv.label}, ||y|| = {fv.norm:.3f}); top {args.top} by |{args.metric}|")
    print(table.to_string(index=False) if len(table) else "(no candidate features)")
    return 0


def _study(args) -> int:
    from interp.jobs.obsprop_study import pronoun_study
    from interp.models import load_model

    study = pronoun_study(load_model(args.model), _open_store(args), args.n_reference, args.top_ablation, progress=True,
                          replace=args.replace)
    print(study.ranking.head(10).to_string(index=False))
    print(f"norm approximation: mean cosine {study.angles.mean_cos:.5f}")
    print(f"Spearman(norm, |ablation effect|) = {study.ablation.spearman_norm:.3f}; "
          f"Spearman(|direct|, |ablation effect|) = {study.ablation.spearman_direct:.3f}; "
          f"heads only: Spearman(norm, |effect|) = {study.ablation.spearman_heads:.3f}")
    print(study.couplings.to_string(index=False))
    if study.efficiency is not None:
        print(study.efficiency.summary().to_string(index=False))
    print(f"stored as run {study.run_id}")
    return 0


def _efficiency(args) -> int:
    from interp.jobs.obsprop_study import claims
    from interp.methods.obsprop.efficiency import EfficiencyConfig
    from interp.models import load_model

    results = claims(load_model(args.model), _open_store(args), tuple(args.tasks),
                     config_from_args(EfficiencyConfig, args), progress=True)
    for task, res in results.items():
        print(f"== {task} ({res.component} input; true-observable AUROC {res.ceiling_auroc:.3f})")
        print(res.summary().to_string(index=False))
        if args.html:
            from interp.viz.obsprop import data_efficiency_figure

            Path(args.html).mkdir(parents=True, exist_ok=True)
            data_efficiency_figure(res.table, title=task, ceiling=res.ceiling_auroc).write_html(
                str(Path(args.html) / f"obsprop_efficiency_{task}.html"))
    return 0
