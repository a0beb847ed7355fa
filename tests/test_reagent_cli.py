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
