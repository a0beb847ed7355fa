"""Clamp reports, sweeps, complexity and the faithfulness benchmark: the Ray backend (a local
instance, 2 workers) fills the store as the local backend does, and a rerun computes nothing.

Every value is compared bitwise (floats included; wall and CPU seconds left out): on these
tiny models no reduction depends on torch's thread count (see test_job_backends.py). The one
comparison within tolerance is of different shardings of complexity, which is a different
computation (ridge solves over other column sets)."""

from __future__ import annotations


import pandas as pd
import pytest
import torch

from test_job_backends import _close, _payloads  # noqa: E402 - same folder
from interp.dictionaries.train_config import TrainConfig
from interp.jobs.clamp_check import BATCH, ClampReportJob, check_specialised
from interp.jobs.complexity import SHARD_NAME, RunConfig, run_complexity
from interp.jobs.dictionaries import DataConfig, SweepConfig, run_sweep
from interp.jobs.faithfulness_benchmark import BenchmarkConfig, run_benchmark
from interp.jobs.neuron_map import map_model
from interp.jobs.units import run_job
from interp.methods.neurons.clamping import ClampConfig
from interp.store import Store

def test_clamp_report_on_ray_equals_local_batch_by_batch(tmp_path, tiny_dirs, ray_local):
    model, prompts = str(tiny_dirs["llama"]), ("The cat", "The dog")
    config = ClampConfig(values=(0.0, 20.0), n_controls=2, neutral_prompts=())
    stores, reports = {}, {}
    for backend in ("local", "ray"):
        stores[backend] = store = Store(tmp_path / backend)
        map_model(store, model, directions=("down",), top_k=2, progress=False)
        reports[backend] = check_specialised(store, model, n=5, prompts=prompts, config=config, batch_size=2,
                                             backend=backend)
    a, b = reports["local"].table(), reports["ray"].table()
    assert a[["layer", "index", "target_id"]].equals(b[["layer", "index", "target_id"]]) and len(a) == 5
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    batches = _payloads(stores["local"], BATCH)
    assert len(batches) == 3  # 5 neurons in batches of 2
    _close(batches, _payloads(stores["ray"], BATCH), rtol=0, atol=0)
    _close(_payloads(stores["local"], "clamp_report"), _payloads(stores["ray"], "clamp_report"), rtol=0, atol=0)
    # Batching does not change a neuron's sweep (same process: bitwise).
    whole = check_specialised(stores["local"], model, n=5, prompts=prompts, config=config, batch_size=5)
    pd.testing.assert_frame_equal(whole.table(), a, check_exact=True)
    rerun = run_job(stores["ray"], ClampReportJob(model, 5, prompts, config, batch_size=2), backend="ray",
                    progress=False)
    assert rerun.done == {} and len(rerun.skipped) == 3


def _dictionary_tensors(store: Store, name: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    folder = store.dictionary_dir(name)
    return {f"{p.name}:{k}": v for p in sorted(folder.glob("*.safetensors")) for k, v in load_file(p).items()}


def test_sweep_on_ray_equals_local_dictionary_by_dictionary(tmp_path, tiny_dirs, corpus, ray_local):
    # Bitwise: names, metrics, every weight of every dictionary.
    config = SweepConfig(layer=1, ks=(2, 4), kinds=("transcoder", "sae"),
                         train=TrainConfig(train_tokens=384, batch_size=64, expansion=2, warmup_steps=1,
                                           dead_after_tokens=256, aux_k=8),
                         data=DataConfig(corpus=corpus, ctx_len=16, eval_tokens=64, dashboard_tokens=0,
                                         buffer_windows=8))
    model = str(tiny_dirs["llama"])
    local, distributed = Store(tmp_path / "local"), Store(tmp_path / "ray")
    a = run_sweep(model, local, config, progress=False)
    b = run_sweep(model, distributed, config, progress=False, backend="ray")
    assert a.table["name"].tolist() == b.table["name"].tolist() and len(a.table) == 4
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=True)
    for name in a.table["name"]:
        x, y = _dictionary_tensors(local, name), _dictionary_tensors(distributed, name)
        assert set(x) == set(y) and x
        for key in x:
            torch.testing.assert_close(x[key], y[key], rtol=0, atol=0, msg=f"{name} {key}")
    _close(_payloads(local, "dictionary_sweep")[f"llama/L1/topk"]["table"],
           _payloads(distributed, "dictionary_sweep")["llama/L1/topk"]["table"], rtol=0, atol=0)
    rows = lambda s: s.read("dictionaries").sort_values("name")["name"].tolist()  # noqa: E731
    assert rows(local) == rows(distributed)
    again = run_sweep(model, distributed, config, progress=False, backend="ray")  # nothing is trained again
    assert len(distributed.read("dictionaries")) == 4 and again.table.equals(b.table)


