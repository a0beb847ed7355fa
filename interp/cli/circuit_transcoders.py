"""Circuit-tracer transcoder sets on the command line: graphs from a set, import into the store, export.

    interp circuit graph --prompt "The capital of France is" --transcoders DIR
    interp circuit import-transcoders DIR --model smollm2-135m [--name PREFIX] [--replace]
    interp circuit export-transcoders DIR --model smollm2-135m [--dicts NAMES | --dicts random:D_SAE:K] [--replace]

A set is the folder circuit-tracer reads (``config.yaml`` + ``layer_<i>.safetensors``, see
`interp.methods.circuits.transcoder_set`), with one transcoder per layer of the model.
``--transcoders DIR`` (instead of ``--dicts``) builds a circuit or graph with the set as it is
on disk; ``import-transcoders`` stores each layer's transcoder as a dictionary named
``PREFIX-L<layer>`` (default PREFIX: ``<model>/<folder name>``), the way training stores its
own, so ``--dicts``, `transcoders_of` and the Dictionaries page see them; a graph built from
the folder names its transcoders the same way, so it is recorded as the same graph as one
built from the imported dictionaries. ``export-transcoders`` writes stored transcoders (default:
the model's, one per layer) as a set circuit-tracer loads.

Used by `interp.cli.circuit` (this module registers no command of its own).
"""

from __future__ import annotations

import re
from pathlib import Path


def add_arguments(parser) -> None:
    """The transcoder-set options of ``interp circuit``."""
    parser.add_argument("--transcoders", default=None, metavar="DIR",
                        help="a circuit-tracer transcoder set (folder with config.yaml) instead of --dicts")
    parser.add_argument("--name", default=None, metavar="PREFIX",
                        help="import-transcoders / --transcoders: dictionary names PREFIX-L<layer> "
                             "(default <model>/<folder name>)")
    parser.add_argument("--replace", action="store_true",
                        help="import-transcoders: overwrite stored dictionaries of the same names; "
                             "export-transcoders: overwrite a set in DIR")


def check_source(args, store=None) -> None:
    """--dicts and --transcoders exclude each other; a --transcoders folder must hold a readable set (no model needed)."""
    from interp.methods.circuits.transcoder_set import read_set_config

    if getattr(args, "transcoders", None) is None:
        return
    if args.dicts:
        raise ValueError("--dicts and --transcoders both name the transcoders; pass one of them")
    _check_dir(args.transcoders, "--transcoders")
    _check_layer_count(args, read_set_config(args.transcoders)[1], args.transcoders, store)


def _check_layer_count(args, files, directory, store=None) -> None:
    """The set's layers against the model's, where its shape is known without loading it."""
    from interp.methods.circuits.transcoder_set import check_layers
    from interp.models.registry import known_shape

    shape = known_shape(args.model, store)
    if shape is not None:
        check_layers(range(len(files)), shape.n_layers, args.model, f"transcoder set {directory}")


def _check_dir(directory, flag: str) -> None:
    if not str(directory).strip():
        raise ValueError(f"{flag} {directory!r} is empty: give the folder of a circuit-tracer transcoder set")
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"{flag} {directory}: no such folder (a transcoder set is a folder with config.yaml)")


def set_prefix(args, directory) -> str:
    """Dictionary-name prefix of the set in `directory`: --name, else ``<model>/<folder name>``."""
    from interp.models.registry import store_model_name

    if args.name is not None:
        if not args.name.strip("/ "):
            raise ValueError(f"--name {args.name!r} is empty: give a prefix such as smollm2-135m/my-set")
        return args.name
    folder = re.sub(r"[^A-Za-z0-9._-]", "_", Path(directory).resolve().name).lstrip(".") or "transcoders"
    return f"{store_model_name(args.model)}/{folder}"


def load_set(args, adapter) -> tuple[dict, dict[int, str]]:
    """({layer: transcoder}, {layer: name}) of the set at --transcoders, checked against `adapter`'s model."""
    from interp.methods.circuits.store import transcoder_set_names
    from interp.methods.circuits.transcoder_set import check_fits, import_transcoder_set

    transcoders, _ = import_transcoder_set(args.transcoders)
    check_fits(transcoders, adapter, f"transcoder set {args.transcoders}")
    names = transcoder_set_names(set_prefix(args, args.transcoders), len(transcoders))
    return transcoders, dict(enumerate(names))


