"""The steering workbench on a tiny model: edits that must change nothing, the exact cap, frozen
attention, several directions at once, the KL side effect, stored runs, directions of every kind."""

import numpy as np
import pytest
import torch

from interp.methods.steering import (DirectionSpec, Edit, GenerateConfig, SteeringConfig, concept_counts,
                                     concept_tokens, frozen_attention, clean_patterns, mean_difference,
                                     neutral_kl, parse_spec, prompt_tokens, resolve_direction, run_steering,
                                     save_directions, steered_edits)
from interp.models import AddVector
from interp.store import Store

PROMPT = "The cat sat on the mat"


@pytest.fixture(scope="module")
def tiny(tiny_models):
    return tiny_models["llama"]


def _direction(adapter, text):
    return resolve_direction(None, adapter, parse_spec(text))


def _vector(values, site: str) -> str:
    """The spec text of a user vector at `site` (strength 0)."""
    return "vector:" + ",".join(f"{float(x):.9g}" for x in values) + f"@{site}=0"


def test_spec_grammar():
    spec = parse_spec("vector:1,2,3@blocks.0.hook_resid_post=-2.5:cap")
    assert (spec.feature, spec.site, spec.strength, spec.method) == ("vector:1,2,3", "blocks.0.hook_resid_post", -2.5, "cap")
    assert parse_spec(spec.text()) == spec
    assert parse_spec("1:5", strength=3.0, method="clamp") == DirectionSpec("1:5", 3.0, "clamp")
    assert parse_spec("m//blocks.1.mlp.hook_post/neuron/5=4") == DirectionSpec("m//blocks.1.mlp.hook_post/neuron/5", 4.0)
    for bad, why in (("1:5", "no strength"), ("1:5=x", "not a number"), ("1:5=3:push", "unknown steering method"),
                     ("=3", "empty feature")):
        with pytest.raises(ValueError, match=why):
            parse_spec(bad)


def test_add_zero_changes_nothing(tiny):
    tokens = tiny.to_tokens(PROMPT)
    clean = tiny.logits(tokens)
    edits = [_direction(tiny, t).edit(parse_spec(t)) for t in ("1:5=0", "0:7=0", _vector(range(32), "blocks.1.hook_resid_pre"))]
    with steered_edits(tiny, edits):
        assert torch.equal(tiny.logits(tokens), clean)


def test_clamp_to_the_clean_activation_changes_nothing(tiny):
    site = tiny.sites(1).mlp_hidden
    tokens = tiny.to_tokens("The cat", prepend_bos=False)[:, :1]  # one position, so one clean activation
    clean = tiny.run(tokens, names=[site])
    value = float(clean.cache[site][0, 0, 5])
    neuron = resolve_direction(None, tiny, DirectionSpec("1:5"))
    with steered_edits(tiny, [neuron.edit(DirectionSpec("1:5", value, "clamp"))]):
        assert torch.equal(tiny.logits(tokens), clean.output)
    with steered_edits(tiny, [neuron.edit(DirectionSpec("1:5", value + 1.0, "clamp"))]):
        assert not torch.equal(tiny.logits(tokens), clean.output)


def test_cap_above_changes_nothing_and_below_is_exact(tiny):
    site = tiny.sites(1).resid_pre
    u = torch.linspace(-1, 1, tiny.info.d_model)
    v = u / u.norm()
    direction = _direction(tiny, _vector(u.tolist(), site))
    tokens = tiny.to_tokens(PROMPT)
    clean = tiny.run(tokens, names=[site])
    proj = clean.cache[site][0].float() @ direction.steer.direction  # (pos,) projections on the unit direction
    assert torch.allclose(direction.steer.direction, v, atol=1e-6)
    with steered_edits(tiny, [Edit(direction.steer, "cap", float(proj.max()) + 1.0)]):
        assert torch.equal(tiny.logits(tokens), clean.output)
    cap = float(proj.min()) - 0.5
    with steered_edits(tiny, [Edit(direction.steer, "cap", cap)]):
        out = tiny.run(tokens, names=[site])
    capped = out.cache[site][0].float() @ direction.steer.direction
    assert torch.allclose(capped, torch.full_like(capped, cap), atol=1e-5)
    # only the component along v moved: the rest of the activation is the clean one
    rest = lambda h: h - (h @ direction.steer.direction)[:, None] * direction.steer.direction  # noqa: E731
    assert torch.allclose(rest(out.cache[site][0].float()), rest(clean.cache[site][0].float()), atol=1e-5)


