"""Dictionaries on disk in SAELens's format (``cfg.json`` + ``sae_weights.safetensors``).

A dictionary is converted to the SAELens class that computes exactly the same function and
saved with SAELens's own ``save_model``, so plain ``sae_lens.SAE.load_from_disk(folder)``
loads it as is, in a process that never imported interp:

=========== ============= ====================================================
kind        arch          SAELens architecture written
=========== ============= ====================================================
sae         relu          ``standard``
sae         topk          ``topk``
sae         jumprelu      ``jumprelu``
transcoder  relu          ``transcoder`` (``skip_transcoder`` with a skip)
transcoder  jumprelu      ``jumprelu_transcoder`` (``jumprelu_skip_transcoder``)
transcoder  topk          ``topk`` with ``apply_b_dec_to_input=False`` (see below)
transcoder  topk + skip   ``topk_skip_transcoder [import interp.dictionaries]`` (*)
=========== ============= ====================================================

SAELens ships no TopK transcoder class. A TopK transcoder (no skip) computes exactly what
SAELens's ``topk`` architecture computes when that SAE does not subtract ``b_dec`` from its
input: ``relu(topk(x @ W_enc + b_enc)) @ W_dec + b_dec``, read at the input hook
(``metadata.hook_name``). So it is saved as ``topk``; the output hook and the kind stay in
the metadata (``hook_name_out``, ``dictionary_kind: "transcoder"``), which interp reads back.
(*) A TopK *skip* transcoder (or a TopK transcoder with d_out != d_in) has no exact equivalent in SAELens: its ``cfg.json`` names an
architecture that plain SAELens does not know, spelled so that SAELens's ``KeyError`` names
the architecture and the import that registers it; importing this module registers it
(and the older ``topk_transcoder`` / ``topk_skip_transcoder`` names, so folders written by
earlier versions keep loading).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from sae_lens import SAE
from sae_lens.registry import SAE_CLASS_REGISTRY, register_sae_class
from sae_lens.saes.jumprelu_sae import JumpReLUSAE, JumpReLUSAEConfig
from sae_lens.saes.sae import SAEMetadata
from sae_lens.saes.standard_sae import StandardSAE, StandardSAEConfig
from sae_lens.saes.topk_sae import TopK, TopKSAE, TopKSAEConfig
from sae_lens.saes.transcoder import (
    JumpReLUSkipTranscoder,
    JumpReLUSkipTranscoderConfig,
    JumpReLUTranscoder,
    JumpReLUTranscoderConfig,
    SkipTranscoder,
    SkipTranscoderConfig,
    Transcoder,
    TranscoderConfig,
)

from interp.dictionaries.dictionary import Dictionary
from interp.dictionaries.finite import require_finite


@dataclass
class TopKTranscoderConfig(TranscoderConfig):
    k: int = 32

    @classmethod
    def architecture(cls) -> str:
        return "topk_transcoder"

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any]) -> "TopKTranscoderConfig":
        from sae_lens.util import filter_valid_dataclass_fields

        res = cls(**filter_valid_dataclass_fields(config_dict, cls))
        if "metadata" in config_dict:
            res.metadata = SAEMetadata(**config_dict["metadata"])
        return res

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "k": self.k}


class TopKTranscoder(Transcoder):
    """A transcoder whose activation keeps the k largest pre-activations (relu'd)."""

    def get_activation_fn(self):
        return TopK(self.cfg.k)

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any]) -> "TopKTranscoder":
        return cls(TopKTranscoderConfig.from_dict(config_dict))


@dataclass
class TopKSkipTranscoderConfig(TopKTranscoderConfig):
    @classmethod
    def architecture(cls) -> str:
        return "topk_skip_transcoder"


class TopKSkipTranscoder(SkipTranscoder):
    """A TopK transcoder with a linear skip term."""

    def get_activation_fn(self):
        return TopK(self.cfg.k)

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any]) -> "TopKSkipTranscoder":
        return cls(TopKSkipTranscoderConfig.from_dict(config_dict))


_HINT = " [import interp.dictionaries]"
"""Suffix of the architecture names that plain SAELens lacks: its KeyError then names the import."""


