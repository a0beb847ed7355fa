"""The dictionary dashboards job on a tiny model: what it stores matches the latents, a rerun computes
only the missing dictionaries, Ray (a local instance, 2 workers) stores the same rows as the local
backend bitwise, and the command line refuses an unknown dictionary in one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.cli import one_line
from interp.cli import main
from interp.dictionaries.dashboards import DashboardConfig
from interp.dictionaries.dictionary import Dictionary
from interp.dictionaries.io import save_dictionary
from interp.jobs.dashboards import MARKER, DashboardsJobConfig, run_dashboards
from interp.jobs.units import JobFailed
from interp.store import Store

SKIP = 2
DASH = DashboardConfig(n_top=3, n_quantiles=2, per_quantile=2, left=4, right=2, n_tokens=3)
def _publish(store, adapter, name: str, kind: str, layer: int, seed: int) -> Dictionary:
    """A random dictionary (biases shifted so that some latents fire) stored as training stores one."""
    s = adapter.sites(layer)
    site = s.mlp_in if kind == "transcoder" else s.mlp_out
    d = adapter.info.d_model
    dictionary = Dictionary(d, 24, d, kind=kind, arch="relu")
    dictionary.init_weights(torch.Generator().manual_seed(seed))
    with torch.no_grad():
        dictionary.b_enc.normal_(0, 0.1, generator=torch.Generator().manual_seed(seed + 1))
    out = s.mlp_out if kind == "transcoder" else site
    folder = save_dictionary(store, name, dictionary, {"hook_name": site, "hook_name_out": out})
    with store.run("test") as run:
        store.write("dictionaries", [{"name": name, "model": adapter.store_name, "site": site, "hook_out": out,
                                      "kind": kind, "arch": "relu", "path": str(folder.relative_to(store.root))}],
                    run_id=run)
    return dictionary.eval()


def _windows(adapter, n=6, ctx=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, adapter.info.d_vocab, (n, ctx), generator=g)
    ids[:, 0] = adapter.tokenizer.bos_token_id
    return ids


def _frame(store: Store, table: str) -> pd.DataFrame:
    """`table`'s rows without run ids, nested values as text, sorted."""
    def text(v):
        if isinstance(v, np.ndarray):
            v = v.tolist()
        return json.dumps(v, sort_keys=True, default=str) if isinstance(v, (list, dict)) else v

    frame = store.read(table).drop(columns=["run_id"], errors="ignore")
    frame = frame.apply(lambda col: col.map(text) if col.dtype == object else col)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_stored_dashboards_match_the_latents_and_a_rerun_computes_only_what_is_missing(tmp_path, tiny_models,
                                                                                        monkeypatch):
    adapter = tiny_models["llama"]
    store = Store(tmp_path)
    tc = _publish(store, adapter, "tiny/tc", "transcoder", 1, 3)
    _publish(store, adapter, "tiny/sae", "sae", 0, 5)
    windows = _windows(adapter)
    config = DashboardsJobConfig(tokens=96, ctx_len=16, skip_positions=SKIP, batch_size=4)
    first = run_dashboards(store, adapter, ["tiny/tc"], config, DASH, windows=windows, progress=False)
    assert first.done == ["tiny/tc"] and first.skipped == [] and first.n_latents == 24
    assert first.n_tokens == 6 * (16 - SKIP)

    site = adapter.sites(1).mlp_in
    with torch.no_grad():
        latents = tc.encode(adapter.run(windows, names=[site]).cache[site][:, SKIP:].float())  # (6, 14, 24)
    feats = store.read("features", where={"source": "tiny/tc"}).sort_values("index")
    assert feats["index"].tolist() == list(range(24)) and set(feats["site"]) == {site}
    np.testing.assert_allclose(feats["max_act"], latents.amax((0, 1)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(feats["density"], (latents > 0).float().mean((0, 1)).numpy())
    live = int(latents.amax((0, 1)).argmax())
    ex = store.read("activation_examples", where={"source": "tiny/tc", "index": live})
    top = ex[ex["group"] == "top"].sort_values("example_rank")
    peaks = latents[..., live].amax(1).sort(descending=True).values[:3]
    np.testing.assert_allclose(top["max_act"], peaks[peaks > 0].numpy(), rtol=1e-5)
    w = int(latents[..., live].amax(1).argmax())
    p = int(latents[w, :, live].argmax()) + SKIP  # the window position of the top token
    assert list(top.iloc[0]["token_ids"]) == windows[w, max(0, p - 4):p + 3].tolist()
    tables = store.read("feature_tokens", where={"source": "tiny/tc", "index": live})
    assert set(tables["direction"]) == {"decoder", "deembed"} and len(tables) == 3 * 2 + 3  # top+bottom, top

    # A label another job set survives a rewrite; the second run computes only the SAE.
    with store.run("label") as run:
        store.write("features", feats.drop(columns=["run_id"]).assign(label="cat latent"), run_id=run)
    second = run_dashboards(store, adapter, None, config, DASH, windows=windows, progress=False)
    assert second.done == ["tiny/sae"] and second.skipped == ["tiny/tc"]
    assert set(store.read("features", where={"source": "tiny/tc"})["label"]) == {"cat latent"}
    assert run_dashboards(store, adapter, None, config, DASH, windows=windows, progress=False).done == []
    # A unit killed between its writes leaves no marker: the next run computes it (here with other
    # settings, which alone would redo it too); a retrained dictionary is redone.
    import interp.jobs.dashboards as job_module

    def killed(store, data, run_id):
        store.write("features", data.features, run_id=run_id)
        raise RuntimeError("killed after the features")

    other = DashboardConfig(n_top=2)
    monkeypatch.setattr(job_module, "write_dashboards", killed)
    with pytest.raises(JobFailed, match="tiny/sae: RuntimeError: killed after the features"):
        run_dashboards(store, adapter, ["tiny/sae"], config, other, windows=windows, progress=False)
    monkeypatch.undo()
    marker = store.read("results", where={"name": MARKER, "key": f"{adapter.store_name}|tiny/sae"})
    assert json.loads(marker["payload"].iloc[0])["settings"]["n_top"] == 3  # still the first run's
    assert run_dashboards(store, adapter, ["tiny/sae"], config, other, windows=windows, progress=False).done == [
        "tiny/sae"]
    assert run_dashboards(store, adapter, ["tiny/sae"], config, other, windows=windows, progress=False).done == []
    _publish(store, adapter, "tiny/tc", "transcoder", 1, 7)
    assert run_dashboards(store, adapter, None, config, DASH, windows=windows, progress=False).done == [
        "tiny/sae", "tiny/tc"]  # the SAE's marker holds the other settings, the transcoder is new


def test_dashboards_on_ray_equal_local_dictionary_by_dictionary(tmp_path, tiny_dirs, tiny_models, corpus, ray_local):
    # Bitwise: every feature row, token table row and example row of both dictionaries.
    model, adapter = str(tiny_dirs["llama"]), tiny_models["llama"]
    config = DashboardsJobConfig(tokens=112, corpus=corpus, ctx_len=16, skip_positions=SKIP, batch_size=4)
    stores, summaries = {}, {}
    for backend in ("local", "ray"):
        stores[backend] = store = Store(tmp_path / backend)
        _publish(store, adapter, "tiny/tc", "transcoder", 1, 3)
        _publish(store, adapter, "tiny/sae", "sae", 0, 5)
        summaries[backend] = run_dashboards(store, model, None, config, DASH, progress=False, backend=backend,
                                            device="cpu")
    a, b = summaries["local"], summaries["ray"]
    assert a.done == b.done == ["tiny/sae", "tiny/tc"] and a.n_latents == b.n_latents == 48
    assert a.n_examples == b.n_examples > 0 and a.n_tokens == b.n_tokens == 8 * (16 - SKIP)
    for table in ("features", "feature_tokens", "activation_examples"):
        x, y = _frame(stores["local"], table), _frame(stores["ray"], table)
        assert len(x) > 0
        pd.testing.assert_frame_equal(x, y, check_exact=True)
    again = run_dashboards(stores["ray"], model, None, config, DASH, progress=False, backend="ray", device="cpu")
    assert again.done == [] and again.skipped == ["tiny/sae", "tiny/tc"]


def test_an_unknown_dictionary_is_one_line_naming_the_stored_ones(tmp_path, tiny_dirs, tiny_models, capsys, no_model):
    store = Store(tmp_path)
    _publish(store, tiny_models["llama"], "tiny/tc", "transcoder", 1, 3)
    assert main(["dashboards", "--model", str(tiny_dirs["llama"]), "--dictionary", "tiny/nope", "--store",
                 str(tmp_path)]) == 2
    assert one_line(capsys) == ("interp: error: unknown dictionary 'tiny/nope' for model 'llama'; stored: tiny/tc")
    assert store.read("runs")["command"].tolist() == ["test"]  # no job run was opened


def test_the_command_stores_dashboards_and_a_rerun_skips_them(tmp_path, tiny_dirs, tiny_models, corpus, capsys):
    store = Store(tmp_path)
    _publish(store, tiny_models["llama"], "tiny/tc", "transcoder", 1, 3)
    command = ["dashboards", "--model", str(tiny_dirs["llama"]), "--dictionary", "tiny/tc", "--corpus", corpus,
               "--ctx-len", "16", "--tokens", "56", "--n-top", "2", "--device", "cpu", "--store", str(tmp_path)]
    assert main(command) == 0
    assert capsys.readouterr().out.startswith("1 dictionaries computed, 0 already in the store; 24 latents")
    assert len(store.read("features", where={"source": "tiny/tc"})) == 24
    assert main(command) == 0
    assert capsys.readouterr().out.startswith("0 dictionaries computed, 1 already in the store")
