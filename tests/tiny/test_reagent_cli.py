"""`interp attribute` end to end on a tiny local model, writing a temporary store."""

from __future__ import annotations

import json

import pytest

from interp.cli import main


def test_attribute_cli_prints_and_stores(tiny_dirs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INTERP_HOME", str(tmp_path))
    code = main(["attribute", "--model", str(tiny_dirs["llama"]), "--prompt", "The cat sat on the mat",
                 "--method", "ig", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["method"] == "integrated_gradients"
    assert len(out["tokens"]) == len(out["scores"]) and out["scores"][0] == 0.0
    assert 0.0 <= out["faithfulness"]["soft_ns"] <= 1.0

    from interp.store import Store

    rows = Store().read("attributions")
    assert list(rows["method"]) == ["integrated_gradients"]
    assert rows["prompt"].iloc[0] == "The cat sat on the mat"
    assert json.loads(rows["extra"].iloc[0])["faithfulness"]["soft_nc"] >= 0


def test_attribute_cli_reagent_generate_and_errors(tiny_dirs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INTERP_HOME", str(tmp_path))
    code = main(["attribute", "--model", str(tiny_dirs["llama"]), "--prompt", "The dog ate the",
                 "--generate", "2", "--max-probe-steps", "20", "--num-probes", "4", "--no-faithfulness"])
    assert code == 0
    assert "continuation:" in capsys.readouterr().out
    from interp.store import Store

    assert len(Store().read("attributions")) == 2
    assert main(["attribute", "--model", str(tiny_dirs["llama"]), "--prompt", "The dog", "--method", "shap"]) == 2
    assert "unknown attribution method 'shap'" in capsys.readouterr().err


def test_attribute_prompts_stores_every_method(tiny_models, tmp_path):
    from interp.jobs.attribution_demo import attribute_prompts
    from interp.methods.attribution.reagent import ReagentConfig
    from interp.store import Store

    store = Store(tmp_path / "store")
    records = attribute_prompts(tiny_models["llama"], ["The cat sat on the", "The dog ate"],
                                ("reagent", "occlusion"), store=store,
                                reagent_config=ReagentConfig(num_probes=4, max_probe_steps=20))
    assert [r["method"] for r in records] == ["reagent", "occlusion"] * 2
    assert all(0 <= r["soft_ns"] <= 1 for r in records)
    stored = store.read("attributions")
    assert sorted(stored["method"]) == ["occlusion", "occlusion", "reagent", "reagent"]
    assert stored["model"].iloc[0] == "llama"


def test_attribute_cli_neuron_target(tiny_dirs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INTERP_HOME", str(tmp_path))
    code = main(["attribute", "--model", str(tiny_dirs["llama"]), "--prompt", "The cat sat on the mat",
                 "--method", "occlusion", "--neuron", "1:7", "--json", "--no-store"])
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["target"] == "blocks.1.mlp.hook_post[7]" and out["faithfulness"] is None
    assert main(["attribute", "--model", str(tiny_dirs["llama"]), "--prompt", "x", "--neuron", "1"]) == 2
    assert "LAYER:INDEX" in capsys.readouterr().err
