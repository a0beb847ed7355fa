"""ObsProp checks: norm angle, ablation ranking, coupling fit, store, known-feature ranking, CLI, figures."""

from __future__ import annotations

import pytest
import torch

from interp.corpus import LabelledSet
from interp.methods.obsprop.observables import logit_diff
from interp.methods.obsprop.propagation import Component, ObsPropConfig, coupling, obsprop, path_vector
from interp.methods.obsprop.checks import ablation_ranking, coupling_check, norm_angles, norm_gradient_cosines
from interp.methods.obsprop.known_features import rank_known_features
from interp.methods.obsprop.store import load_obsprop, save_obsprop, store_source
from interp.methods.obsprop.efficiency import EfficiencyConfig, TaskSpec, data_efficiency
from interp.models import ReplaceActivation
from interp.store import Store


PROMPTS = ["The dog ate the bone", "She said that he was", "The movie was great"]


def _obs(model):
    return logit_diff(model, " was", " he")


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_norm_angles_on_tiny_models(tiny_models, family):
    model = tiny_models[family]
    result = obsprop(model, _obs(model), PROMPTS)
    angles = norm_angles(model, result, PROMPTS, top=3)
    assert list(angles.table["component"])[0] == "final" and len(angles.table) == 4
    assert ((angles.table["mean_cos"] > 0) & (angles.table["mean_cos"] <= 1 + 1e-6)).all()
    assert angles.table["n"].iloc[0] == sum(len(model.to_tokens(p)[0]) for p in PROMPTS)


# ----------------------------------------------------------------------------- ablation
def test_ablation_effects_match_single_interventions(tiny_models):
    model = tiny_models["llama"]
    obs = _obs(model)
    result = obsprop(model, obs, PROMPTS)
    comps = ["L1H3", "M0", "L0H1"]
    ranking = ablation_ranking(model, result, PROMPTS[:2], comps, max_tokens_per_pass=40)  # forces 2 passes
    batch = model.tokenize(PROMPTS[:2])
    rows, last = torch.arange(2), batch.lengths - 1
    clean = obs.value(model.logits(batch.tokens)[rows, last])

    def zero_head(h):
        def fn(act):
            act = act.clone()
            act[:, :, h] = 0
            return act
        return fn

    expected = {
        "L1H3": ReplaceActivation(model.sites(1).attn_z, zero_head(3)),
        "M0": ReplaceActivation(model.sites(0).mlp_out, torch.zeros_like),
        "L0H1": ReplaceActivation(model.sites(0).attn_z, zero_head(1)),
    }
    for comp, intervention in expected.items():
        ablated = obs.value(model.logits(batch.tokens, interventions=[intervention])[rows, last])
        got = ranking.table.set_index("component").loc[comp, "effect"]
        assert got == pytest.approx(float((ablated - clean).mean()), abs=1e-4)
    assert -1 <= ranking.spearman_norm <= 1
    with pytest.raises(ValueError, match="ablation 'resample'"):
        ablation_ranking(model, result, PROMPTS, comps, ablation="resample")


# ----------------------------------------------------------------------------- store + known features
def test_store_roundtrip_and_known_features(tiny_models, tmp_path):
    model = tiny_models["llama"]
    obs = _obs(model)
    result = obsprop(model, obs, PROMPTS)
    path = path_vector(model, obs, ["L0H1", "M1"], PROMPTS)
    store = Store(tmp_path / "store")
    run = store.start_run("test", {})
    source = save_obsprop(store, model, result, run, paths=(path,))
    assert source == store_source(obs.name) == "was_vs_he"
    feats = store.features(kind="obsprop")
    assert len(feats) == len(result.vectors) + 1
    row = feats[(feats.site == model.sites(1).attn_in) & (feats["index"] == 2) & (feats.source == source)]
    assert len(row) == 1
    loaded = load_obsprop(store, model, source)
    torch.testing.assert_close(loaded["L1H2"], result.vector("L1H2").vector)
    torch.testing.assert_close(loaded["L0H1>M1"], path.vector)
    # A vector equal to neuron 5's (gain-folded) up direction must rank that neuron first, cosine 1.
    W_in = model.weights.layer(1, fold_norms=True).mlp.W_in
    table = rank_known_features(model, W_in[:, 5].clone(), model.sites(1).mlp_in, store, top=5)
    top = table.iloc[0]
    assert (top["kind"], top["index"], top["direction"]) == ("neuron", 5, "in")
    assert top["cosine"] == pytest.approx(1.0, abs=1e-5)
    assert top["coupling"] == pytest.approx(1.0, abs=1e-5)
    # A head in layer 1 reads what layer-0 neurons write: their W_out rows are the candidates.
    W_out = model.weights.layer(0).mlp.W_out
    writers = rank_known_features(model, W_out[7].clone(), model.sites(1).attn_in, None, metric="coupling", top=3)
    assert (writers.iloc[0]["index"], writers.iloc[0]["direction"]) == (7, "out")
    with pytest.raises(ValueError, match="metric 'dot'"):
        rank_known_features(model, W_out[7], model.sites(1).attn_in, metric="dot")


