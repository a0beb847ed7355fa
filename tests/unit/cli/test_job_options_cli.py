"""Every batch command takes --backend/--address/--device, and a wrong one is one clear line."""

from __future__ import annotations

import pytest
import torch

from interp.cli import main

DEVICE_ONLY = [
    ["clamp", "--model", "m", "--neuron", "0:1", "--value", "5", "--prompt", "The"],
    ["circuit", "--model", "m", "--prompt", "The", "--dicts", "random:8"],
    ["circuit", "graph", "--model", "m", "--prompt", "The", "--dicts", "random:8"],
    ["circuit", "connections", "--model", "m", "--dicts", "a,b"],
    ["attribute", "--model", "m", "--prompt", "The"],
    ["obsprop", "--model", "m", "--observable", " she", "-", " he"],
    ["obsprop-rank", "--model", "m", "--observable", " she", "--component", "M1"],
]
COMMANDS = [
    ["map-neurons", "--model", "m"],
    ["clamp-report", "--model", "m"],
    ["sweep", "--model", "m", "--layer", "1"],
    ["complexity", "--model", "m", "--features", "neurons:layers=1"],
    ["faithfulness", "--model", "m"],
    ["run", "--model", "m", "--no-serve"],
    ["train", "--model", "m", "--layer", "1", "--kind", "sae"],
]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")
def _name(command: list[str]) -> str:
    return " ".join(w for w in command[:2] if not w.startswith("-"))


@pytest.mark.parametrize("command", COMMANDS + DEVICE_ONLY, ids=_name)
def test_device_cuda_without_a_gpu_is_refused_before_any_work(command, tmp_path, capsys, no_model):
    assert main(command + ["--device", "cuda", "--store", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("interp: error: --device cuda: no CUDA device is visible here (torch.cuda.is_available() is "
                   "False); use --device cpu, or auto to take a GPU only when there is one")
    assert not (tmp_path / "tables").exists()  # nothing was written


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_an_address_without_the_ray_backend_is_refused(command, tmp_path, capsys):
    assert main(command + ["--address", "head:6379", "--store", str(tmp_path)]) == 2
    assert "--address 'head:6379' is for --backend ray" in capsys.readouterr().err


def test_unknown_backend_and_device_name_their_valid_values(capsys):
    with pytest.raises(SystemExit):
        main(["clamp-report", "--model", "m", "--backend", "spark"])
    assert "invalid choice: 'spark'" in capsys.readouterr().err
    assert main(["clamp-report", "--model", "m", "--device", "tpu"]) == 2
    assert "unknown device 'tpu'; valid: auto, cpu, cuda (or cuda:N)" in capsys.readouterr().err