def test_several_adds_at_one_site_are_the_sum_of_single_adds(tiny):
    site = tiny.sites(1).resid_pre
    g = torch.Generator().manual_seed(0)
    u1, u2 = torch.randn(tiny.info.d_model, generator=g), torch.randn(tiny.info.d_model, generator=g)
    d1, d2 = _direction(tiny, _vector(u1.tolist(), site)), _direction(tiny, _vector(u2.tolist(), site))
    tokens = tiny.to_tokens(PROMPT)
    clean = tiny.run(tokens, names=[site]).cache[site]
    acts = {}
    for name, edits in (("one", [Edit(d1.steer, "add", 3.0)]), ("two", [Edit(d2.steer, "add", -2.0)]),
                        ("both", [Edit(d1.steer, "add", 3.0), Edit(d2.steer, "add", -2.0)])):
        with steered_edits(tiny, edits):
            out = tiny.run(tokens, names=[site])
        acts[name], acts[name + "_logits"] = out.cache[site], out.output
    assert torch.allclose(acts["both"] - clean, (acts["one"] - clean) + (acts["two"] - clean), atol=1e-5)
    summed = 3.0 * u1 / u1.norm() - 2.0 * u2 / u2.norm()
    assert torch.allclose(acts["both_logits"], tiny.logits(tokens, interventions=[AddVector(site, summed)]), atol=1e-4)


def test_frozen_attention_without_steering_is_the_clean_run(tiny):
    tokens = prompt_tokens(tiny, PROMPT)
    clean = tiny.logits(tokens)
    zero = [_direction(tiny, "0:3=0").edit(parse_spec("0:3=0"))]
    with frozen_attention(tiny, clean_patterns(tiny, tokens)), steered_edits(tiny, zero):
        assert torch.equal(tiny.logits(tokens), clean)
    run = run_steering(tiny, PROMPT, [parse_spec("0:3=0")], GenerateConfig(max_tokens=5, seed=2, stop_at_eos=False),
                       SteeringConfig(attention=("frozen", "live")))
    assert run.steered["live"].token_ids == run.default.token_ids
    assert np.array_equal(run.steered["live"].concept_probs, run.default.concept_probs)
    # frozen: the prompt-only patterns equal the longer runs' prompt rows up to float rounding of the bigger matmuls
    assert run.steered["frozen"].token_ids == run.default.token_ids
    assert np.allclose(run.steered["frozen"].concept_probs, run.default.concept_probs, rtol=1e-5, atol=1e-7)


def test_frozen_attention_keeps_the_prompt_patterns(tiny):
    tokens = tiny.to_tokens(PROMPT)
    n = tokens.shape[1]
    site = tiny.sites(1).attn_pattern
    patterns = clean_patterns(tiny, tokens)
    edit = _direction(tiny, _vector(list(range(1, 9)) * 4, tiny.sites(0).resid_post))
    push = [Edit(edit.steer, "add", 40.0)]
    longer = torch.cat([tokens, tokens[:, 1:3]], 1)  # two "generated" tokens after the prompt
    with steered_edits(tiny, push):
        live = tiny.run(longer, names=[site]).cache[site]
    with frozen_attention(tiny, patterns), steered_edits(tiny, push):
        frozen = tiny.run(longer, names=[site]).cache[site]
    assert torch.equal(frozen[:, :, :n, :n], patterns[site])
    assert not torch.allclose(live[:, :, :n, :n], patterns[site], atol=1e-3)
    # the generated positions' rows are computed live: the steered run's own, not the clean prompt's
    assert torch.allclose(frozen[:, :, n:].sum(-1), torch.ones_like(frozen[:, :, n:].sum(-1)), atol=1e-5)
    with frozen_attention(tiny, patterns):
        unsteered = tiny.run(longer, names=[site]).cache[site]
    assert torch.allclose(unsteered, tiny.run(longer, names=[site]).cache[site])


