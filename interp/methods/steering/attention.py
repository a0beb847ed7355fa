"""Frozen or live attention while steering.

``live`` attention recomputes every pattern from the steered activations, so a steering
edit also changes where the model attends. ``frozen`` attention isolates the edit's direct
effect through the residual stream and the MLPs:

1. Clean run: the unsteered prompt (batch, pos P) runs once, caching every layer's pattern
   ``A_l`` (batch, head, P, P) at ``blocks.l.attn.hook_pattern`` (`clean_patterns`).
2. Steered run: a hook at each pattern site overwrites the rows and columns of the prompt's
   positions, ``A[:, :, :P, :P] <- A_l`` (`frozen_attention`), so every prompt position
   mixes the (steered) values with the clean weights.
3. Generation: a generated token t >= P has no clean pattern (it never existed in the clean
   run), so its row ``A[:, :, t, :]`` is computed live from the steered activations; the
   prompt's rows stay frozen at every step (each step reruns the whole sequence). Causality
   makes the prompt rows' columns past P zero, so nothing is dropped.

With no steering edit the frozen run equals the clean run: the patterns written back are
the ones the model computes.
"""

from __future__ import annotations

import contextlib

import torch

ATTENTION = ("frozen", "live")


def check_attention(modes) -> tuple[str, ...]:
    """`modes` as a tuple of distinct valid attention modes, in the order given."""
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    bad = [m for m in modes if m not in ATTENTION]
    if not modes or bad:
        raise ValueError(f"attention {bad[0] if bad else modes!r} is not valid; give one or both of: "
                         f"{', '.join(ATTENTION)}")
    return tuple(dict.fromkeys(modes))


def pattern_sites(adapter) -> list[str]:
    return [adapter.sites(layer).attn_pattern for layer in range(adapter.info.n_layers)]


@torch.no_grad()
def clean_patterns(adapter, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Step 1: site -> (batch, head, P, P) pattern of the unsteered run on `tokens` (batch, P).

    Call it outside any steering block (it records whatever hooks are active)."""
    return adapter.run(tokens, names=pattern_sites(adapter)).cache


@contextlib.contextmanager
def frozen_attention(adapter, patterns: dict[str, torch.Tensor]):
    """Steps 2-3: inside the block the prompt positions attend with `patterns`."""

    def freeze(clean: torch.Tensor):
        n = clean.shape[-1]

        def hook(act, hook):
            if act.shape[0] != clean.shape[0] or act.shape[-1] < n:
                raise RuntimeError(f"frozen attention at {hook.name}: the run is not an extension of the prompt "
                                   f"(pattern {tuple(act.shape)}, prompt {tuple(clean.shape)})")
            act = act.clone()
            act[:, :, :n, :n] = clean.to(act.dtype)
            return act

        return hook

    with adapter.hooks([(site, freeze(p)) for site, p in patterns.items()]):
        yield adapter


@contextlib.contextmanager
def attention(adapter, mode: str, tokens: torch.Tensor):
    """The block runs with `mode` attention: ``frozen`` to `tokens`' clean patterns, or ``live``."""
    mode = check_attention(mode)[0]
    if mode == "live":
        yield adapter
        return
    with frozen_attention(adapter, clean_patterns(adapter, tokens)):
        yield adapter
