"""Dictionary folders the ecosystem opens as they are.

1. Every (kind, arch, skip) interp writes loads with plain ``sae_lens`` in a fresh process
   that never imports interp, and computes interp's outputs to float precision; the one
   architecture SAELens has no equivalent for (TopK with a skip) fails there with a message
   naming the architecture and the import that registers it.
2. Folders written by SAELens's own save code (standard, topk, jumprelu, batchtopk saved as
   jumprelu, transcoders, skip transcoders) load into interp with the same outputs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from interp.dictionaries import Dictionary
from interp.dictionaries.io import load_dictionary_dir, save_dictionary_dir

D_IN, D_SAE = 8, 16
KEYS = [("sae", "relu", False), ("sae", "topk", False), ("sae", "jumprelu", False),
        ("transcoder", "relu", False), ("transcoder", "relu", True), ("transcoder", "jumprelu", False),
        ("transcoder", "jumprelu", True), ("transcoder", "topk", False)]
EXPECTED_ARCH = {("sae", "relu", False): "standard", ("sae", "topk", False): "topk",
                 ("sae", "jumprelu", False): "jumprelu", ("transcoder", "relu", False): "transcoder",
                 ("transcoder", "relu", True): "skip_transcoder",
                 ("transcoder", "jumprelu", False): "jumprelu_transcoder",
                 ("transcoder", "jumprelu", True): "jumprelu_skip_transcoder",
                 ("transcoder", "topk", False): "topk"}

# Runs in a fresh interpreter: loads each folder with sae_lens alone, writes its outputs.
_PLAIN_LOAD = """
import json, sys
import torch
from safetensors.torch import load_file, save_file
from sae_lens import SAE
x = load_file(sys.argv[1])["x"]
out, errors = {}, {}
for i, folder in enumerate(sys.argv[3:]):
    try:
        sae = SAE.load_from_disk(folder)
    except Exception as exc:
        errors[folder] = f"{type(exc).__name__}: {exc}"
        continue
    with torch.no_grad():
        out[f"y{i}"], out[f"z{i}"] = sae(x).contiguous(), sae.encode(x).contiguous()