# ----------------------------------------------------------------------------- data efficiency
def test_data_efficiency_on_separable_toy_task(tiny_models):
    model = tiny_models["gpt2"]
    prose = [f"The {x} {v} on the {y}" for x in ("cat", "dog") for v in ("sat", "ate") for y in ("mat", "bone", "cat")]
    code = [f"{t} main(void) {{ return {d}; }}" for t in ("int", "def") for d in range(6)]
    texts, labels = tuple(prose + code), tuple([0] * 12 + [1] * 12)
    data = LabelledSet("toy", texts, labels, ("prose", "code"))
    task = TaskSpec("toy", ((" was", 1.0), (" he", -1.0)), positive_label=1)
    res = data_efficiency(model, task, EfficiencyConfig(ks=(1, 4), seeds=2, component="M1"), dataset=data)
    assert set(res.table["method"]) == {"obsprop", "probe", "diff_means"}
    assert len(res.table) == 2 * 2 * 3
    assert res.table["auroc"].between(0, 1).all()
    # Prose vs code is trivially separable: the difference of means from 4 examples per class is perfect.
    dm = res.table[(res.table.method == "diff_means") & (res.table.k == 4)]
    assert (dm["auroc"] == 1.0).all()
    # A head's ObsProp vector needs no data: the same score for every k and seed.
    head = data_efficiency(model, task, EfficiencyConfig(ks=(1, 4), seeds=2, component="L1H0"), dataset=data)
    assert head.table[head.table.method == "obsprop"]["auroc"].nunique() == 1
    resid = data_efficiency(model, task, EfficiencyConfig(ks=(1, 4), seeds=1, component="R1"), dataset=data)
    assert resid.component == "R1" and resid.table["auroc"].between(0, 1).all()


def test_resid_gradients_freeze_patterns_and_scales(tiny_models):
    """Before the last block with patterns and norm scales frozen, the gradient at the last
    position is linear: the direct term v/s plus the block's own paths. Removing the block
    (zero-ablating all its outputs) must leave exactly v / s_final."""
    from interp.methods.obsprop.propagation import final_vector
    from interp.methods.obsprop.efficiency import resid_gradients

    model = tiny_models["llama"]
    obs = _obs(model)
    ta = resid_gradients(model, ["The dog ate the bone"], obs, layer=1)
    site = model.sites(1)
    zero = [ReplaceActivation(site.attn_out, torch.zeros_like), ReplaceActivation(site.mlp_out, torch.zeros_like)]
    with model.intervene(*zero):
        ablated = resid_gradients(model, ["The dog ate the bone"], obs, layer=1)
    x = ablated.acts[0]
    scale = x.pow(2).mean().add(model.weights.final_norm.eps).sqrt()
    torch.testing.assert_close(ablated.grads[0], final_vector(model, obs) / scale, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(ta.grads[0], ablated.grads[0])


# ----------------------------------------------------------------------------- CLI and figures
def test_cli_obsprop_and_rank(tiny_dirs, tmp_path, capsys):
    from interp.cli import main

    prompts = tmp_path / "p.txt"
    prompts.write_text("The dog ate the bone\nShe said that he was\n")
    store = str(tmp_path / "store")
    code = main(["obsprop", "--model", str(tiny_dirs["llama"]), "--observable", " was", "- he", "--prompts",
                 str(prompts), "--path", "L0H1", "M1", "--store", store, "--top", "5"])
    out = capsys.readouterr().out
    assert code == 0 and "gradient" in out and "path L0H1>M1" in out
    assert len(Store(store).features(kind="obsprop")) == 1 + 2 * 5 + 1
    code = main(["obsprop-rank", "--model", str(tiny_dirs["llama"]), "--observable", '" was" - " he"',
                 "--component", "M1", "--store", store, "--top", "3", "--kinds", "neuron"])
    out = capsys.readouterr().out
    assert code == 0 and "ln2.hook_normalized" in out and "neuron" in out
    assert main(["obsprop", "--model", str(tiny_dirs["llama"]), "--observable", " she", "--no-store"]) == 2
    assert "tokenises as" in capsys.readouterr().err


def test_pronoun_study_pipeline_stores_everything(tiny_models, tmp_path):
    from interp.jobs.obsprop_study import pronoun_study

    model = tiny_models["gpt2"]
    store = Store(tmp_path / "store")
    study = pronoun_study(model, store, n_reference=4, top_ablation=3, n_ablation_prompts=2,
                          efficiency=EfficiencyConfig(ks=(1, 2), seeds=1), tokens=(" was", " he"),
                          partners=((" the", " he"), (" was", " the")))
    assert len(study.ablation.table) == 6
    assert list(study.couplings["y2"]) == ["' the' -' he'", "' was' -' the'"]
    # ' was' - ' the' shares the ' was' half of ' was' - ' he': their coupling is positive.
    assert study.couplings["predicted"].iloc[1] > 0
    names = set(store.read("results")["name"])
    assert {"obsprop_ranking", "obsprop_norm_angles", "obsprop_ablation", "obsprop_coupling",
            "obsprop_data_efficiency", "obsprop_data_efficiency_figure"} <= names
    assert store.get_run(study.run_id)["status"] == "done"
