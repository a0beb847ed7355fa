"""``interp attribute``: which input tokens drive the model's next token (ReAGent and baselines).

    interp attribute --model smollm2-135m --prompt "The capital of France is"
    interp attribute --prompt "The nurse said that" --target " she" --contrast " he" --method ig
    interp attribute --prompt "..." --method reagent --replacer prediction --max-probe-steps 200
    interp attribute --prompt "..." --generate 5          # each generated token vs its prefix
    interp attribute --prompt "..." --neuron 5:123         # which tokens drive neuron 123 of block 5
    interp attribute --prompt "..." --method ig --device cuda

Scores (with Soft-NS / Soft-NC faithfulness unless --no-faithfulness) go to the store's
``attributions`` table: one row per model, method, prompt and target.
"""

from __future__ import annotations

import json

from interp.cli.backends import add_device_argument, device_option
from interp.cli.options import add_config_arguments, config_from_args
from interp.methods.attribution.reagent import ReagentConfig

_METHOD_HELP = ("reagent (default), ig / integrated_gradients, ixg / input_x_gradient, grad / gradient_norm, "
                "attention / attention_last, rollout / attention_rollout, occlusion, random")


def register(subparsers) -> None:
    p = subparsers.add_parser("attribute", help="token attribution of a prompt's next token (ReAGent, IG, ...)")
    p.add_argument("--model", default="smollm2-135m", help="model alias, hub id or local directory")
    p.add_argument("--prompt", required=True, help="the input text (BOS is prepended as the model expects)")
    p.add_argument("--method", default="reagent", help=_METHOD_HELP)
    p.add_argument("--target", default=None, help="token to explain (default: the model's next token), e.g. ' Paris'")
    p.add_argument("--contrast", default=None, help="foil token: explain p(target) - p(contrast)")
    p.add_argument("--neuron", default=None, metavar="LAYER:INDEX",
                   help="explain an MLP neuron's activation at the last position instead of a token")
    p.add_argument("--generate", type=int, default=0, metavar="N",
                   help="instead, generate N tokens greedily and attribute each to its prefix")
    # ReAGent's settings: one option per ReagentConfig field, its defaults and docs (seed seeds every method).
    add_config_arguments(p, ReagentConfig, choices={"replacer": ("uniform", "frequency", "prediction", "masked_lm"),
                                                    "importance": ("softmax", "minmax")})
    p.add_argument("--store", default=None, metavar="PATH", help="store root (default: <data root>/store)")
    p.add_argument("--no-faithfulness", action="store_true", help="skip the Soft-NS / Soft-NC scores")
    p.add_argument("--no-store", action="store_true", help="print only; do not write the store")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_device_argument(p)
    p.set_defaults(func=_attribute)


def _config(args):
    from interp.methods.attribution.registry import ALIASES, default_config

    if ALIASES.get(args.method, args.method) != "reagent":
        return default_config(args.method, args.seed)
    return config_from_args(ReagentConfig, args)


def _print(result, faith: dict | None, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"method": result.method, "target": result.target, "tokens": result.tokens,
                          "scores": [float(s) for s in result.scores], "faithfulness": faith}))
        return
    print(f"{result.method} towards {result.target}")
    top = max(float(result.scores.abs().max()), 1e-12)
    for token, score in zip(result.tokens, result.scores.tolist()):
        print(f"  {token!r:>20}  {score:+.4f}  {'#' * round(20 * abs(score) / top)}")
    if faith:
        label = f"{faith.get('convention', 'interp')} convention, {faith.get('n_masks')} masks"
        print(f"  faithfulness ({label}): " + ", ".join(f"{k} {v:.3f}" for k, v in faith.items()
                                                        if isinstance(v, float)))


def _neuron(adapter, args):
    from interp.methods.attribution.targets import neuron_target

    if args.target or args.contrast or args.generate:
        raise ValueError("--neuron replaces the token target; drop --target / --contrast / --generate")
    try:
        layer, index = (int(x) for x in args.neuron.split(":"))
    except ValueError:
        raise ValueError(f"--neuron takes LAYER:INDEX, e.g. 5:123; got {args.neuron!r}") from None
    return neuron_target(adapter, layer, index)


def _attribute(args) -> int:
    from interp.methods.attribution.registry import attribute, attribute_continuation
    from interp.methods.attribution.store import store_attribution
    from interp.models import load_model

    from interp.models.registry import check_neuron_arg

    if not args.prompt.strip():
        raise ValueError(f"--prompt {args.prompt!r} is empty: give the text whose next token is explained")
    args.device = device = device_option(args)  # before the model loads; the run records the device used
    if args.neuron is not None:
        from interp.cli.neurons import parse_neuron

        check_neuron_arg(args.model, *parse_neuron(args.neuron))  # before the model loads
    config = _config(args)
    adapter = load_model(args.model, device=device)
    target = args.target if args.neuron is None else _neuron(adapter, args)
    if args.generate:
        if args.target or args.contrast:
            raise ValueError("--generate attributes the model's own tokens; drop --target / --contrast")
        cont = attribute_continuation(adapter, args.prompt, args.generate, args.method, config)
        results = cont.results
        print("continuation:", repr("".join(cont.tokens[cont.prompt_len:])))
    else:
        results = [attribute(adapter, args.prompt, args.method, target, args.contrast, config)]
    if args.no_store:
        for result in results:
            _print(result, _faithfulness(args, adapter, result, target), args.json)
        return 0
    from interp.store import Store

    store = Store(args.store) if args.store else Store()
    with store.run("interp attribute", {**vars(args), "func": None}, seed=args.seed) as run_id:
        for result in results:
            faith = _faithfulness(args, adapter, result, target)
            _print(result, faith, args.json)
            prompt = adapter.decode(result.token_ids[1:] if result.token_ids[0] == adapter.info.bos_token_id
                                    else result.token_ids)
            store_attribution(store, run_id, adapter.store_name, prompt, result, faith)
    return 0


def _faithfulness(args, adapter, result, target) -> dict | None:
    """Soft-NS / Soft-NC of `result` unless turned off (they compare next-token distributions: no neurons)."""
    from interp.methods.attribution.faithfulness import FaithfulnessConfig, faithfulness
    from interp.methods.attribution.targets import check_tokens, resolve_target

    if args.no_faithfulness or args.neuron is not None:
        return None
    tokens = check_tokens(adapter, result.token_ids)
    resolved = resolve_target(adapter, tokens, target, args.contrast)
    return faithfulness(adapter, result, resolved, FaithfulnessConfig(seed=args.seed)).to_dict()