def test_complexity_on_ray_equals_local_shard_by_shard(tmp_path, tiny_dirs, corpus, ray_local):
    # Bitwise: shard payloads, per-feature rows (K, curves, importance, flow), summary.
    config = RunConfig(corpus=corpus, n_tokens=16 * 12, ctx_len=16, positions_per_window=None, importance_windows=2,
                       flow=True)
    model = str(tiny_dirs["llama"])
    stores = {b: Store(tmp_path / b) for b in ("local", "ray")}
    runs = {b: run_complexity(model, "neurons:1:0-9", config, store=stores[b], shard_size=4, backend=b)
            for b in stores}
    shards = _payloads(stores["local"], SHARD_NAME)
    assert len(shards) == 3  # 10 neurons in shards of 4
    _close(shards, _payloads(stores["ray"], SHARD_NAME), rtol=0, atol=0)
    a, b = (s.read("complexity").drop(columns=["run_id"]).sort_values(["site", "index"]).reset_index(drop=True)
            for s in stores.values())
    assert a["index"].tolist() == list(range(10))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    summaries = [{k: v for k, v in r.summary.items() if k != "timings"} for r in runs.values()]
    _close(*summaries, rtol=0, atol=0)
    # One shard and three shards score the features alike, within 1e-5 (other column sets).
    whole = run_complexity(model, "neurons:1:0-9", config, store=Store(tmp_path / "one"))
    pd.testing.assert_series_equal(whole.frame.sort_values("index")["K"].reset_index(drop=True), a["K"],
                                   check_exact=False, rtol=1e-5, check_names=False, check_dtype=False)
    assert run_complexity(model, "neurons:1:0-9", config, store=stores["ray"], shard_size=4,
                          backend="ray").summary["n_features"] == 10  # rerun: every shard stored


def _items(adapter, texts):
    out = []
    for text in texts:
        tokens = adapter.to_tokens(text)[0].tolist()
        probs = torch.softmax(adapter.logits(torch.tensor(tokens))[0, -1].float(), -1)
        out.append({"tokens": tokens, "prompt": text, "target": int(probs.argmax()), "p": float(probs.max())})
    return out


def test_faithfulness_benchmark_on_ray_equals_local_prompt_by_prompt(tmp_path, tiny_dirs, tiny_models, ray_local):
    # Bitwise: every record (importances, metrics) and the summary; seconds are not compared.
    items = _items(tiny_models["llama"], ["the cat sat on the mat and", "she said that he was a", "int main"])
    config = BenchmarkConfig(tag="t", n=3, probes=2, steps=3, ig_steps=2, masks=2, shard_size=2,
                             methods=("reagent", "occlusion", "random"))
    model = str(tiny_dirs["llama"])
    stores = {b: Store(tmp_path / b) for b in ("local", "ray")}
    tables = {b: run_benchmark(stores[b], model, config, items=items, backend=b, progress=False) for b in stores}
    records = [_payloads(s, "reagent_faithfulness_records:t") for s in stores.values()]
    assert sorted(records[0]) == ["0000", "0001", "0002"]
    _close(*records, rtol=0, atol=0)
    drop = [c for c in tables["local"][0].columns if "seconds" in c]
    pd.testing.assert_frame_equal(tables["local"][0].drop(columns=drop), tables["ray"][0].drop(columns=drop),
                                  check_exact=True)
    with pytest.raises(ValueError, match="holds records made with"):
        run_benchmark(stores["local"], model, BenchmarkConfig(tag="t", n=3, probes=3, steps=3, ig_steps=2, masks=2,
                                                              methods=("reagent", "occlusion", "random")),
                      items=items, progress=False)