def import_transcoders(args) -> int:
    """``interp circuit import-transcoders DIR``: every layer's transcoder as a stored dictionary."""
    from interp.methods.circuits.store import save_transcoders, stored_dictionaries, transcoder_set_names
    from interp.methods.circuits.transcoder_set import check_fits, import_transcoder_set, read_set_config
    from interp.models import load_model
    from interp.store.files import check_name_fits

    if not args.item:
        raise ValueError("interp circuit import-transcoders needs the set's folder: import-transcoders DIR")
    _check_dir(args.item, "import-transcoders")
    config, files = read_set_config(args.item)
    store = open_store(args)
    names = transcoder_set_names(set_prefix(args, args.item), len(files))
    for name in names:
        store.dictionary_dir(name)  # a StoreError (ValueError) naming an invalid name
        check_name_fits(name, store.root, what="dictionary name")
    _check_layer_count(args, files, args.item, store)
    taken = stored_dictionaries(store, names)
    if taken and not args.replace:
        raise ValueError(f"dictionar{'y' if len(taken) == 1 else 'ies'} {', '.join(map(repr, taken[:3]))}"
                         f"{' ...' if len(taken) > 3 else ''} already stored in {store.root}; pass --replace to "
                         "overwrite, or --name PREFIX for other names")
    adapter = load_model(args.model)
    transcoders, _ = import_transcoder_set(args.item)
    check_fits(transcoders, adapter, f"transcoder set {args.item}")
    origin = {"format": "circuit-tracer transcoder set", "directory": str(Path(args.item).resolve()),
              **{k: config.get(k) for k in ("model_name", "scan", "activation", "k") if config.get(k) is not None}}
    with store.run(f"interp circuit import-transcoders {args.item} --model {args.model}",
                   {"directory": origin["directory"], "names": names, "replace": bool(args.replace)}, seed=0) as run:
        save_transcoders(store, transcoders, adapter, names, run, origin, files)
    print(f"imported {len(names)} transcoders of {adapter.store_name} as {names[0]} .. {names[-1]} (run {run})")
    return 0


def export_transcoders(args) -> int:
    """``interp circuit export-transcoders DIR``: stored (or --dicts random:) transcoders as a circuit-tracer set."""
    from interp.methods.circuits.transcoder_set import CONFIG, check_fits, export_transcoder_set
    from interp.models import load_model

    if not args.item or not str(args.item).strip():
        raise ValueError("interp circuit export-transcoders needs the folder to write: export-transcoders DIR")
    if args.transcoders:
        raise ValueError("export-transcoders writes stored transcoders (--dicts); --transcoders names a set on disk")
    target = Path(args.item)
    if (target / CONFIG).exists() and not args.replace:
        raise ValueError(f"{target / CONFIG} exists; pass --replace to overwrite the set there")
    if target.exists() and not target.is_dir():
        raise ValueError(f"export-transcoders {target}: not a folder")
    store = open_store(args)
    check_dicts(args, store)
    adapter = load_model(args.model)
    transcoders, names = selected_transcoders(args, adapter, store)
    check_fits(transcoders, adapter, f"the transcoders {', '.join(sorted(set(names.values())))[:200]}")
    path = export_transcoder_set(transcoders, target, adapter.name, scan=f"{adapter.store_name}/interp")
    print(f"wrote {len(transcoders)} transcoders to {path}")
    return 0


def open_store(args):
    """The store of --store (default: the data root's)."""
    from interp.paths import store_dir
    from interp.store import Store

    return Store(args.store if args.store else store_dir())


def selected_transcoders(args, adapter, store):
    """({layer: transcoder}, {layer: name}) from --transcoders DIR, --dicts random:..., named --dicts or every stored one."""
    from interp.methods.circuits.transcoders import load_transcoders, random_transcoders, transcoders_of

    if getattr(args, "transcoders", None):
        return load_set(args, adapter)
    spec = args.dicts or ""
    if spec.startswith("random:"):
        parts = spec.split(":")[1:]
        try:
            d_sae, k = int(parts[0]), (int(parts[1]) if len(parts) > 1 else None)
        except (ValueError, IndexError):
            raise ValueError(f"--dicts {spec!r}: write random:D_SAE or random:D_SAE:K, e.g. random:2048:32") from None
        layers = range(adapter.info.n_layers)
        return random_transcoders(adapter, layers, d_sae, k), {layer: spec for layer in layers}
    names = [n for n in spec.split(",") if n] or transcoders_of(store, adapter.store_name)
    if not names:
        raise ValueError(f"no transcoders of {adapter.store_name} in store {store.root}; train some (interp train) "
                         "or pass --dicts random:D_SAE[:K] for a smoke test")
    return load_transcoders(store, names, adapter)


def check_dicts(args, store) -> None:
    """Named --dicts must be stored dictionaries of the model, a --transcoders set readable: refused before any loading."""
    from interp.models.registry import store_model_name

    check_source(args, store)
    names = [n for n in (args.dicts or "").split(",") if n]
    if not names or (args.dicts or "").startswith("random:"):
        return
    model = store_model_name(args.model)
    stored = store.read("dictionaries", where={"model": model}, columns=["name"])["name"].tolist()
    unknown = [n for n in names if n not in stored]
    if unknown:
        raise ValueError(f"unknown dictionar{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))} "
                         f"for model {model!r}; stored: {', '.join(stored) or 'none (train one with interp train)'}")
