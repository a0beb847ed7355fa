"""A stored ObsProp source holds one configuration's vectors: another configuration under the same
source is refused (before any work) unless --replace; a rerun of the same configuration replaces
its own rows; the ranking row records what produced it."""

from __future__ import annotations

import json

import pytest
import torch

from interp.methods.obsprop.observables import logit_diff
from interp.methods.obsprop.propagation import ObsPropConfig, obsprop
from interp.methods.obsprop.store import Provenance, load_obsprop, save_obsprop, stored_provenance
from interp.store import Store

PROMPTS = ["The dog ate the bone", "She said that he was"]


def _ranking_payload(store, model, source):
    row = store.read("results", where={"name": "obsprop_ranking", "key": f"{model}/{source}"}).iloc[0]
    return json.loads(row["payload"]), row["run_id"]


def test_other_configuration_is_refused_unless_replace(tiny_models, tmp_path):
    model = tiny_models["llama"]
    obs = logit_diff(model, " was", " he")
    store = Store(tmp_path / "store")
    gradient = obsprop(model, obs, PROMPTS, ObsPropConfig(mlp_method="gradient"))
    linear = obsprop(model, obs, None, ObsPropConfig(mlp_method="linear"))
    with store.run("study") as first:
        source = save_obsprop(store, model, gradient, first, prompts=PROMPTS)
    payload, run_id = _ranking_payload(store, model.store_name, source)
    expected = Provenance.of(obs, gradient.config, PROMPTS)
    assert run_id == first and payload["provenance"]["mlp_method"] == "gradient"
    assert payload["provenance"]["config_hash"] == expected.config_hash and payload["provenance"]["n_prompts"] == 2
    before = load_obsprop(store, model, source)

    with pytest.raises(ValueError, match=r"already holds vectors of another configuration \(run .*mlp_method gradient"
                                         r".*MLPs linear.*--name was_vs_he_linear\) or pass --replace"):
        with store.run("cli") as second:
            save_obsprop(store, model, linear, second)
    assert store.get_run(second)["status"] == "failed"
    torch.testing.assert_close(load_obsprop(store, model, source)["M0"], before["M0"])  # untouched
    assert _ranking_payload(store, model.store_name, source)[1] == first
    # other prompts are another configuration too
    with pytest.raises(ValueError, match="another configuration"):
        with store.run("cli"):
            save_obsprop(store, model, gradient, second, prompts=PROMPTS[:1])

    with store.run("same config again") as third:  # the same configuration replaces its own rows
        save_obsprop(store, model, gradient, third, prompts=PROMPTS)
    assert _ranking_payload(store, model.store_name, source)[1] == third
    with store.run("cli --replace") as fourth:
        save_obsprop(store, model, linear, fourth, replace=True)
    payload, run_id = _ranking_payload(store, model.store_name, source)
    assert run_id == fourth and payload["provenance"]["mlp_method"] == "linear"
    assert not torch.allclose(load_obsprop(store, model, source)["M0"], before["M0"])
    with store.run("named") as fifth:
        assert save_obsprop(store, model, gradient, fifth, "was_vs_he_gradient", prompts=PROMPTS) == "was_vs_he_gradient"
    assert set(store.features(kind="obsprop")["source"]) == {"was_vs_he", "was_vs_he_gradient"}


def test_rows_without_provenance_compare_the_bundle_config(tiny_models, tmp_path):
    model = tiny_models["llama"]
    obs = logit_diff(model, " was", " he")
    store = Store(tmp_path / "store")
    gradient = obsprop(model, obs, PROMPTS)
    with store.run("old") as run:
        save_obsprop(store, model, gradient, run, prompts=PROMPTS)
        payload, _ = _ranking_payload(store, model.store_name, "was_vs_he")
        del payload["provenance"]  # as rows written before provenance was recorded
        store.write("results", [{"name": "obsprop_ranking", "key": f"{model.store_name}/was_vs_he",
                                 "payload": payload}], run_id=run)
    record, _ = stored_provenance(store, model.store_name, "was_vs_he")
    assert record == {"observable": obs.name, "mlp_method": "gradient", "positions": "last", "n_reference": 2}
    with pytest.raises(ValueError, match="another configuration"):
        save_obsprop(store, model, obsprop(model, obs, None, ObsPropConfig(mlp_method="linear")), run)
    save_obsprop(store, model, gradient, run, prompts=PROMPTS)  # same method and positions: accepted


def test_cli_refuses_before_computing_and_replace_overwrites(tiny_dirs, tmp_path, capsys):
    from interp.cli import main

    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    store = str(tmp_path / "store")
    base = ["obsprop", "--model", str(tiny_dirs["llama"]), "--observable", " was", "- he", "--store", store]
    assert main([*base, "--prompts", str(prompts)]) == 0
    capsys.readouterr()
    assert main(base) == 2  # linear (no prompts) under the gradient run's source
    err = capsys.readouterr().err
    assert "already holds vectors of another configuration" in err and "--replace" in err
    runs = Store(store).read("runs")
    assert len(runs) == 1  # refused before a run was opened
    assert main([*base, "--replace"]) == 0
    assert "stored" in capsys.readouterr().out
    runs = Store(store).read("runs").sort_values("started_at")
    assert list(runs["status"]) == ["done", "done"]
    payload = json.loads(Store(store).read("results", where={"name": "obsprop_ranking"}).iloc[0]["payload"])
    assert payload["provenance"]["mlp_method"] == "linear"
    assert json.loads(runs.iloc[1]["config"])["replace"] is True