def _file_classes(sae_cls, cfg_cls, name: str):
    """(class, config class) of `sae_cls` registered under the hinted architecture `name`."""
    file_cfg = dataclass(type(f"{cfg_cls.__name__}File", (cfg_cls,), {
        "architecture": classmethod(lambda cls: name)}))
    file_sae = type(f"{sae_cls.__name__}File", (sae_cls,), {
        "from_dict": classmethod(lambda cls, d: cls(file_cfg.from_dict(d)))})
    return file_sae, file_cfg


TOPK_TRANSCODER_ARCH = "topk_transcoder" + _HINT
"""Architecture of a TopK transcoder whose d_out differs from d_in (no SAELens equivalent)."""
TOPK_SKIP_ARCH = "topk_skip_transcoder" + _HINT
"""Architecture of a TopK skip transcoder (no SAELens equivalent)."""
_TopKTranscoderFile, _TopKTranscoderFileConfig = _file_classes(TopKTranscoder, TopKTranscoderConfig,
                                                               TOPK_TRANSCODER_ARCH)
_TopKSkipTranscoderFile, _TopKSkipTranscoderFileConfig = _file_classes(TopKSkipTranscoder, TopKSkipTranscoderConfig,
                                                                       TOPK_SKIP_ARCH)

# The plain names are what earlier versions wrote: registered so those folders keep loading.
for _arch, _cls, _cfg in (("topk_transcoder", TopKTranscoder, TopKTranscoderConfig),
                          ("topk_skip_transcoder", TopKSkipTranscoder, TopKSkipTranscoderConfig),
                          (TOPK_TRANSCODER_ARCH, _TopKTranscoderFile, _TopKTranscoderFileConfig),
                          (TOPK_SKIP_ARCH, _TopKSkipTranscoderFile, _TopKSkipTranscoderFileConfig)):
    if _arch not in SAE_CLASS_REGISTRY:
        register_sae_class(_arch, _cls, _cfg)

_CLASSES = {
    ("sae", "relu", False): (StandardSAE, StandardSAEConfig),
    ("sae", "topk", False): (TopKSAE, TopKSAEConfig),
    ("sae", "jumprelu", False): (JumpReLUSAE, JumpReLUSAEConfig),
    ("transcoder", "relu", False): (Transcoder, TranscoderConfig),
    ("transcoder", "relu", True): (SkipTranscoder, SkipTranscoderConfig),
    ("transcoder", "jumprelu", False): (JumpReLUTranscoder, JumpReLUTranscoderConfig),
    ("transcoder", "jumprelu", True): (JumpReLUSkipTranscoder, JumpReLUSkipTranscoderConfig),
    ("transcoder", "topk", False): (TopKSAE, TopKSAEConfig),
    ("transcoder", "topk", True): (_TopKSkipTranscoderFile, _TopKSkipTranscoderFileConfig),
}
_ARCH_OF = {cfg.architecture(): key for key, (_, cfg) in _CLASSES.items() if key != ("transcoder", "topk", False)}
_ARCH_OF.update({name: ("transcoder", "topk", skip) for name, skip in (
    ("topk_transcoder", False), ("topk_skip_transcoder", True), (TOPK_TRANSCODER_ARCH, False))})
KIND_KEY = "dictionary_kind"
"""Metadata key that marks a ``topk`` folder as a transcoder (its output hook: ``hook_name_out``)."""


