"""Tiny Llama models with planted neurons whose decoded token and clamping effect are known."""

from __future__ import annotations

from pathlib import Path

import torch


def planted_llama(source: Path, target: Path, plants: dict[tuple[int, int], int | None], scale: float = 8.0) -> Path:
    """Copy the tiny Llama at `source` to `target`, rewriting neurons' down projections.

    `plants`: (layer, neuron) -> token id t: the neuron writes ``scale * W_U[:, t]`` (the
    unembedding row of t), so its folded decoding is t and clamping it high makes t the
    next token; None: the neuron writes nothing (a zero column).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(source)
    with torch.no_grad():
        gain = model.model.norm.weight
        for (layer, neuron), token in plants.items():
            col = model.model.layers[layer].mlp.down_proj.weight[:, neuron]  # (d_model,) = W_out[neuron]
            if token is None:
                col.zero_()
            else:
                # Divide by the final norm's gain so that, after the gain, the direction is W_U[:, t].
                col.copy_(scale * model.lm_head.weight[token] / gain)
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return target
