"""Steering: the three edits worked by hand, hooks scoped, latents clamped through their dictionary, the CLI."""

import pytest
import torch

from interp.dictionaries.dictionary import Dictionary
from interp.methods.steering import GenerateConfig, Steer, compare, latent_steer, neuron_steer, steered
from interp.methods.steering.steering import _edit


def test_edits_by_hand():
    h = torch.tensor([[[1.0, 2.0, 3.0]]])
    e1 = torch.tensor([0.0, 1.0, 0.0])
    assert _edit(h, e1, "add", 2.0, None).tolist() == [[[1.0, 4.0, 3.0]]]
    assert _edit(h, e1, "clamp", 5.0, None).tolist() == [[[1.0, 5.0, 3.0]]]
    assert _edit(h, e1, "cap", 1.0, None).tolist() == [[[1.0, 1.0, 3.0]]]
    assert _edit(h, e1, "cap", 10.0, None).tolist() == [[[1.0, 2.0, 3.0]]]  # below the cap: untouched
    u = torch.tensor([1.0, 1.0, 0.0])
    # coefficient of h along u is (1 + 2) / 2 = 1.5; clamping it to 4 adds 2.5 u
    assert _edit(h, u, "clamp", 4.0, None).tolist() == [[[3.5, 4.5, 3.0]]]
    # a latent read elsewhere with activation 1: its contribution u becomes 3 u
    assert _edit(h, u, "clamp", 3.0, torch.tensor([[1.0]])).tolist() == [[[3.0, 4.0, 3.0]]]
    # projection on u / |u| is 3 / sqrt(2); capping it at sqrt(2) removes (3/sqrt2 - sqrt2) / sqrt2 = 0.5 per unit
    assert _edit(h, u, "cap", 2 ** 0.5, None) == pytest.approx(torch.tensor([[[0.5, 1.5, 3.0]]]))


def test_bad_steers_are_refused(tiny_models):
    with pytest.raises(ValueError, match="non-zero"):
        Steer("blocks.0.mlp.hook_post", torch.zeros(4))
    with pytest.raises(ValueError, match="unknown steering method"):
        with steered(tiny_models["llama"], neuron_steer(tiny_models["llama"], 0, 1), "push", 1.0):
            pass


def test_neuron_clamp_is_scoped(tiny_models):
    adapter = tiny_models["llama"]
    site = adapter.sites(1).mlp_hidden
    tokens = adapter.to_tokens("The cat sat on the mat")
    clean = adapter.run(tokens, names=[site])
    with steered(adapter, neuron_steer(adapter, 1, 5), "clamp", 7.0):
        inside = adapter.run(tokens, names=[site])
    after = adapter.run(tokens, names=[site])
    assert torch.allclose(inside.cache[site][..., 5], torch.full_like(inside.cache[site][..., 5], 7.0))
    assert torch.equal(inside.cache[site][..., :5], clean.cache[site][..., :5])
    assert not torch.allclose(inside.output, clean.output)
    assert torch.equal(after.output, clean.output)  # nothing outlives the block


def test_latent_clamp_keeps_the_error_term(tiny_models):
    adapter = tiny_models["llama"]
    s = adapter.sites(0)
    d = adapter.info.d_model
    tc = Dictionary(d, 16, d, kind="transcoder", arch="relu")
    tc.init_weights(torch.Generator().manual_seed(0))
    tokens = adapter.to_tokens("The dog ate the bone")
    clean = adapter.run(tokens, names=[s.mlp_in, s.mlp_out]).cache
    with torch.no_grad():
        a = tc.encode(clean[s.mlp_in].float())[..., 2]
    with steered(adapter, latent_steer(tc, 2, s.mlp_in, s.mlp_out), "clamp", 4.0):
        out = adapter.run(tokens, names=[s.mlp_out]).cache[s.mlp_out]
    expected = clean[s.mlp_out] + (4.0 - a)[..., None] * tc.W_dec[2].detach()
    assert torch.allclose(out, expected, atol=1e-5)


def test_compare_uses_one_seed(tiny_models):
    adapter = tiny_models["llama"]
    config = GenerateConfig(max_tokens=6, temperature=0.8, seed=3)
    steer = neuron_steer(adapter, 1, 5)
    first = compare(adapter, steer, "The cat", 0.0, "add", config)
    assert first.default == first.steered  # strength 0 changes nothing, so the same seed gives the same text
    strong = compare(adapter, steer, "The cat", 500.0, "add", config)
    assert strong.default == first.default and strong.steered != strong.default


def test_steer_cli(tiny_dirs, tmp_path, capsys):
    from interp.cli import main

    code = main(["steer", "--model", str(tiny_dirs["llama"]), "--feature", "1:5", "--strength", "500",
                 "--prompt", "The cat", "--max-tokens", "4", "--store", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "default:" in out and "steered (live attention):" in out
    assert main(["steer", "--model", str(tiny_dirs["llama"]), "--feature", "9:5", "--strength", "1",
                 "--prompt", "x", "--store", str(tmp_path)]) == 2


def test_steer_cli_several_features_kl_and_save(tiny_dirs, tmp_path, capsys):
    from interp.cli import main
    from interp.methods.steering.store import load_run
    from interp.store import Store

    code = main(["steer", "--model", str(tiny_dirs["llama"]), "--feature", "1:5=40", "--feature", "0:2=3:clamp",
                 "--prompt", "The cat", "--max-tokens", "4", "--attention", "frozen,live", "--kl", "--save",
                 "--store", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    key = out.strip().splitlines()[-1].removeprefix("saved: ")
    run = load_run(Store(tmp_path), key)
    assert [d.spec.text() for d in run.directions] == ["1:5=40:add", "0:2=3:clamp"]
    assert f"steered (frozen attention):  {run.steered['frozen'].text!r}" in out
    assert f"steered (live attention):  {run.steered['live'].text!r}" in out
    assert f"KL side effect (live): {run.side_effects['live'].mean:.4g} nats" in out


@pytest.mark.parametrize("args,message", [
    (["--feature", "1:5"], "has no strength"),
    (["--feature", "1:5=2", "--attention", "sideways"], "attention 'sideways' is not valid"),
    (["--feature", "1:5=2", "--chat"], "has no chat template"),
    (["--feature", "vector:1,2=3"], "a vector needs a site"),
    (["--feature", "1:5=2:push"], "unknown steering method"),
])
def test_steer_cli_bad_input_is_one_line(tiny_dirs, tmp_path, capsys, args, message):
    from interp.cli import main

    code = main(["steer", "--model", str(tiny_dirs["llama"]), *args, "--prompt", "The cat", "--max-tokens", "2",
                 "--store", str(tmp_path)])
    err = [line for line in capsys.readouterr().err.splitlines()
           if line.strip() and not line.startswith("Loading weights")]  # the model loader's progress bar
    assert code == 2 and len(err) == 1 and err[0].startswith("interp: error: ") and message in err[0], err
