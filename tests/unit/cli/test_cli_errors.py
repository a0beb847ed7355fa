"""Errors a person can act on: one line naming the value, no traceback, nothing half done."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch

from helpers.cli import one_line as _one_line
from interp.cli import main
from interp.cli.errors import describe_os_error
from interp.store import Store
from interp.store.files import atomic_write






def test_unwritable_store_is_one_line_naming_the_path(capsys):
    # /sys refuses new directories, for root as well (a chmod'ed folder does not stop root).
    root = "/sys/interp-no-such-store"
    code = main(["store", "info", "--store", root])
    line = _one_line(capsys)
    assert code != 0 and root in line and "writable --store" in line


def test_read_only_error_is_not_hidden_by_the_temp_file_clean_up(tmp_path, monkeypatch):
    def write(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise OSError(errno.EROFS, "Read-only file system", str(tmp))

    def unlink(self, missing_ok=False):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", unlink)
    with pytest.raises(OSError) as info:
        atomic_write(tmp_path / "table.parquet", write)
    assert info.value.errno == errno.EROFS
    text = describe_os_error(info.value)
    assert "read-only" in text and str(tmp_path) in text


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left"), (errno.ENAMETOOLONG, "too long")])
def test_full_disk_and_long_names_say_the_cause(code, words):
    text = describe_os_error(OSError(code, "x", "/data/store/features/part.parquet"))
    assert text.startswith("/data/store/features/part.parquet: ") and words in text


def test_overlong_train_name_is_refused_before_any_work(tmp_path, no_model, capsys):
    name = "d" * 300
    code = main(["train", "--kind", "sae", "--layer", "0", "--name", name, "--store", str(tmp_path / "s")])
    line = _one_line(capsys)
    assert code == 2 and "--name" in line and "too long" in line and "300 bytes" in line


def test_non_utf8_jsonl_names_the_file_and_line(tmp_path):
    from interp.corpus.sources import load_documents

    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(ValueError, match=rf"{path}:2 is not UTF-8"):
        load_documents(f"jsonl:{path}")


def test_show_neuron_out_of_range_names_the_valid_range_without_loading(tmp_path, no_model, capsys):
    code = main(["show", "neuron", "smollm2-135m", "99:1", "--store", str(tmp_path)])
    line = _one_line(capsys)
    assert code == 2 and "valid layers 0-29" in line and "--layers" not in line
    assert main(["show", "neuron", "smollm2-135m", "3:1536", "--store", str(tmp_path)]) == 2
    assert "valid indices 0-1535" in _one_line(capsys)


def test_clamp_empty_prompt_and_bad_layer_refused_before_loading(tmp_path, no_model, capsys):
    base = ["clamp", "--model", "smollm2-135m", "--value", "4", "--store", str(tmp_path)]
    assert main(base + ["--neuron", "1:1", "--prompt", "  "]) == 2
    assert "--prompt '  ' is empty" in _one_line(capsys)
    assert main(base + ["--neuron", "30:1", "--prompt", "hi"]) == 2
    assert "valid layers 0-29" in _one_line(capsys)


def _graph_file(tmp_path, **change) -> Path:
    graph = {"schema": "interp.circuit/1", "meta": {"key": "demo"},
             "nodes": [{"id": "a", "type": "embed"}, {"id": "b", "type": "target"}],
             "edges": [{"source": "a", "target": "b", "weight": 0.5}]}
    graph.update(change)
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(graph))
    return path


@pytest.mark.parametrize("change", [
    {"meta": {"key": "../../outside"}},
    {"nodes": [{"id": "a", "type": "embed", "influence": "lots"}, {"id": "b", "type": "target"}]},
    {"nodes": "ab"},
    {"edges": [{"source": "a"}]},
])
def test_crafted_circuit_import_fails_before_writing_or_opening_a_run(tmp_path, change, capsys):
    from interp.methods.circuits.graph import NODE_TYPES

    assert {"embed", "target"} <= set(NODE_TYPES)
    root = tmp_path / "store"
    code = main(["circuit", "import", str(_graph_file(tmp_path, **change)), "--store", str(root)])
    line = _one_line(capsys)
    assert code == 2 and "graph" in line
    store = Store(root)
    assert store.read("runs").empty and store.read("results").empty
    assert not (root / "tensors").exists() or not any((root / "tensors").rglob("*.safetensors"))


def test_ctrl_c_is_one_line_exit_130_and_the_run_is_cancelled(tmp_path, monkeypatch, capsys):
    import interp.methods.circuits.store as circuit_store

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(circuit_store, "save_graph", interrupted)
    root = tmp_path / "store"
    code = main(["circuit", "import", str(_graph_file(tmp_path)), "--store", str(root)])
    line = _one_line(capsys)
    assert code == 130 and "interrupted" in line
    assert Store(root).read("runs")["status"].tolist() == ["cancelled"]


def test_decode_directions_of_no_rows_says_so():
    from interp.methods.neurons.decoding import decode_directions

    with pytest.raises(ValueError, match="no directions to decode"):
        decode_directions(torch.zeros(0, 4), torch.randn(4, 10), None)


def test_circuit_unknown_dictionary_and_empty_prompt_refused_before_loading(tmp_path, no_model, capsys):
    base = ["circuit", "--model", "smollm2-135m", "--target", 'logit:" Paris"', "--store", str(tmp_path)]
    assert main(base + ["--prompt", "The capital", "--dicts", "nope"]) == 2
    line = _one_line(capsys)
    assert "unknown dictionary 'nope'" in line and "stored: none" in line
    assert main(base + ["--prompt", " ", "--dicts", "nope"]) == 2
    assert "--prompt ' ' is empty" in _one_line(capsys)


def test_local_model_shape_comes_from_config_json_or_the_store_row(tmp_path, no_model, capsys):
    import pandas as pd

    folder = tmp_path / "tiny-local"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"num_hidden_layers": 2, "intermediate_size": 64}))
    store = str(tmp_path / "store")
    assert main(["show", "neuron", str(folder), "2:0", "--store", store]) == 2
    assert "valid layers 0-1" in _one_line(capsys)
    assert main(["show", "neuron", str(folder), "1:64", "--store", store]) == 2
    assert "valid indices 0-63" in _one_line(capsys)
    # The store's models row wins over the registry: a store that recorded 4 layers allows layer 3.
    s = Store(store)
    with s.run("test", {}) as run:
        s.write("models", pd.DataFrame([{"model": "smollm2-135m", "architecture": {}, "n_layers": 4, "d_model": 8,
                                         "d_mlp": 16, "d_vocab": 10, "n_heads": 2, "n_ctx": 32, "info": {}}]),
                run_id=run)
    assert main(["show", "neuron", "smollm2-135m", "4:0", "--store", store]) == 2
    assert "valid layers 0-3" in _one_line(capsys)


def test_attribute_empty_prompt_and_bad_neuron_refused_before_loading(tmp_path, no_model, capsys):
    base = ["attribute", "--model", "smollm2-135m", "--no-store"]
    assert main(base + ["--prompt", ""]) == 2
    assert "--prompt '' is empty" in _one_line(capsys)
    assert main(base + ["--prompt", "The cat", "--neuron", "7:5000"]) == 2
    assert "valid indices 0-1535" in _one_line(capsys)