def test_kl_is_zero_at_strength_zero_and_positive_otherwise(tiny):
    direction = _direction(tiny, "1:5=0")
    for mode in ("frozen", "live"):
        zero = neutral_kl(tiny, [Edit(direction.steer, "add", 0.0)], mode)
        assert zero.per_prompt == (0.0,) * len(zero.prompts) and zero.mean == 0.0
        pushed = neutral_kl(tiny, [Edit(direction.steer, "add", 30.0)], mode)
        assert all(k > 0 for k in pushed.per_prompt)
    with pytest.raises(ValueError, match="neutral prompts"):
        neutral_kl(tiny, [], "live", ())


def test_run_round_trips_through_the_store(tiny, tmp_path):
    from interp.methods.steering.store import RUN_NAME, load_run, run_payload, save_run

    store = Store(tmp_path / "store")
    specs = [parse_spec("1:5=30"), parse_spec(_vector([1, -1, 2] * 10 + [1, 1], "blocks.0.hook_resid_post")[:-2]
                                              + "=4:cap")]
    run = run_steering(tiny, PROMPT, specs, GenerateConfig(max_tokens=4, seed=5),
                       SteeringConfig(attention=("frozen", "live"), kl=True), store)
    key = save_run(store, run)
    back = load_run(store, key)
    assert run_payload(back) == run_payload(run)
    assert back.steered["frozen"].text == run.steered["frozen"].text and back.default.text == run.default.text
    assert back.directions[0].feature["index"] == 5 and back.directions[1].kind == "vector"
    assert save_run(store, run) == key and len(store.read("results", where={"name": RUN_NAME})) == 1
    row = store.read("runs").iloc[-1]
    assert row["command"] == "interp steer" and row["status"] == "done"
    with pytest.raises(KeyError, match="no steering run"):
        load_run(store, "llama/000000000000")


def test_concept_tokens_are_the_unembedding_top_tokens(tiny):
    direction = _direction(tiny, "1:5=1")
    w = tiny.weights.layer(1).mlp.W_out[5].float()
    norm = tiny.weights.final_norm
    logits = (w / w.pow(2).mean().add(norm.eps).sqrt() * norm.gain) @ tiny.weights.W_U
    concept = concept_tokens(tiny, direction, None, k=4)
    assert concept.source == "unembed" and list(concept.ids) == logits.topk(4).indices.tolist()
    assert torch.equal(direction.residual, w)


def test_directions_of_stored_features(tiny, tmp_path):
    from interp.dictionaries.dictionary import Dictionary
    from interp.dictionaries.io import save_dictionary
    from interp.features import FeatureId

    store = Store(tmp_path / "store")
    run = store.start_run("test", {})
    s = tiny.sites(0)
    tc = Dictionary(tiny.info.d_model, 16, tiny.info.d_model, kind="transcoder", arch="relu")
    tc.init_weights(torch.Generator().manual_seed(0))
    folder = save_dictionary(store, "tc0", tc, {"hook_name": s.mlp_in, "hook_name_out": s.mlp_out})
    store.write("dictionaries", [{"name": "tc0", "model": "llama", "site": s.mlp_in, "hook_out": s.mlp_out,
                                  "kind": "transcoder", "arch": "relu", "path": str(folder.relative_to(store.root))}],
                run_id=run)
    latent = FeatureId("llama", s.mlp_in, "transcoder", 2, "tc0")
    vec = torch.arange(tiny.info.d_model, dtype=torch.float32) - 3.0
    store.save_tensors("obsprop/llama/she", {"L1H2": vec}, {}, run_id=run)
    obsprop = FeatureId("llama", tiny.sites(1).attn_in, "obsprop", 2, "she")
    store.write("features", [{**latent.to_record(), "max_act": 2.0},
                             {**obsprop.to_record(), "metrics": {"bundle": "obsprop/llama/she", "path": "L1H2"}}],
                run_id=run)
    found = resolve_direction(store, tiny, DirectionSpec(latent.key, 1.0, "clamp"))
    assert (found.kind, found.steer.write_site, found.steer.read_site) == ("transcoder", s.mlp_out, s.mlp_in)
    assert torch.allclose(found.residual, tc.W_dec[2].detach())
    found = resolve_direction(store, tiny, DirectionSpec(obsprop.key, 1.0))
    assert found.steer.write_site == tiny.sites(1).resid_pre and torch.allclose(found.steer.direction, vec / vec.norm())
    probe = mean_difference(tiny, ["The dog ate", "The dog sat"], ["The cat ate", "The cat sat"], s.resid_post)
    acts = tiny.run(tiny.tokenize(["The dog ate", "The dog sat", "The cat ate", "The cat sat"]).tokens,
                    names=[s.resid_post]).cache[s.resid_post][:, -1]
    assert torch.allclose(probe, acts[:2].mean(0) - acts[2:].mean(0), atol=1e-6)
    [pid] = save_directions(store, tiny, "dog_vs_cat", s.resid_post, probe, ["dog - cat"], run)
    found = resolve_direction(store, tiny, DirectionSpec(pid.key, 2.0))
    assert found.kind == "probe" and torch.allclose(found.steer.direction, probe / probe.norm(), atol=1e-6)
    neuron = resolve_direction(store, tiny, DirectionSpec("1:5", 1.0, site=tiny.sites(1).resid_post))
    assert neuron.steer.write_site == tiny.sites(1).resid_post and torch.equal(neuron.steer.direction, neuron.residual)
    np.save(tmp_path / "v.npy", vec.numpy())
    found = resolve_direction(store, tiny, parse_spec(f"vector:{tmp_path / 'v.npy'}@{s.resid_pre}=1"))
    assert torch.allclose(found.steer.direction, vec / vec.norm())
    with pytest.raises(ValueError, match="belongs to model"):
        resolve_direction(store, tiny, DirectionSpec("other//blocks.0.mlp.hook_post/neuron/1", 1.0))
    with pytest.raises(ValueError, match="no feature"):
        resolve_direction(store, tiny, DirectionSpec("llama/tc0/blocks.0.ln2.hook_normalized/transcoder/9", 1.0))


