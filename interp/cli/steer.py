"""``interp steer``: default vs steered continuation of a prompt, same seed and sampling.

    interp steer --model smollm2-135m --feature "smollm2-135m//blocks.12.mlp.hook_post/neuron/42" \
        --strength 20 --prompt "I went to the" [--method add|clamp|cap] [--max-tokens 20] [--seed 0]
    interp steer --model smollm2-135m --feature 12:42 --strength 20 --prompt "..."   # LAYER:INDEX neuron

Neurons and stored dictionary latents (SAE / transcoder) can be steered; see
`interp.methods.steering.steering` for the three methods.
"""

from __future__ import annotations

from interp.cli.options import add_config_arguments, config_from_args


def register(subparsers) -> None:
    from interp.methods.steering import METHODS, GenerateConfig

    p = subparsers.add_parser("steer", help="default vs steered continuation of a prompt (same seed)",
                              description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--model", required=True, help="model alias, hub id or local folder")
    p.add_argument("--feature", required=True, metavar="KEY",
                   help="feature key model/source/site/kind/index, or LAYER:INDEX for an MLP neuron")
    p.add_argument("--strength", type=float, required=True, help="s: added amount, clamp value or cap")
    p.add_argument("--prompt", required=True)
    p.add_argument("--method", choices=METHODS, default="add", help="add (default), clamp or cap")
    add_config_arguments(p, GenerateConfig)
    p.add_argument("--store", default=None, metavar="PATH",
                   help="store root, for dictionary latents and stored keys (default: <data root>/store)")
    p.set_defaults(func=_run)


def _feature(store, adapter, key: str):
    from interp.cli.neurons import parse_neuron
    from interp.features import FeatureId
    from interp.store import read

    if "/" not in key:
        layer, index = parse_neuron(key)
        return FeatureId(adapter.store_name, adapter.sites(adapter.check_layer(layer)).mlp_hidden, "neuron", index)
    try:
        return read.parse_key(store, key)
    except ValueError:
        parts = key.strip("/").split("/")
        if len(parts) >= 4 and parts[-2] == "neuron" and parts[-1].isdigit():  # a neuron needs no stored row
            return FeatureId(adapter.store_name, parts[-3], "neuron", int(parts[-1]))
        raise


def steer_for(store, adapter, fid):
    """The `Steer` of a neuron or a stored dictionary latent."""
    from interp.methods.steering import latent_steer, neuron_steer
    from interp.sites import layer_of

    kind = fid.kind.value
    if kind == "neuron":
        layer = layer_of(fid.site)
        if layer is None or adapter.sites(layer).mlp_hidden != fid.site:
            raise ValueError(f"neuron site {fid.site!r} is not an MLP hidden site (blocks.L.mlp.hook_post)")
        return neuron_steer(adapter, layer, fid.index)
    if kind in ("sae", "transcoder"):
        from interp.dictionaries.io import load_dictionary_dir

        rows = store.read("dictionaries", where={"name": fid.source})
        if rows.empty:
            raise ValueError(f"no dictionary {fid.source!r} in the store {store.root}; steer a neuron or a stored latent")
        row = rows.iloc[0].to_dict()
        dictionary, meta = load_dictionary_dir(store.dictionary_folder(fid.source, row.get("path")))
        read_site = adapter.check_site(row.get("site") or meta.get("hook_name"))
        write_site = adapter.check_site(row.get("hook_out") or meta.get("hook_name_out") or read_site)
        return latent_steer(dictionary.eval(), fid.index, read_site, write_site)
    raise ValueError(f"cannot steer a {kind} feature here: give an MLP neuron or a stored SAE/transcoder latent")


def _run(args) -> int:
    from interp.methods.steering import GenerateConfig, compare
    from interp.models import load_model
    from interp.paths import store_dir
    from interp.store import Store

    if not args.prompt.strip():
        raise ValueError(f"--prompt {args.prompt!r} is empty: give the text to continue")
    config = config_from_args(GenerateConfig, args)
    store = Store(args.store if args.store else store_dir())
    adapter = load_model(args.model)
    fid = _feature(store, adapter, args.feature)
    result = compare(adapter, steer_for(store, adapter, fid), args.prompt, args.strength, args.method, config)
    print(f"{fid.key}  {args.method} {args.strength:g}  (temperature {config.temperature:g}, top-p "
          f"{config.top_p:g}, seed {config.seed}, {config.max_tokens} tokens)")
    print(f"prompt:   {args.prompt!r}")
    print(f"default:  {result.default!r}")
    print(f"steered:  {result.steered!r}")
    return 0
