"""Circuit-tracer transcoder sets on the command line: import into the store, graphs from a folder, export."""

from __future__ import annotations

import json

import pytest
import torch

PROMPT = "The cat sat on the mat. She said that he"


def _set(model, seed=0, d_sae=40, d_model=None):
    """TopK transcoders at both layers of the tiny model, with biases, layer 1 with a skip term."""
    from interp.dictionaries import Dictionary

    d = d_model or model.info.d_model
    g = torch.Generator().manual_seed(seed)
    out = {}
    for layer in (0, 1):
        tc = Dictionary(d, d_sae, d, kind="transcoder", arch="topk", k=6, skip=layer == 1)
        tc.init_weights(g)
        with torch.no_grad():
            tc.b_enc.normal_(0, 0.3, generator=g)
            tc.b_dec.normal_(0, 1.0, generator=g)
            if tc.skip:
                tc.W_skip.normal_(0, 0.1, generator=g)
        out[layer] = tc.eval()
    return out


def _one_error(capsys, argv) -> str:
    from interp.cli import main

    capsys.readouterr()
    assert main(argv) == 2, argv
    err = [line for line in capsys.readouterr().err.splitlines()
           if line.strip() and not line.startswith("Loading weights")]
    assert len(err) == 1 and err[0].startswith("interp: error:"), (argv, err)
    return err[0]


def test_import_then_graph_equals_graph_from_folder(tiny_models, tiny_dirs, tmp_path, capsys):
    from interp.cli import main
    from interp.dictionaries.io import load_dictionary
    from interp.methods.circuits.graph_files import from_interp
    from interp.methods.circuits.transcoder_set import export_transcoder_set
    from interp.methods.circuits.transcoders import load_transcoders, transcoders_of
    from interp.store import Store

    model = tiny_models["llama"]
    tcs = _set(model)
    folder = tmp_path / "myset"
    export_transcoder_set(tcs, folder, "tiny-llama")
    store = tmp_path / "store"
    base = ["--model", str(tiny_dirs["llama"]), "--store", str(store)]
    assert main(["circuit", "import-transcoders", str(folder), *base]) == 0
    assert "imported 2 transcoders" in capsys.readouterr().out
    rows = Store(store).read("dictionaries").sort_values("name")
    names = [f"{model.store_name}/myset-L0", f"{model.store_name}/myset-L1"]
    assert rows["name"].tolist() == names and set(rows["kind"]) == {"transcoder"}
    assert rows["site"].tolist() == [model.sites(0).mlp_in, model.sites(1).mlp_in]
    assert rows["hook_out"].tolist() == [model.sites(0).mlp_out, model.sites(1).mlp_out]
    assert transcoders_of(Store(store), model.store_name) == names
    for layer, name in enumerate(names):
        back, meta = load_dictionary(Store(store), name)
        assert meta["hook_name"] == model.sites(layer).mlp_in and back.arch == "topk" and back.k == 6
        for p, value in tcs[layer].named_parameters():
            assert torch.equal(getattr(back, p), value), (layer, p)
    loaded, labels = load_transcoders(Store(store), names, model)
    assert labels == dict(enumerate(names)) and torch.equal(loaded[1].W_skip, tcs[1].W_skip)
    # The same graph from the folder and from the stored dictionaries.
    files = {}
    for source, flag in (("folder", ["--transcoders", str(folder)]), ("store", ["--dicts", ",".join(names)])):
        files[source] = tmp_path / f"{source}.json"
        assert main(["circuit", "graph", "--prompt", PROMPT, *flag, *base, "--no-store", "-o", str(files[source])]) == 0
    a, b = (from_interp(json.loads(files[s].read_text())) for s in ("folder", "store"))
    assert a.n_features > 0 and a.adjacency.shape == b.adjacency.shape
    assert torch.allclose(a.adjacency, b.adjacency, atol=1e-6, rtol=0)
    assert torch.equal(a.active_features, b.active_features) and a.logit_tokens == b.logit_tokens
    assert a.meta["dictionaries"] == b.meta["dictionaries"] == {"0": names[0], "1": names[1]}
    # Overwriting is refused unless --replace; --name gives other names.
    assert "--replace" in _one_error(capsys, ["circuit", "import-transcoders", str(folder), *base])
    assert main(["circuit", "import-transcoders", str(folder), *base, "--replace"]) == 0
    assert main(["circuit", "import-transcoders", str(folder), *base, "--name", "other"]) == 0
    assert sorted(Store(store).read("dictionaries")["name"]) == sorted(names + ["other-L0", "other-L1"])
    # Export the stored ones again: circuit-tracer's layout, the same weights.
    from interp.methods.circuits.transcoder_set import import_transcoder_set

    out = tmp_path / "exported"
    assert main(["circuit", "export-transcoders", str(out), "--dicts", ",".join(names), *base]) == 0
    again, cfg = import_transcoder_set(out)
    assert cfg["activation"] == "topk" and cfg["k"] == 6
    for layer in (0, 1):
        for p, value in tcs[layer].named_parameters():
            assert torch.equal(getattr(again[layer], p), value), (layer, p)
    assert "--replace" in _one_error(capsys, ["circuit", "export-transcoders", str(out), "--dicts", ",".join(names),
                                              *base])


