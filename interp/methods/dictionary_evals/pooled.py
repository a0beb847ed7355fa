"""Mean-pooled activations and dictionary latents of labelled texts (SAEBench's probing inputs).

1. Tokenise each text (with BOS), truncated to `max_tokens`; right-padded in batches.
2. Run the model once per batch, only as far as the deepest site, caching the dictionary's
   input site and target site (the same site for an SAE).
3. Encode every token's input activation with the dictionary: ``z`` (tokens, d_sae).
4. Per text, average x, y and z over its tokens, leaving out the first `skip` positions (BOS
   and the attention-sink artefact after it, which the dictionaries were not trained on) and
   the padding. Mean pooling is linear, so ablating latents before or after pooling gives
   the same pooled target: ``mean(y - z_L W_dec[L]) = mean(y) - mean(z)_L W_dec[L]``
   (used by TPP, `interp.methods.dictionary_evals.tpp`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass(frozen=True)
class PoolConfig:
    """How texts become pooled activations."""

    max_tokens: int = 64
    """Tokens per text, BOS included (longer texts are truncated)."""
    batch_size: int = 16
    """Texts per forward pass."""
    skip: int | None = None
    """Leading positions left out of the mean (None: the dictionary's own ``skip_positions``, else 1 = BOS)."""

    def __post_init__(self) -> None:
        if self.skip is not None and (not isinstance(self.skip, int) or self.skip < 0):
            raise ValueError(f"skip must be an int >= 0 or None, got {self.skip!r}")
        if not isinstance(self.max_tokens, int) or self.max_tokens <= (self.skip or 1):
            raise ValueError(f"max_tokens must be an int > skip ({self.skip or 1}), got {self.max_tokens!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")


@dataclass(frozen=True)
class PooledActivations:
    """One row per text."""

    x: torch.Tensor
    """(n, d_in) mean input-site activation."""
    y: torch.Tensor
    """(n, d_out) mean target-site activation (equal to x for an SAE)."""
    z: torch.Tensor
    """(n, d_sae) mean latent activation."""
    labels: torch.Tensor
    """(n,) int64 class labels."""

    def __post_init__(self) -> None:
        n = self.labels.shape[0]
        if not self.x.shape[0] == self.y.shape[0] == self.z.shape[0] == n:
            raise ValueError(f"pooled rows differ: x {self.x.shape[0]}, y {self.y.shape[0]}, z {self.z.shape[0]}, "
                             f"labels {n}")

    def subset(self, index) -> "PooledActivations":
        index = torch.as_tensor(index, dtype=torch.long)
        return PooledActivations(self.x[index], self.y[index], self.z[index], self.labels[index])


@torch.no_grad()
def pooled_activations(adapter, dictionary, texts: Sequence[str], labels: Sequence[int], site_in: str, site_out: str,
                       config: PoolConfig = PoolConfig()) -> PooledActivations:
    """Steps 1-4 for `texts` with integer `labels`; `dictionary` reads `site_in`, targets `site_out`."""
    from interp.dictionaries.activations import stop_layer

    if not texts or len(texts) != len(labels):
        raise ValueError(f"need one label per text and at least one text, got {len(texts)} texts, {len(labels)} labels")
    sites = list(dict.fromkeys([adapter.check_site(site_in), adapter.check_site(site_out)]))
    stop = stop_layer(adapter, sites)
    skip = 1 if config.skip is None else config.skip
    xs, ys, zs = [], [], []
    for start in range(0, len(texts), config.batch_size):
        batch = adapter.tokenize([_head(adapter, t, config.max_tokens) for t in texts[start:start + config.batch_size]])
        tokens = batch.tokens[:, :config.max_tokens]
        lengths = batch.lengths.clamp(max=config.max_tokens)
        pos = torch.arange(tokens.shape[1])
        mask = ((pos[None] >= skip) & (pos[None] < lengths[:, None])).float()  # (batch, pos)
        if bool((mask.sum(1) == 0).any()):
            short = int(lengths.min())
            raise ValueError(f"a text of {short} tokens has none left after skipping {skip}; "
                             f"use longer texts or a smaller skip")
        cache = adapter.run(tokens, names=sites, stop_at_layer=None if stop == adapter.info.n_layers else stop).cache
        x, y = cache[site_in].float().cpu(), cache[site_out].float().cpu()  # (batch, pos, d)
        z = dictionary.encode(x)  # (batch, pos, d_sae)
        weights = mask / mask.sum(1, keepdim=True)  # (batch, pos): the mean over kept tokens
        xs.append(torch.einsum("bp,bpd->bd", weights, x))
        ys.append(torch.einsum("bp,bpd->bd", weights, y))
        zs.append(torch.einsum("bp,bpf->bf", weights, z))
    return PooledActivations(torch.cat(xs), torch.cat(ys), torch.cat(zs), torch.as_tensor(list(labels), dtype=torch.long))


def _head(adapter, text: str, max_tokens: int) -> str:
    """The text cut to about `max_tokens` tokens before tokenising (so no text exceeds the context)."""
    ids = adapter.tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) < max_tokens else adapter.tokenizer.decode(ids[:max_tokens])
