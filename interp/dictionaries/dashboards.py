"""Feature dashboard data for every latent of a dictionary (what a feature browser shows).

1. Encode held-out windows at the dictionary's input site, the first `skip` positions dropped
   (BOS and the artefact position after it, `interp.dictionaries.activations.ARTEFACT_POSITIONS`):
   they are never picked as examples and show activation 0 in contexts.
2. Density = share of tokens with activation > 0; max activation.
3. Top contexts: the `n_top` windows with the largest activation, each cut to
   `left` tokens before and `right` after its maximum, with per-token activations.
4. Quantile samples: the activation range (0, max] is split into `n_quantiles` equal bins;
   up to `per_quantile` random tokens from each bin, with their contexts.
5. Logit table: ``(W_dec[i] * g_final) @ W_U`` (decoder direction through the final norm's
   gain and the unembedding), top and bottom tokens; only when the dictionary writes into
   the residual stream's basis (d_out == d_model).
6. De-embedding: ``W_E @ W_enc[:, i]`` (which input tokens directly excite latent i), top
   tokens; only when the input has the residual's width.

Rows follow the store's `features`, `feature_tokens` and `activation_examples` tables:
``site`` is the dictionary's input hook and ``source`` the dictionary's name.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from interp.dictionaries.activations import site_activations
from interp.dictionaries.dictionary import Dictionary


@dataclass(frozen=True)
class DashboardConfig:
    """What to collect per latent."""

    n_top: int = 10
    """Top-activating contexts per latent."""
    n_quantiles: int = 4
    """Activation-range bins for quantile samples."""
    per_quantile: int = 2
    """Samples per bin."""
    left: int = 16
    """Context tokens before the token of interest."""
    right: int = 4
    """Context tokens after it."""
    n_tokens: int = 10
    """Tokens per end of the logit / de-embedding tables."""
    seed: int = 0
    """Seed of the quantile sampling."""

    def __post_init__(self) -> None:
        for name in ("n_top", "n_quantiles", "n_tokens"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if self.per_quantile < 0 or self.left < 0 or self.right < 0:
            raise ValueError("per_quantile, left and right must be >= 0")


@dataclass
class DashboardData:
    """Store-ready rows for one dictionary's latents."""

    features: pd.DataFrame
    feature_tokens: pd.DataFrame
    activation_examples: pd.DataFrame


def _identity(adapter, site: str, dictionary: Dictionary, source: str, index: int) -> dict:
    return {"model": adapter.store_name, "site": site, "kind": dictionary.kind, "index": int(index),
            "source": source}


def _vocab_strings(adapter, ids) -> dict[int, str]:
    ids = sorted({int(i) for i in ids})
    return dict(zip(ids, adapter.tokenizer.batch_decode([[i] for i in ids])))


@torch.no_grad()
def _token_table(adapter, scores_fn, n_latents: int, ident, direction: str, n: int, both_ends: bool) -> list[dict]:
    """Top (and bottom) tokens of (chunk of latents, vocab) score matrices, chunked to bound memory."""
    rows = []
    for start in range(0, n_latents, 256):
        scores = scores_fn(slice(start, min(start + 256, n_latents)))  # (chunk, vocab)
        ends = [("top", scores.topk(n, dim=-1))]
        if both_ends:
            ends.append(("bottom", (-scores).topk(n, dim=-1)))
        for end, (vals, idx) in ends:
            sign = -1.0 if end == "bottom" else 1.0
            for j in range(vals.shape[0]):
                for rank in range(n):
                    rows.append({**ident(start + j), "direction": direction, "variant": "raw", "end": end,
                                 "rank": rank, "token_id": int(idx[j, rank]), "logit": sign * float(vals[j, rank])})
    strings = _vocab_strings(adapter, [r["token_id"] for r in rows])
    for r in rows:
        r["token_str"] = strings[r["token_id"]]
    return rows


def _context(tokens: torch.Tensor, acts: torch.Tensor, w: int, p: int, config: DashboardConfig, skip: int):
    """Token ids and activations of window w around position p (positions count BOS as 0)."""
    lo, hi = max(0, p - config.left), min(tokens.shape[1], p + config.right + 1)
    ids = tokens[w, lo:hi].tolist()
    act = [0.0 if q < skip else float(acts[w, q - skip]) for q in range(lo, hi)]  # acts start at `skip`
    return ids, act, p - lo