def to_sae_lens(dictionary: Dictionary, metadata: dict | None = None) -> SAE:
    """The SAELens module with the same weights (copies) and `metadata` (hook names, model)."""
    key = (dictionary.kind, dictionary.arch, dictionary.skip)
    metadata = dict(metadata or {})
    as_topk_sae = key == ("transcoder", "topk", False)
    if as_topk_sae and dictionary.d_out != dictionary.d_in:
        # SAELens's topk SAE decodes into its input space: no exact equivalent for d_out != d_in.
        sae_cls, cfg_cls, as_topk_sae = _TopKTranscoderFile, _TopKTranscoderFileConfig, False
    else:
        sae_cls, cfg_cls = _CLASSES[key]
    kwargs: dict[str, Any] = {"d_in": dictionary.d_in, "d_sae": dictionary.d_sae}
    if dictionary.kind == "transcoder":
        kwargs["apply_b_dec_to_input"] = False
        if not as_topk_sae:
            kwargs["d_out"] = dictionary.d_out
        metadata[KIND_KEY] = "transcoder"
    if dictionary.arch == "topk":
        kwargs["k"] = dictionary.k
    cfg = cfg_cls(**kwargs)
    cfg.metadata = SAEMetadata(**metadata)
    sae = sae_cls(cfg)
    state = {name: p.detach().clone() for name, p in dictionary.named_parameters()}
    sae.load_state_dict(state, strict=True)
    return sae


def from_sae_lens(sae: SAE) -> Dictionary:
    """Our `Dictionary` with the weights of a SAELens module of a supported architecture."""
    arch = sae.cfg.architecture()
    if arch not in _ARCH_OF:
        raise ValueError(f"SAELens architecture {arch!r} is not supported; supported: {', '.join(sorted(_ARCH_OF))}")
    kind, act, skip = _ARCH_OF[arch]
    if arch == "topk" and getattr(sae.cfg.metadata, KIND_KEY, None) == "transcoder":
        kind = "transcoder"
    if kind == "sae" and not sae.cfg.apply_b_dec_to_input:
        raise ValueError(f"SAE {arch!r} with apply_b_dec_to_input=False is not supported "
                         f"(a transcoder saved as {arch!r} needs metadata {KIND_KEY}='transcoder')")
    if getattr(sae.cfg, "rescale_acts_by_decoder_norm", False):
        raise ValueError(f"SAELens {arch!r} with rescale_acts_by_decoder_norm=True is not supported")
    d_out = getattr(sae.cfg, "d_out", sae.cfg.d_in)
    model = Dictionary(sae.cfg.d_in, sae.cfg.d_sae, d_out, kind=kind, arch=act,
                       k=getattr(sae.cfg, "k", None) if act == "topk" else None, skip=skip)
    params = dict(sae.named_parameters())
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name].float())
    return model.eval()


def save_dictionary_dir(dictionary: Dictionary, folder: str | Path, metadata: dict | None = None) -> Path:
    """Write SAELens's files for `dictionary` into `folder` (created); NaN/Inf weights are refused."""
    require_finite({n: p.detach() for n, p in dictionary.named_parameters()}, "dictionary")
    folder = Path(folder)
    if any(p.device.type != "cpu" for p in dictionary.parameters()):  # files are written from the CPU
        import copy

        dictionary = copy.deepcopy(dictionary).to("cpu")
    to_sae_lens(dictionary, metadata).save_model(folder)
    return folder


def load_dictionary_dir(folder: str | Path) -> tuple[Dictionary, dict]:
    """(dictionary, metadata dict) from a SAELens-format folder."""
    folder = Path(folder)
    if not (folder / "cfg.json").is_file():
        raise FileNotFoundError(f"{folder} is not a SAELens dictionary folder (no cfg.json)")
    sae = SAE.load_from_disk(str(folder))
    return from_sae_lens(sae), dict(json.loads((folder / "cfg.json").read_text()).get("metadata", {}))


def save_dictionary(store, name: str, dictionary: Dictionary, metadata: dict | None = None) -> Path:
    """Atomically write `dictionary` as store dictionary folder `name`; returns the folder."""
    with store.write_dictionary_dir(name) as tmp:
        save_dictionary_dir(dictionary, tmp, metadata)
    return store.dictionary_dir(name)


def load_dictionary(store, name: str) -> tuple[Dictionary, dict]:
    """(dictionary, metadata) of store dictionary `name`."""
    folder = store.dictionary_dir(name)
    if not folder.is_dir():
        known = store.read("dictionaries", columns=["name"])["name"].tolist()
        raise FileNotFoundError(f"no dictionary {name!r} in store {store.root}; stored: {', '.join(known) or 'none'}")
    return load_dictionary_dir(folder)
