"""Steering: default vs steered continuations of a prompt, several features at once, frozen or
live attention; a saved run reopens at ``?run=KEY``, a feature opens at ``?feature=KEY&strength=S``."""

import streamlit as st

from app import state
from interp.methods.steering import METHODS, GenerateConfig, SteeringConfig, parse_spec
from interp.methods.steering.directions import SPEC_FORM
from interp.viz import steering as steering_viz

ATTENTION_CHOICES = {"live": ("live",), "frozen": ("frozen",), "frozen and live": ("frozen", "live")}


def _defaults(stored) -> dict:
    """The form's starting values: a stored run's settings, else the URL's feature(s) and strength(s)."""
    if stored is not None:
        g, c = stored.generate, stored.config
        attention = next(k for k, v in ATTENTION_CHOICES.items() if v == c.attention)
        return {"model": stored.model, "specs": "\n".join(d.spec.text() for d in stored.directions),
                "prompt": stored.prompt, "chat": c.chat, "kl": c.kl, "attention": attention,
                "temperature": g.temperature, "top_p": g.top_p, "max_tokens": g.max_tokens, "seed": g.seed}
    keys = st.query_params.get_all("feature")
    strengths = st.query_params.get_all("strength")
    lines = [k + (f"={strengths[i]}" if i < len(strengths) else "") for i, k in enumerate(keys)]
    model = st.query_params.get("model") or next((m for m in map(state.feature_model, keys) if m), None)
    return {"model": model or state.default_model(), "specs": "\n".join(lines),
            "prompt": st.query_params.get("prompt", "I went to the park with my"), "chat": False, "kl": True,
            "attention": "frozen and live", "temperature": 0.7, "top_p": 0.9, "max_tokens": 20, "seed": 0}


def _form(d: dict):
    """The settings form; returns (model, prompt, specs, GenerateConfig, SteeringConfig) on submit, else None."""
    with st.form("steer"):
        c1, c2 = st.columns([1, 3])
        model_name = c1.text_input("Model", value=d["model"], help="a model alias, local model directory or hub id")
        prompt = c2.text_input("Prompt", value=d["prompt"])
        specs = st.text_area("Directions, one per line", value=d["specs"], help=f"Each line: {SPEC_FORM}",
                             placeholder="smollm2-135m//blocks.18.mlp.hook_post/neuron/1036=8")
        c1, c2, c3, c4 = st.columns(4)
        method = c1.selectbox("Method (lines without one)", METHODS)
        attention = c2.radio("Attention", list(ATTENTION_CHOICES), index=list(ATTENTION_CHOICES).index(d["attention"]))
        chat = c3.checkbox("Chat template", value=d["chat"], help="wrap the prompt as one user turn")
        kl = c4.checkbox("KL side effect", value=d["kl"], help="KL(clean || steered) on neutral prompts")
        c1, c2, c3, c4 = st.columns(4)
        temperature = c1.number_input("Temperature", 0.0, 5.0, float(d["temperature"]), 0.1)
        top_p = c2.number_input("Top-p", 0.01, 1.0, float(d["top_p"]), 0.05)
        max_tokens = c3.number_input("Max tokens", 1, 200, int(d["max_tokens"]))
        seed = c4.number_input("Seed", 0, 2**31 - 1, int(d["seed"]))
        if not st.form_submit_button("Steer", type="primary"):
            return None
    lines = [line for line in specs.splitlines() if line.strip()]
    parsed = [parse_spec(line, method=method) for line in lines]
    return (model_name, prompt, parsed, GenerateConfig(int(max_tokens), float(temperature), float(top_p), int(seed)),
            SteeringConfig(attention=ATTENTION_CHOICES[attention], chat=chat, kl=kl))


def _show(run) -> None:
    """The run: its directions, the continuations side by side, the concept curve, the KL side effect."""
    st.dataframe([{"direction": d.label, "kind": d.kind, "site": d.site, "method": d.spec.method,
                   "strength": d.spec.strength, "concept tokens": ", ".join(map(repr, d.concept.strings[:6]))}
                  for d in run.directions], hide_index=True, width="stretch")
    g = run.generate
    st.caption(f"Prompt {run.prompt!r}{' (chat template)' if run.config.chat else ''}; temperature {g.temperature:g}, "
               f"top-p {g.top_p:g}, {g.max_tokens} tokens, seed {g.seed} - the same for every continuation.")
    columns = st.columns(1 + len(run.steered))
    for col, (title, cont) in zip(columns, [("Default", run.default)] + [
            (f"Steered, {mode} attention", c) for mode, c in run.steered.items()]):
        col.markdown(f"**{title}**")
        col.code(cont.text, language=None, wrap_lines=True)
        col.caption("samples a concept token" if cont.hits(run.concept_ids) else "no concept token sampled")
    st.plotly_chart(steering_viz.concept_probability_figure(run), width="stretch")
    if run.side_effects:
        cols = st.columns(len(run.side_effects))
        for col, (mode, effect) in zip(cols, run.side_effects.items()):
            col.metric(f"KL side effect ({mode} attention)", f"{effect.mean:.4g} nats")
        st.dataframe(steering_viz.side_effect_frame(run), hide_index=True, width="stretch")


with state.page():
    st.title("Steering")
    run_key = st.query_params.get("run")
    stored = state.query("steering_run", run_key) if run_key else None
    if stored is not None:
        st.info(f"Saved steering run `{run_key}`; change the settings below and steer again to compare.")
        _show(stored)
        st.divider()

    with state.guard("Cannot steer: "):
        submitted = _form(_defaults(stored))
        if submitted is not None:
            model_name, prompt, specs, generate, config = submitted
            if not specs:
                raise ValueError(f"no direction given: write one per line as {SPEC_FORM}")
            if state.model(model_name) is not None:
                with st.spinner("Generating the default and steered continuations..."):
                    state.remember("steering_run", state.steer(model_name, prompt, specs, generate, config))
                    state.remember("steering_saved", None)

    run = state.recall("steering_run")
    if run is not None:
        st.subheader("This run")
        _show(run)
        if st.button("Save run", key="save_run"):
            state.remember("steering_saved", state.save_steering_run(run))
        saved = state.recall("steering_saved")
        if saved:
            st.success(f"Saved as `{saved}`: [reopen this run]({state.steering_link(run=saved)})")
    elif stored is None:
        st.info("Pick features (one per line), a prompt and sampling settings, then press Steer "
                "(the same from the command line: `interp steer --help`).")
