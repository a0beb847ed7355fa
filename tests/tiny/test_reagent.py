"""ReAGent and the baselines on a tiny llama where, by construction, one input token matters.

An intervention on ``blocks.0.hook_resid_pre`` zeroes every position except `KEY`, so the
logits at the last position are a function of the token at `KEY` alone: replacing, occluding
or interpolating any other token changes nothing, and its gradient is exactly 0.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from interp.methods.attribution.registry import METHODS, attribute, attribute_continuation
from interp.methods.attribution.baselines import BaselineConfig, occlusion
from interp.methods.attribution.targets import (
    ContrastTarget, SiteTarget, TokenTarget, neuron_target, resolve_target, special_mask,
)
from interp.methods.attribution.reagent import ReagentConfig, reagent
from interp.methods.attribution.replacers import (
    FrequencyReplacer, MaskedLMReplacer, PredictionReplacer, UniformReplacer, make_replacer, sample_replacements,
)
from interp.models.interventions import ReplaceActivation


KEY = 3


PROMPT = "The cat sat on the mat. The dog ate"


FAITHFUL = ("reagent", "occlusion", "integrated_gradients", "input_x_gradient", "gradient_norm")


@pytest.fixture(scope="module")
def llama(tiny_models):
    return tiny_models["llama"]


@pytest.fixture(scope="module")
def one_token(llama):
    """(adapter, tokens, intervention) with only position KEY mattering."""
    tokens = llama.to_tokens(PROMPT)[0]
    keep = torch.zeros(tokens.numel(), 1)
    keep[KEY] = 1.0
    site = llama.sites(0).resid_pre
    return llama, tokens, ReplaceActivation(site, lambda act: act * keep.to(act.dtype))


def test_only_key_position_matters(one_token):
    adapter, tokens, only_key = one_token
    with adapter.intervene(only_key):
        base = adapter.logits(tokens[None])[0, -1]
        other = tokens.clone()
        other[KEY + 2] = tokens[KEY + 3]
        same = adapter.logits(other[None])[0, -1]
        other[KEY] = tokens[KEY + 1]
        changed = adapter.logits(other[None])[0, -1]
    assert torch.allclose(base, same, atol=1e-5)
    assert (base - changed).abs().max() > 1e-2


@pytest.mark.parametrize("method", FAITHFUL)
def test_faithful_methods_rank_the_key_token_first(one_token, method):
    adapter, tokens, only_key = one_token
    config = ReagentConfig(max_probe_steps=200, seed=1) if method == "reagent" else BaselineConfig(n_steps=16)
    with adapter.intervene(only_key):
        result = attribute(adapter, tokens, method, config=config)
    scores = result.scores.abs() if method in ("input_x_gradient", "integrated_gradients", "occlusion") else result.scores
    assert int(scores.argmax()) == KEY, (method, result.top(3))
    assert result.scores[0] == 0  # BOS


def test_reagent_is_deterministic_given_a_seed(one_token):
    adapter, tokens, only_key = one_token
    with adapter.intervene(only_key):
        a = reagent(adapter, tokens, config=ReagentConfig(max_probe_steps=50, num_probes=4, seed=7))
        b = reagent(adapter, tokens, config=ReagentConfig(max_probe_steps=50, num_probes=4, seed=7))
        c = reagent(adapter, tokens, config=ReagentConfig(max_probe_steps=50, num_probes=4, seed=8))
    assert torch.equal(a.scores, b.scores)
    assert not torch.equal(a.scores, c.scores)


def test_reagent_scores_are_a_distribution_with_zero_at_bos(one_token):
    adapter, tokens, only_key = one_token
    with adapter.intervene(only_key):
        result = reagent(adapter, tokens, config=ReagentConfig(max_probe_steps=100, num_probes=4))
    assert result.scores[0] == 0
    assert result.scores.sum() == pytest.approx(1.0, abs=1e-5)
    assert result.extra["converged_probes"] >= 1


def test_reagent_warns_and_averages_all_when_no_probe_converges(llama):
    tokens = llama.to_tokens(PROMPT)[0]
    logits = llama.logits(tokens[None])[0, -1]
    worst = int(logits.argmin())
    # A SiteTarget that can never be retained: the stopping condition asks for 10x the value.
    target = SiteTarget(llama.final_resid_site, lambda act: act[:, 0].abs() + 1.0, retain_fraction=10.0)
    with pytest.warns(RuntimeWarning, match="none of 3 probes converged"):
        result = reagent(llama, tokens, target, ReagentConfig(max_probe_steps=3, num_probes=3))
    assert result.extra["converged_probes"] == 0
    assert result.extra["steps"] == [3, 3, 3]
    assert result.scores.sum() == pytest.approx(1.0, abs=1e-5)
    assert worst >= 0


def test_probe_batches_one_forward_per_step(llama, monkeypatch):
    tokens = llama.to_tokens(PROMPT)[0]
    calls = []
    original = llama.run

    def counting(toks, *args, **kwargs):
        calls.append(tuple(toks.shape))
        return original(toks, *args, **kwargs)

    monkeypatch.setattr(llama, "run", counting)
    target = SiteTarget(llama.final_resid_site, lambda act: act[:, 0].abs() + 1.0, retain_fraction=10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reagent(llama, tokens, target, ReagentConfig(max_probe_steps=4, num_probes=6))
    # One clean pass, then steps 0..4: 6 replaced rows, then 6 replaced + 6 check rows, last only checks.
    assert [c[0] for c in calls] == [1, 6, 12, 12, 12, 6]


def test_special_tokens_are_never_replaced(llama):
    tokens = llama.to_tokens(PROMPT)[0]
    probs = UniformReplacer().distribution(llama, tokens)
    assert probs[llama.info.bos_token_id] == 0
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    mask = torch.ones(50, tokens.numel(), dtype=torch.bool)
    mask[:, 0] = False
    out = sample_replacements(probs, tokens, mask, torch.Generator().manual_seed(0))
    assert (out[:, 0] == tokens[0]).all()
    assert not special_mask(llama, out[:, 1:]).any()


def test_prediction_and_frequency_replacers(llama):
    tokens = llama.to_tokens(PROMPT)[0]
    pred = PredictionReplacer().distribution(llama, tokens)
    assert pred.shape == (tokens.numel(), llama.info.d_vocab)
    logits = llama.logits(tokens[None])[0]
    # Row i is the model's prediction after the prefix x_<i: its argmax is the model's argmax at i-1.
    assert int(pred[4].argmax()) == int(logits[3].argmax()) or logits[3].argmax() in special_ids(llama)
    counts = torch.zeros(llama.info.d_vocab)
    counts[tokens[2]] = 1000.0
    freq = FrequencyReplacer(counts).distribution(llama, tokens)
    assert int(freq.argmax()) == int(tokens[2])


def special_ids(adapter):
    return set(adapter.tokenizer.all_special_ids)


def test_masked_lm_replacer_maps_candidates_and_fails_clearly(llama):
    tokens = llama.to_tokens(PROMPT)[0]
    target_text = llama.to_str_tokens(tokens)[2]
    replacer = MaskedLMReplacer(lambda words, i: {target_text: 0.9, "not-a-single-token-xyzzy": 0.1})
    probs = replacer.distribution(llama, tokens)
    assert int(probs[1].argmax()) == int(tokens[2])
    with pytest.raises(ValueError, match="could not load masked LM"):
        make_replacer("masked_lm", name="no-such-masked-lm-here")
    with pytest.raises(ValueError, match="unknown replacer"):
        make_replacer("pos")


def test_targets(llama):
    tokens = llama.to_tokens(PROMPT)[0]
    target = resolve_target(llama, tokens)
    logits = llama.logits(tokens[None])
    assert isinstance(target, TokenTarget) and target.token_id == int(logits[0, -1].argmax())
    probs = torch.softmax(logits[0, -1], -1)
    second = int(probs.argsort(descending=True)[1])
    contrast = resolve_target(llama, tokens, target.token_id, contrast=second)
    assert isinstance(contrast, ContrastTarget)
    value = contrast.value(logits, {})
    assert float(value) == pytest.approx(float(probs[target.token_id] - probs[second]) / 2, abs=1e-6)
    neuron = neuron_target(llama, 1, 5)
    cache = llama.run(tokens[None], names=neuron.sites).cache
    assert float(neuron.value(None, cache)) == pytest.approx(float(cache[neuron.site][0, -1, 5]))
    with pytest.raises(ValueError, match="out of range"):
        neuron_target(llama, 1, 10_000)
    with pytest.raises(ValueError, match="not a single token|out of range"):
        resolve_target(llama, tokens, 10**7)


def test_neuron_target_reagent_finds_the_key_token(one_token):
    adapter, tokens, only_key = one_token
    # Pick the layer-1 neuron that moves most when the key token changes.
    other = tokens.clone()
    other[KEY] = tokens[KEY + 1]
    site = adapter.sites(1).mlp_hidden
    with adapter.intervene(only_key):
        a = adapter.run(tokens[None], names=[site]).cache[site][0, -1]
        b = adapter.run(other[None], names=[site]).cache[site][0, -1]
        index = int(((a - b).abs() * (a.abs() > 0.1)).argmax())
        result = reagent(adapter, tokens, neuron_target(adapter, 1, index), ReagentConfig(max_probe_steps=100))
        ref = occlusion(adapter, tokens, neuron_target(adapter, 1, index))
    assert int(ref.scores.abs().argmax()) == KEY
    assert int(result.scores.argmax()) == KEY


def test_continuation_matrix(llama):
    cont = attribute_continuation(llama, PROMPT, n_new=3, method="occlusion")
    n = len(llama.to_str_tokens(PROMPT))
    assert cont.matrix.shape == (3, n + 2)
    assert cont.prompt_len == n
    assert torch.isnan(cont.matrix[0, n:]).all() and not torch.isnan(cont.matrix[2]).any()
    assert len(cont.tokens) == n + 3
    assert set(METHODS) >= {"reagent", "random", "attention_last", "attention_rollout", "gradient_norm",
                            "input_x_gradient", "integrated_gradients", "occlusion"}


def test_figures_build(llama):
    from interp.viz.attribution import continuation_heatmap, faithfulness_figure, faithfulness_table, methods_heatmap, token_heatmap

    tokens = llama.to_tokens(PROMPT)[0]
    results = [attribute(llama, tokens, m) for m in ("occlusion", "attention_last")]
    assert len(token_heatmap(results[0]).data[0].x) == tokens.numel()
    assert len(methods_heatmap(results).data[0].z) == 2
    cont = attribute_continuation(llama, PROMPT, n_new=2, method="attention_last")
    assert len(continuation_heatmap(cont).data[0].y) == 2
    table = [{"method": "a", "n": 3, "soft_ns": 0.5, "soft_ns_lo": 0.4, "soft_ns_hi": 0.6,
              "soft_nc": 0.7, "soft_nc_lo": 0.6, "soft_nc_hi": 0.8}]
    fig = faithfulness_figure(table)
    assert list(fig.data[0].error_y.array) == pytest.approx([0.1])
    assert list(faithfulness_table(table).data[0].cells.values[2]) == ["0.500 [0.400, 0.600]"]