save_file(out, sys.argv[2])
print(json.dumps({"errors": errors, "interp_imported": any(m.startswith("interp") for m in sys.modules)}))
"""


def _random_dictionary(kind: str, arch: str, skip: bool, seed: int) -> Dictionary:
    g = torch.Generator().manual_seed(seed)
    d = Dictionary(D_IN, D_SAE, D_IN, kind=kind, arch=arch, k=3 if arch == "topk" else None, skip=skip)
    with torch.no_grad():
        for p in d.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        if arch == "jumprelu":
            d.threshold.copy_(torch.rand(D_SAE, generator=g) * 0.3)
    return d.eval()


def _plain_sae_lens(tmp_path, x: torch.Tensor, folders: list) -> tuple[dict, dict]:
    save_file({"x": x}, str(tmp_path / "x.safetensors"))
    proc = subprocess.run([sys.executable, "-c", _PLAIN_LOAD, str(tmp_path / "x.safetensors"),
                           str(tmp_path / "out.safetensors"), *map(str, folders)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["interp_imported"] is False
    return load_file(str(tmp_path / "out.safetensors")), report["errors"]


def test_every_written_folder_loads_in_plain_sae_lens_with_the_same_outputs(tmp_path):
    x = torch.randn(64, D_IN, generator=torch.Generator().manual_seed(0))
    dicts, folders = [], []
    for i, key in enumerate(KEYS):
        d = _random_dictionary(*key, seed=i)
        folder = save_dictionary_dir(d, tmp_path / f"d{i}", {"hook_name": "blocks.0.ln2.hook_normalized",
                                                              "hook_name_out": "blocks.0.hook_mlp_out"})
        assert json.loads((folder / "cfg.json").read_text())["architecture"] == EXPECTED_ARCH[key]
        dicts.append(d)
        folders.append(folder)
    out, errors = _plain_sae_lens(tmp_path, x, folders)
    assert errors == {}
    with torch.no_grad():
        for i, d in enumerate(dicts):
            torch.testing.assert_close(out[f"y{i}"], d(x), msg=f"{KEYS[i]} output")
            torch.testing.assert_close(out[f"z{i}"], d.encode(x), msg=f"{KEYS[i]} latents")
    # interp reads them back as what they were (a topk folder marked transcoder is a transcoder).
    for i, (d, folder) in enumerate(zip(dicts, folders)):
        loaded, meta = load_dictionary_dir(folder)
        assert (loaded.kind, loaded.arch, loaded.skip) == KEYS[i]
        assert meta["hook_name_out"] == "blocks.0.hook_mlp_out"
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), d(x))


def test_topk_skip_transcoder_fails_in_plain_sae_lens_naming_the_import(tmp_path):
    d = _random_dictionary("transcoder", "topk", True, seed=7)
    folder = save_dictionary_dir(d, tmp_path / "skip", {"hook_name": "blocks.0.ln2.hook_normalized"})
    _, errors = _plain_sae_lens(tmp_path, torch.randn(4, D_IN), [folder])
    message = errors[str(folder)]
    assert "topk_skip_transcoder" in message and "import interp.dictionaries" in message
    loaded, _ = load_dictionary_dir(folder)  # interp itself loads it
    x = torch.randn(16, D_IN)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), d(x))


def test_a_topk_transcoder_with_another_output_width_is_not_saved_as_topk(tmp_path):
    d = Dictionary(D_IN, D_SAE, 6, kind="transcoder", arch="topk", k=2)
    folder = save_dictionary_dir(d, tmp_path / "wide", {"hook_name": "h"})
    arch = json.loads((folder / "cfg.json").read_text())["architecture"]
    assert arch.startswith("topk_transcoder") and "import interp.dictionaries" in arch
    loaded, _ = load_dictionary_dir(folder)
    x = torch.randn(16, D_IN)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), d(x))


def _sae_lens_models():
    """SAELens modules of every architecture interp reads, built and initialised by SAELens."""
    from sae_lens import (JumpReLUSAE, JumpReLUSAEConfig, JumpReLUSkipTranscoder, JumpReLUSkipTranscoderConfig,
                          JumpReLUTranscoder, JumpReLUTranscoderConfig, SkipTranscoder, SkipTranscoderConfig,
                          StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig, Transcoder, TranscoderConfig)

    tc = {"d_in": D_IN, "d_sae": D_SAE, "d_out": 6, "apply_b_dec_to_input": False}
    return {
        "standard": StandardSAE(StandardSAEConfig(d_in=D_IN, d_sae=D_SAE)),
        "topk": TopKSAE(TopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=4)),
        "jumprelu": JumpReLUSAE(JumpReLUSAEConfig(d_in=D_IN, d_sae=D_SAE)),
        "transcoder": Transcoder(TranscoderConfig(**tc)),
        "skip_transcoder": SkipTranscoder(SkipTranscoderConfig(**tc)),
        "jumprelu_transcoder": JumpReLUTranscoder(JumpReLUTranscoderConfig(**tc)),
        "jumprelu_skip_transcoder": JumpReLUSkipTranscoder(JumpReLUSkipTranscoderConfig(**tc)),
    }


@pytest.mark.parametrize("arch", ["standard", "topk", "jumprelu", "transcoder", "skip_transcoder",
                                  "jumprelu_transcoder", "jumprelu_skip_transcoder"])
def test_folders_written_by_sae_lens_load_into_interp(tmp_path, arch):
    sae = _sae_lens_models()[arch]
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in sae.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 + (0.2 if name == "threshold" else 0.0))
            if name == "threshold":
                p.abs_()
    sae.save_model(str(tmp_path / arch))
    loaded, _ = load_dictionary_dir(tmp_path / arch)
    x = torch.randn(32, D_IN, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), sae(x))
        torch.testing.assert_close(loaded.encode(x), sae.encode(x))


def test_batchtopk_trained_by_sae_lens_loads_as_jumprelu(tmp_path):
    """SAELens saves a BatchTopK SAE for inference as JumpReLU with its learned threshold."""
    from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig

    sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, k=3))
    with torch.no_grad():
        sae.topk_threshold.fill_(0.25)
    sae.save_inference_model(str(tmp_path / "btk"))
    cfg = json.loads((tmp_path / "btk" / "cfg.json").read_text())
    assert cfg["architecture"] == "jumprelu"
    loaded, _ = load_dictionary_dir(tmp_path / "btk")
    assert loaded.arch == "jumprelu"
    assert torch.allclose(loaded.threshold, torch.full((D_SAE,), 0.25))
    x = torch.randn(32, D_IN)
    from sae_lens import SAE

    plain = SAE.load_from_disk(str(tmp_path / "btk"))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), plain(x))


@pytest.mark.parametrize("arch", ["batchtopk", "matryoshka_batchtopk"])
def test_trained_batchtopk_saves_as_jumprelu_that_plain_sae_lens_computes_alike(tmp_path, arch):
    """A BatchTopK (or Matryoshka) SAE and transcoder, trained here, save as SAELens's JumpReLU
    classes with the learned global threshold, and plain SAELens computes interp's outputs."""
    from interp.dictionaries import TrainConfig, in_memory_batches, train_dictionary

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2048, D_IN, generator=g).relu()
    y = x @ torch.randn(D_IN, D_IN, generator=g)
    dicts, folders, thresholds = [], [], []
    for kind in ("sae", "transcoder"):
        cfg = TrainConfig(kind=kind, arch=arch, k=2, expansion=2, batch_size=128, train_tokens=128 * 10,
                          matryoshka_fractions=(0.25,))
        result = train_dictionary(in_memory_batches(x, None if kind == "sae" else y, 128), cfg, D_IN, D_IN,
                                  progress=False)
        d = result.dictionary
        folder = save_dictionary_dir(d, tmp_path / kind, {"hook_name": "blocks.0.hook_resid_pre"})
        cfg_json = json.loads((folder / "cfg.json").read_text())
        assert cfg_json["architecture"] == {"sae": "jumprelu", "transcoder": "jumprelu_transcoder"}[kind]
        saved = load_file(str(folder / "sae_weights.safetensors"))["threshold"]
        assert float(saved.min()) == float(saved.max()) > 0  # one global threshold for every latent
        dicts.append(d)
        folders.append(folder)
        thresholds.append(float(saved[0]))
    probe = torch.randn(64, D_IN, generator=g).relu()
    out, errors = _plain_sae_lens(tmp_path, probe, folders)
    assert errors == {}
    with torch.no_grad():
        for i, d in enumerate(dicts):
            torch.testing.assert_close(out[f"y{i}"], d(probe))
            torch.testing.assert_close(out[f"z{i}"], d.encode(probe))
            z = d.encode(probe)
            assert bool((z[z > 0] > thresholds[i]).all())  # what survives is above the threshold
