"""``interp label``: automatic labels of every neuron and dictionary latent of a model, from
its decoded top tokens (output label) and top activation examples (input label), in one write;
prints how often the two sources agree per layer (also stored as a `label_agreement` result).

    interp label --model smollm2-135m [--store PATH]
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("label", help="automatic input/output labels of every feature of a model",
                              description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--model", required=True, help="model name as stored (e.g. smollm2-135m)")
    p.add_argument("--store", default=None, metavar="PATH",
                   help="store root (default: <data root>/store; see --home / INTERP_HOME)")
    p.set_defaults(func=_run)


def format_agreement(table) -> list[str]:
    """One line per (kind, source, layer) of an agreement table."""
    lines = [f"{'kind':<11} {'layer':>5} {'features':>9} {'both':>6} {'agree':>6} {'share':>7}  source"]
    for r in table.itertuples():
        share = "-" if r.with_both == 0 else f"{r.share:.3f}"
        layer = "-" if r.layer is None or r.layer != r.layer else int(r.layer)
        lines.append(f"{r.kind:<11} {layer:>5} {r.features:>9} {r.with_both:>6} {r.agreeing:>6} {share:>7}  "
                     f"{r.source or '-'}")
    return lines


def _run(args) -> int:
    from interp.methods.labels.store import build_labels, write_labels
    from interp.paths import store_dir
    from interp.store import Store

    store = Store(args.store if args.store else store_dir())
    build = build_labels(store, args.model)
    run = write_labels(store, args.model, build)
    print("\n".join(format_agreement(build.agreement)))
    both = int(build.agreement["with_both"].sum())
    agreeing = int(build.agreement["agreeing"].sum())
    overall = f"{agreeing / both:.3f}" if both else "-"
    print(f"{len(build.labels):,} features labelled in {build.seconds:.1f} s; input and output labels share a "
          f"token for {agreeing:,} of the {both:,} features with both ({overall}); run {run}")
    return 0
