"""``--device`` on interp circuit, attribute and obsprop reaches the model load (a tiny model on the
CPU, the one device every machine has; tests/device runs the same commands on a GPU)."""

from __future__ import annotations

import pytest
import torch

from interp.cli import main

COMMANDS = {
    "circuit": ["circuit", "--prompt", "The cat sat", "--dicts", "random:16:4", "--no-store"],
    "circuit graph": ["circuit", "graph", "--prompt", "The cat sat", "--dicts", "random:16:4", "--no-store",
                      "--max-feature-nodes", "8"],
    "attribute": ["attribute", "--prompt", "The cat sat", "--method", "grad", "--no-store", "--no-faithfulness"],
    "obsprop": ["obsprop", "--observable", " the", "-", " was", "--no-store", "--top", "3"],
}


@pytest.fixture
def loads(monkeypatch):
    """The device each model load was asked for and the device of the adapter it returned."""
    import interp.models

    seen = {"asked": [], "got": []}
    real = interp.models.load_model

    def load(name, **kwargs):
        seen["asked"].append(kwargs.get("device"))
        adapter = real(name, **kwargs)
        seen["got"].append(adapter.device.type)
        return adapter

    monkeypatch.setattr(interp.models, "load_model", load)
    return seen


@pytest.mark.parametrize("device", ["cpu", "auto"])
@pytest.mark.parametrize("name", list(COMMANDS))
def test_device_reaches_the_model_load(name, device, loads, tiny_dirs, tmp_path, capsys):
    # auto is resolved before the load: the visible GPU where there is one, else the CPU.
    expected = "cuda" if device == "auto" and torch.cuda.is_available() else "cpu"
    command = COMMANDS[name] + ["--model", str(tiny_dirs["llama"]), "--store", str(tmp_path), "--device", device]
    assert main(command) == 0, capsys.readouterr().err
    assert loads["asked"] == [expected] and loads["got"] == [expected]