def _frame(store: Store, table: str) -> pd.DataFrame:
    """`table`'s rows without run ids, nested values (token windows, arrays) as text, sorted."""
    import json

    import numpy as np

    def text(v):
        if isinstance(v, np.ndarray):
            v = v.tolist()
        return json.dumps(v, sort_keys=True, default=str) if isinstance(v, (list, dict)) else v

    frame = store.read(table).drop(columns=["run_id"], errors="ignore")
    frame = frame.apply(lambda col: col.map(text) if col.dtype == object else col)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_examples_job_on_ray_equals_local_site_by_site(tmp_path, tiny_dirs, tiny_models, corpus, ray_local):
    # Bitwise: every example row, feature row and histogram bundle; one unit per layer on Ray.
    from interp.dictionaries.dictionary import Dictionary
    from interp.dictionaries.io import save_dictionary
    from interp.jobs.examples import ExamplesJobConfig, collect_examples
    from interp.methods.examples.stats import ExampleConfig
    from interp.methods.examples.store import bundle_name

    model = str(tiny_dirs["llama"])
    adapter = tiny_models["llama"]
    config = ExamplesJobConfig(tokens=96, corpus=corpus, ctx_len=16, skip_positions=2, batch_size=4, layers_per_unit=1)
    examples = ExampleConfig(n_top=3, n_quantiles=2, per_quantile=2, left=4, right=2, n_bins=8)
    tc = Dictionary(adapter.info.d_model, 24, adapter.info.d_model, kind="transcoder", arch="relu")
    tc.init_weights(torch.Generator().manual_seed(3))
    summaries, stores = {}, {}
    for backend in ("local", "ray"):
        stores[backend] = store = Store(tmp_path / backend)
        s = adapter.sites(1)
        folder = save_dictionary(store, "tiny/tc", tc, {"hook_name": s.mlp_in, "hook_name_out": s.mlp_out})
        with store.run("test") as run:
            store.write("dictionaries", [{"name": "tiny/tc", "model": adapter.store_name, "site": s.mlp_in,
                                          "hook_out": s.mlp_out, "kind": "transcoder", "arch": "relu",
                                          "path": str(folder.relative_to(store.root))}], run_id=run)
        summaries[backend] = collect_examples(store, model, config, examples, progress=False, backend=backend)
    a, b = summaries["local"], summaries["ray"]
    assert a.passes == b.passes == 2 and sorted(a.done) == sorted(b.done) and len(a.done) == 3  # 2 layers + 1 dict
    assert a.n_examples == b.n_examples > 0
    for table in ("activation_examples", "features"):
        pd.testing.assert_frame_equal(_frame(stores["local"], table), _frame(stores["ray"], table), check_exact=True)
    for site, source in ((adapter.sites(0).mlp_hidden, ""), (s.mlp_in, "tiny/tc")):
        x = stores["local"].load_tensors(bundle_name(adapter.store_name, site, source))
        y = stores["ray"].load_tensors(bundle_name(adapter.store_name, site, source))
        assert set(x) == set(y) and x
        for key in x:
            torch.testing.assert_close(x[key], y[key], rtol=0, atol=0, msg=key)
    again = collect_examples(stores["ray"], model, config, examples, progress=False, backend="ray")
    assert again.done == [] and sorted(again.skipped) == sorted(a.done) and again.passes == 0
