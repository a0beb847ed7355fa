"""The GPU path (run by benchmarks/gpu_check.sh; skipped where torch sees no CUDA device): each
job on ``--device cuda`` fills the store as on the CPU, within float tolerance (GPU kernels
reduce in another order), and what it stores is on the CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from interp.jobs.units import resolve_device
from interp.store import Store

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_auto_takes_the_gpu():
    assert resolve_device("auto") == "cuda" and resolve_device("cuda") == "cuda"


def test_neuron_map_on_the_gpu_matches_the_cpu(tmp_path, tiny_dirs):
    from interp.jobs.neuron_map import map_model

    model = str(tiny_dirs["llama"])
    stores = {d: Store(tmp_path / d) for d in ("cpu", "cuda")}
    for device, store in stores.items():
        map_model(store, model, directions=("up", "down"), top_k=3, progress=False, device=device)
    a, b = (s.features(model="llama").sort_values(["site", "index"]) for s in stores.values())
    assert len(a) == len(b) > 0
    assert np.allclose(a["specialisation"], b["specialisation"], rtol=1e-4, atol=1e-6)
    assert np.allclose(a["logit_z"], b["logit_z"], rtol=1e-4, atol=1e-5)
    ta, tb = (s.read("feature_tokens").sort_values(["site", "direction", "index", "end", "rank"]) for s in
              stores.values())
    agree = float(np.mean(ta["token_id"].to_numpy() == tb["token_id"].to_numpy()))
    assert agree > 0.99, f"only {agree:.1%} of decoded tokens agree (near-ties may swap, no more)"


def test_dictionary_training_on_the_gpu_matches_the_cpu_and_saves_from_the_cpu(tmp_path):
    from interp.dictionaries.activations import in_memory_batches
    from interp.dictionaries.io import load_dictionary_dir, save_dictionary_dir
    from interp.dictionaries.train_config import TrainConfig
    from interp.dictionaries.training import train_dictionaries

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4096, 32, generator=g)
    config = TrainConfig(kind="sae", arch="topk", k=4, expansion=4, batch_size=256, train_tokens=4096,
                         warmup_steps=2, dead_after_tokens=1024, aux_k=8)
    results = {d: train_dictionaries([in_memory_batches(x, None, 256, 0)], [config], [(32, 32)], progress=False,
                                     device=None if d == "cpu" else d)[0] for d in ("cpu", "cuda")}
    gpu = results["cuda"].dictionary
    assert gpu.W_enc.device.type == "cuda"
    for name, p in results["cpu"].dictionary.named_parameters():
        torch.testing.assert_close(dict(gpu.named_parameters())[name].cpu(), p, rtol=1e-3, atol=1e-4)
    save_dictionary_dir(gpu, tmp_path / "d", {"hook_name": "blocks.0.hook_resid_post"})
    loaded, _ = load_dictionary_dir(tmp_path / "d")
    torch.testing.assert_close(loaded.W_dec, gpu.W_dec.cpu())


def test_clamp_report_on_the_gpu_matches_the_cpu(tmp_path, tiny_dirs):
    from interp.jobs.clamp_check import check_specialised
    from interp.jobs.neuron_map import map_model
    from interp.methods.neurons.clamping import ClampConfig

    model, store = str(tiny_dirs["llama"]), Store(tmp_path / "store")
    map_model(store, model, directions=("down",), top_k=2, progress=False, device="cpu")
    config = ClampConfig(values=(0.0, 20.0), n_controls=2, neutral_prompts=())
    tables = [check_specialised(store, model, n=4, prompts=("The cat",), config=config, device=d).table()
              for d in ("cpu", "cuda")]
    assert tables[0][["layer", "index", "target_id"]].equals(tables[1][["layer", "index", "target_id"]])
    assert np.allclose(tables[0]["rise"], tables[1]["rise"], rtol=1e-3, atol=1e-6)


def test_sweep_on_the_gpu_stores_cpu_files_close_to_the_cpu_run(tmp_path, tiny_dirs):
    from interp.dictionaries.io import load_dictionary
    from interp.dictionaries.train_config import TrainConfig
    from interp.jobs.dictionaries import DataConfig, SweepConfig, run_sweep

    text = tmp_path / "docs.txt"
    text.write_text("\n\n".join(f"the cat {i} sat on the mat and the dog {i} ate the bone." * 4 for i in range(80)))
    config = SweepConfig(layer=1, ks=(2,), kinds=("sae",), train=TrainConfig(train_tokens=384, batch_size=64,
                                                                               expansion=2, warmup_steps=1,
                                                                               dead_after_tokens=256, aux_k=8),
                         data=DataConfig(corpus=f"text:{text}", ctx_len=16, eval_tokens=64, dashboard_tokens=0,
                                         buffer_windows=8))
    results = {d: run_sweep(str(tiny_dirs["llama"]), Store(tmp_path / d), config, progress=False, device=d)
               for d in ("cpu", "cuda")}
    assert np.allclose(results["cpu"].table["fvu"], results["cuda"].table["fvu"], rtol=1e-2)
    name = results["cuda"].table["name"].iloc[0]
    dictionary, meta = load_dictionary(Store(tmp_path / "cuda"), name)
    assert dictionary.W_enc.device.type == "cpu" and json.dumps(meta)


def test_dashboards_on_the_gpu_match_the_cpu(tmp_path, tiny_dirs, tiny_models):
    from interp.dictionaries.dashboards import DashboardConfig
    from interp.dictionaries.dictionary import Dictionary
    from interp.dictionaries.io import save_dictionary
    from interp.jobs.dashboards import DashboardsJobConfig, run_dashboards

    adapter = tiny_models["llama"]
    text = tmp_path / "docs.txt"
    text.write_text("\n\n".join(f"the cat {i} sat on the mat and the dog {i} ate the bone." * 4 for i in range(80)))
    s = adapter.sites(1)
    tc = Dictionary(adapter.info.d_model, 24, adapter.info.d_model, kind="transcoder", arch="relu")
    tc.init_weights(torch.Generator().manual_seed(3))
    frames = {}
    for device in ("cpu", "cuda"):
        store = Store(tmp_path / device)
        folder = save_dictionary(store, "tiny/tc", tc, {"hook_name": s.mlp_in, "hook_name_out": s.mlp_out})
        with store.run("test") as run:
            store.write("dictionaries", [{"name": "tiny/tc", "model": adapter.store_name, "site": s.mlp_in,
                                          "hook_out": s.mlp_out, "kind": "transcoder", "arch": "relu",
                                          "path": str(folder.relative_to(store.root))}], run_id=run)
        run_dashboards(store, str(tiny_dirs["llama"]), ["tiny/tc"], DashboardsJobConfig(
            tokens=112, corpus=f"text:{text}", ctx_len=16), DashboardConfig(n_top=3), progress=False, device=device)
        frames[device] = store.read("features").sort_values("index")
    assert np.allclose(frames["cpu"]["max_act"], frames["cuda"]["max_act"], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("command", [
    ["circuit", "--prompt", "The cat sat", "--dicts", "random:16:4"],
    ["circuit", "graph", "--prompt", "The cat sat", "--dicts", "random:16:4", "--max-feature-nodes", "8"],
    ["attribute", "--prompt", "The cat sat", "--method", "reagent", "--max-probe-steps", "3"],
    ["obsprop", "--observable", " the", "-", " was", "--top", "3"],
], ids=lambda c: " ".join(w for w in c[:2] if not w.startswith("-")))
def test_commands_run_on_the_gpu_and_store_what_they_computed(command, tmp_path, tiny_dirs):
    from interp.cli import main

    assert main(command + ["--model", str(tiny_dirs["llama"]), "--store", str(tmp_path), "--device", "cuda"]) == 0
    assert Store(tmp_path).read("runs")["status"].tolist() == ["done"]