def test_suggested_strength_follows_the_stored_scale(tiny, tmp_path):
    from interp.features import FeatureId
    from interp.methods.steering import suggest_strength
    from interp.methods.steering.strength import ADD_FACTOR, CLAMP_FACTOR

    store = Store(tmp_path / "store")
    run = store.start_run("test", {})
    rowed = FeatureId("llama", "blocks.1.mlp.hook_post", "neuron", 5)
    exampled = FeatureId("llama", "blocks.1.mlp.hook_post", "neuron", 6)
    store.write("features", [{**rowed.to_record(), "max_act": 2.5}], run_id=run)
    store.write("activation_examples", [{**exampled.to_record(), "group": "top", "example_rank": r, "tokens": ["a"],
                                         "token_ids": [1], "acts": [m], "max_act": m, "max_pos": 0}
                                        for r, m in enumerate((1.5, 0.5))], run_id=run)
    add = suggest_strength(store, rowed, "add")
    assert (add.strength, add.scale, add.basis) == (ADD_FACTOR * 2.5, 2.5, "features.max_act")
    clamp = suggest_strength(store, exampled, "clamp")
    assert (clamp.strength, clamp.basis) == (CLAMP_FACTOR * 1.5, "examples.max_act")
    assert suggest_strength(store, rowed, "cap").strength == 0.0
    none = suggest_strength(store, FeatureId("llama", "blocks.1.mlp.hook_post", "neuron", 7))
    assert none.strength is None and none.basis == "none"


def test_strong_steering_samples_its_concept_more_often(tiny):
    counts = concept_counts(tiny, "The cat", [parse_spec("1:5=60")], seeds=range(5),
                            generate=GenerateConfig(max_tokens=8, temperature=1.0, stop_at_eos=False),
                            config=SteeringConfig(attention=("frozen", "live"), concept_k=3))
    assert counts.steered["live"] > counts.default and counts.steered["frozen"] > counts.default
    assert all(r.steered["live"].text != r.default.text for r in counts.runs)


def test_chat_template_wraps_the_prompt(tiny, monkeypatch):
    with pytest.raises(ValueError, match="no chat template"):
        prompt_tokens(tiny, PROMPT, chat=True)
    monkeypatch.setattr(tiny.tokenizer, "chat_template",
                        "{% for m in messages %}<|bos|>{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}"
                        "A:{% endif %}", raising=False)
    tokens = prompt_tokens(tiny, PROMPT, chat=True)
    assert torch.equal(tokens, tiny.to_tokens(f"<|bos|>{PROMPT}\nA:", prepend_bos=False))
    assert tokens[0, 0].item() == tiny.tokenizer.bos_token_id and (tokens[0] == tiny.tokenizer.bos_token_id).sum() == 1
