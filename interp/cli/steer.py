"""``interp steer``: default vs steered continuations of a prompt, same seed and sampling.

    interp steer --model smollm2-135m --feature 18:1036=8 --prompt "I went to the park with my"
    interp steer --model smollm2-135m --feature "smollm2-135m//blocks.12.mlp.hook_post/neuron/42=20:clamp" \\
        --feature "vector:dir.npy@blocks.6.hook_resid_post=4" --prompt "..." \\
        [--attention frozen,live] [--chat] [--kl] [--save] [--max-tokens 20] [--seed 0]

Each ``--feature`` is ``FEATURE[@SITE][=STRENGTH[:METHOD]]``: a stored feature key (neuron,
SAE / transcoder latent, ObsProp vector, probe direction), LAYER:INDEX for an MLP neuron, or
``vector:PATH`` / ``vector:0.1,0.2,...`` at a site; ``--strength`` and ``--method`` fill what a
spec leaves out. All of them steer together; see `interp.methods.steering`.
"""

from __future__ import annotations

from interp.cli.options import add_config_arguments, config_from_args


def register(subparsers) -> None:
    from interp.methods.steering import METHODS, GenerateConfig, SteeringConfig

    p = subparsers.add_parser("steer", help="default vs steered continuation of a prompt (same seed)",
                              description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--model", required=True, help="model alias, hub id or local folder")
    p.add_argument("--feature", required=True, action="append", metavar="SPEC",
                   help="FEATURE[@SITE][=STRENGTH[:METHOD]]; repeat to steer several directions at once")
    p.add_argument("--strength", type=float, default=None,
                   help="s for the specs that give none: added amount, clamp value or cap")
    p.add_argument("--method", default="add", help=f"method for the specs that give none: {' | '.join(METHODS)}")
    p.add_argument("--prompt", required=True)
    add_config_arguments(p, GenerateConfig)
    add_config_arguments(p, SteeringConfig, only=("attention", "chat", "kl", "concept_k"))
    p.add_argument("--save", action="store_true", help="store the run (a results row) and print its key")
    p.add_argument("--store", default=None, metavar="PATH",
                   help="store root, for stored features and --save (default: <data root>/store)")
    p.set_defaults(func=_run)


def _print(run, key: str | None) -> None:
    g = run.generate
    print(f"{run.model}  (temperature {g.temperature:g}, top-p {g.top_p:g}, seed {g.seed}, {g.max_tokens} tokens"
          f"{', chat template' if run.config.chat else ''})")
    for d in run.directions:
        tokens = ", ".join(repr(t) for t in d.concept.strings[:5]) or "-"
        print(f"  {d.label}  [{d.kind} at {d.site}]  {d.spec.method} {d.spec.strength:g}  concept: {tokens}")
    print(f"prompt:   {run.prompt!r}")
    print(f"default:  {run.default.text!r}")
    for mode, cont in run.steered.items():
        print(f"steered ({mode} attention):  {cont.text!r}")
    for mode, effect in run.side_effects.items():
        print(f"KL side effect ({mode}): {effect.mean:.4g} nats (mean over {len(effect.prompts)} neutral prompts)")
    if key is not None:
        print(f"saved: {key}")


def _run(args) -> int:
    from interp.methods.steering import GenerateConfig, SteeringConfig, parse_spec, run_steering
    from interp.methods.steering.store import save_run
    from interp.models import load_model
    from interp.paths import store_dir
    from interp.store import Store

    if not args.prompt.strip():
        raise ValueError(f"--prompt {args.prompt!r} is empty: give the text to continue")
    specs = [parse_spec(text, args.strength, args.method) for text in args.feature]
    generate = config_from_args(GenerateConfig, args)
    config = config_from_args(SteeringConfig, args)
    store = Store(args.store if args.store else store_dir())
    adapter = load_model(args.model)
    run = run_steering(adapter, args.prompt, specs, generate, config, store)
    _print(run, save_run(store, run) if args.save else None)
    return 0