def _examples(tokens: torch.Tensor, acts: torch.Tensor, config: DashboardConfig,
              gen: torch.Generator, skip: int) -> list[tuple[str, int, int, float]]:
    """(group, window, position, activation) picks for one latent; acts (n, pos - skip)."""
    flat = acts.reshape(-1)
    max_per_window, argmax = acts.max(1)
    picks = []
    order = max_per_window.argsort(descending=True)[: config.n_top]
    for w in order.tolist():
        if max_per_window[w] > 0:
            picks.append(("top", w, int(argmax[w]) + skip, float(max_per_window[w])))
    top = float(flat.max())
    for q in range(config.n_quantiles):
        lo, hi = top * q / config.n_quantiles, top * (q + 1) / config.n_quantiles
        members = ((flat > lo) & (flat <= hi)).nonzero().squeeze(-1)
        if len(members) == 0 or config.per_quantile == 0:
            continue
        chosen = members[torch.randperm(len(members), generator=gen)[: config.per_quantile]]
        for f in chosen.tolist():
            w, p = divmod(f, acts.shape[1])
            picks.append((f"quantile_{q}", w, p + skip, float(flat[f])))
    return picks


@torch.no_grad()
def feature_dashboards(adapter, dictionary: Dictionary, tokens: torch.Tensor, site_in: str, source: str,
                       config: DashboardConfig = DashboardConfig(), batch_size: int = 8,
                       skip: int = 1) -> DashboardData:
    """Dashboard rows for every latent of `dictionary` from held-out windows `tokens` (n, ctx);
    the first `skip` positions of each window are left out (step 1)."""
    x = site_activations(adapter, tokens, [site_in], batch_size=batch_size, skip=skip)[site_in]
    on = dictionary.W_enc.device  # activations come back on the CPU; the latents are kept there
    latents = torch.cat([dictionary.encode(c.to(on)).cpu() for c in x.split(4096)])  # (n * (ctx - skip), d_sae)
    n, ctx = tokens.shape
    latents = latents.reshape(n, ctx - skip, dictionary.d_sae)
    density = (latents > 0).float().mean((0, 1))
    max_act = latents.amax((0, 1))
    ident = lambda i: _identity(adapter, site_in, dictionary, source, i)  # noqa: E731
    features = pd.DataFrame([{**ident(i), "density": float(density[i]), "max_act": float(max_act[i]),
                              "metrics": {"mean_act_when_active": float(latents[..., i].sum() / max(1.0, float(
                                  (latents[..., i] > 0).sum())))}} for i in range(dictionary.d_sae)])
    gen = torch.Generator().manual_seed(config.seed)
    example_rows = []
    for i in (density > 0).nonzero().squeeze(-1).tolist():
        ranks: dict[str, int] = {}
        for group, w, p, value in _examples(tokens, latents[..., i], config, gen, skip):
            ids, act, centre = _context(tokens, latents[..., i], w, p, config, skip)
            example_rows.append({**ident(i), "group": group, "example_rank": ranks.get(group, 0),
                                 "token_ids": ids, "acts": act, "max_act": value, "max_pos": centre})
            ranks[group] = ranks.get(group, 0) + 1
    strings = _vocab_strings(adapter, [t for r in example_rows for t in r["token_ids"]])
    for r in example_rows:
        r["tokens"] = [strings[t] for t in r["token_ids"]]
    return DashboardData(features, pd.DataFrame(_logit_tables(adapter, dictionary, ident, config)),
                         pd.DataFrame(example_rows))


def _logit_tables(adapter, dictionary: Dictionary, ident, config: DashboardConfig) -> list[dict]:
    # A chunk of the dictionary's rows goes to the model's device, not the (vocab, d_model)
    # matrices to the dictionary's: the products then run where the model runs.
    w = adapter.weights
    rows = []
    if dictionary.d_out == adapter.info.d_model:
        W_U, gain = w.W_U.float(), w.final_norm.gain.float()
        rows += _token_table(adapter, lambda s: (dictionary.W_dec[s].to(W_U.device) * gain) @ W_U, dictionary.d_sae,
                             ident, "decoder", config.n_tokens, both_ends=True)
    if dictionary.d_in == adapter.info.d_model:
        W_E = w.W_E.float()
        rows += _token_table(adapter, lambda s: (W_E @ dictionary.W_enc[:, s].to(W_E.device)).T, dictionary.d_sae,
                             ident, "deembed", config.n_tokens, both_ends=False)
    return rows


def write_dashboards(store, data: DashboardData, run_id: str) -> None:
    """Write the three tables for one dictionary."""
    store.write("features", data.features, run_id=run_id)
    if len(data.feature_tokens):
        store.write("feature_tokens", data.feature_tokens, run_id=run_id)
    if len(data.activation_examples):
        store.write("activation_examples", data.activation_examples, run_id=run_id)