def test_bad_transcoder_sets_one_line_exit_2(tiny_models, tiny_dirs, tmp_path, capsys):
    from interp.methods.circuits.transcoder_set import export_transcoder_set

    model = tiny_models["llama"]
    good = tmp_path / "good"
    export_transcoder_set(_set(model), good, "tiny-llama")
    one_layer = tmp_path / "one-layer"
    export_transcoder_set({0: _set(model)[0]}, one_layer, "tiny-llama")
    wide = tmp_path / "wide"
    export_transcoder_set(_set(model, d_model=model.info.d_model + 8), wide, "tiny-llama")
    empty = tmp_path / "empty"
    empty.mkdir()
    not_yaml = tmp_path / "not-yaml"
    not_yaml.mkdir()
    (not_yaml / "config.yaml").write_text("model_kind: [transcoder_set\n")
    other_kind = tmp_path / "other-kind"
    other_kind.mkdir()
    (other_kind / "config.yaml").write_text("model_kind: cross_layer_transcoder\n")
    broken = tmp_path / "broken"
    export_transcoder_set(_set(model), broken, "tiny-llama")
    (broken / "layer_1.safetensors").write_bytes(b"not a safetensors file at all")
    gone = tmp_path / "gone"
    export_transcoder_set(_set(model), gone, "tiny-llama")
    (gone / "layer_1.safetensors").unlink()
    base = ["--model", str(tiny_dirs["llama"]), "--store", str(tmp_path / "store")]
    graph = ["circuit", "graph", "--prompt", PROMPT, *base, "--no-store", "--transcoders"]
    cases = {
        "no such folder": [*graph, str(tmp_path / "missing")],
        "config.yaml": [*graph, str(empty)],
        "not YAML": [*graph, str(not_yaml)],
        "model_kind": [*graph, str(other_kind)],
        "for 1 layer": [*graph, str(one_layer)],
        "d_model": [*graph, str(wide)],
        "not a safetensors file": [*graph, str(broken)],
        "missing": [*graph, str(gone)],
        "pass one of them": [*graph, str(good), "--dicts", "random:64:8"],
    }
    for dir_, msg in ((tmp_path / "missing", "no such folder"), (empty, "config.yaml"), (one_layer, "for 1 layer"),
                      (wide, "d_model"), (broken, "not a safetensors file")):
        cases[f"import: {msg}"] = ["circuit", "import-transcoders", str(dir_), *base]
    cases["import: needs the set's folder"] = ["circuit", "import-transcoders", *base]
    cases["import: --name '' is empty"] = ["circuit", "import-transcoders", str(good), *base, "--name", ""]
    cases["import: invalid dictionary name"] = ["circuit", "import-transcoders", str(good), *base, "--name", "../x"]
    for msg, argv in cases.items():
        line = _one_error(capsys, argv)
        assert msg.split(": ", 1)[-1] in line, (msg, line)
    from interp.store import Store

    assert Store(tmp_path / "store").read("dictionaries").empty  # nothing was stored by a refused import


def test_set_for_another_model_refused_before_loading(tiny_models, tmp_path, monkeypatch, capsys):
    """A 2-layer set for the 30-layer SmolLM2: refused from the config's file count, the model never loaded."""
    import interp.models
    from interp.methods.circuits.transcoder_set import export_transcoder_set

    def refuse(*args, **kwargs):
        raise AssertionError("load_model was called")

    monkeypatch.setattr(interp.models, "load_model", refuse)
    folder = tmp_path / "set"
    export_transcoder_set(_set(tiny_models["llama"]), folder, "tiny-llama")
    base = ["--model", "smollm2-135m", "--store", str(tmp_path / "store")]
    for argv in (["circuit", "graph", "--prompt", PROMPT, "--transcoders", str(folder), *base],
                 ["circuit", "import-transcoders", str(folder), *base]):
        assert "has transcoders for 2 layers (0..1); smollm2-135m has 30 layers" in _one_error(capsys, argv)


def test_set_without_a_file_list_reads_the_layer_files_beside_its_config(tmp_path):
    """As circuit-tracer's hub configs (hf:// paths) once copied: layer_<i>.safetensors, in layer order."""
    from interp.methods.circuits.transcoder_set import read_set_config

    (tmp_path / "config.yaml").write_text("model_kind: transcoder_set\nfeature_input_hook: ln2.hook_normalized\n"
                                          "feature_output_hook: hook_mlp_out\n")
    for layer in range(12):
        (tmp_path / f"layer_{layer}.safetensors").write_bytes(b"")
    _, files = read_set_config(tmp_path)
    assert [f.name for f in files] == [f"layer_{layer}.safetensors" for layer in range(12)]
    (tmp_path / "config.yaml").write_text((tmp_path / "config.yaml").read_text() + "transcoders:\n" + "".join(
        f"- hf://org/repo/layer_{layer}.safetensors\n" for layer in range(12)))
    assert read_set_config(tmp_path)[1] == files
