"""Checking circuit attributions against the model by ablation.

1. Take the top-n direct contributors of a target (`circuit_attribution.attribute`, ranked by
   |contribution|) and rebuild the vector each one writes into the residual stream at its
   position: latent ``z_i W_dec[i]`` (into its layer's ``mlp_out``), head source term
   ``A_h[d,s] n_s W_V W_O`` (into ``attn_out`` at d), error / decoder bias / skip / whole MLP
   (``mlp_out``), attention bias (``attn_out``), embeddings (``hook_embed``).
2. In one batched forward pass of the real model (row b ablates contributor b), subtract
   that vector at that site and position and re-measure the target: the logit (difference)
   from the logits, a latent's pre-activation from its transcoder on the new ``mlp_in``.
3. Effect = original - ablated. The direct attribution is the effect when nothing in between
   reacts; later layers and the norms' scales make them differ. `AblationCheck` reports the
   Pearson correlation and the least-squares slope of effect on attribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from interp.methods.circuits.attribution import Attribution, LatentTarget, Target, Trace
from interp.models.interventions import ReplaceActivation


def component_vector(adapter, tr: Trace, row, dest: int) -> tuple[str, int, torch.Tensor]:
    """(site, position, (d_model,) vector) that component `row` (of `Attribution.frame`) writes."""
    kind, layer, s = row.kind, int(row.layer), int(row.source)
    if kind in ("embed", "pos_embed"):
        vec = tr.embed[s] if kind == "embed" else tr.pos_embed[s]
        return adapter.embed_site, s, vec
    lt = tr.layers[layer]
    sites = adapter.sites(layer)
    if kind == "head":
        h = int(row.head)
        return sites.attn_out, dest, lt.pattern[h, dest, s] * (lt.attn_in[s] @ lt.W_V[h]) @ lt.W_O[h]
    if kind == "attn_bias":
        return sites.attn_out, s, lt.attn_bias
    if kind == "latent":
        i = int(row.index)
        z = lt.active_val[s][lt.active_idx[s] == i].sum()
        return sites.mlp_out, s, z * lt.transcoder.W_dec.detach()[i].to(z.dtype)
    vec = {"error": lt.error, "skip": lt.skip, "mlp": lt.mlp_out}.get(kind)
    if kind == "tc_bias":
        return sites.mlp_out, s, lt.transcoder.b_dec.detach().to(tr.embed.dtype)
    if vec is None:
        raise ValueError(f"cannot ablate component kind {kind!r}")
    return sites.mlp_out, s, vec[s]


def _measure(adapter, tr: Trace, target: Target, out) -> torch.Tensor:
    """(batch,) target value in each row of a forward pass."""
    p = target.position % tr.n_pos()
    if isinstance(target, LatentTarget):
        tc = tr.layers[target.layer].transcoder
        x = out.cache[adapter.sites(target.layer).mlp_in][:, p].float()
        return x @ tc.W_enc.detach().float()[:, target.index] + float(tc.b_enc.detach()[target.index])
    logits = out.output[:, p].float()
    value = logits[:, target.token]
    return value - logits[:, target.other] if target.other is not None else value


@dataclass
class AblationCheck:
    """Attributed vs measured effects of ablating the top contributors."""

    frame: pd.DataFrame
    """label, kind, attributed, effect (original - ablated), one row per contributor."""
    pearson: float
    slope: float
    """Least-squares slope of effect on attributed (1 = the attribution is the whole story)."""


@torch.no_grad()
def ablation_check(adapter, tr: Trace, target: Target, attribution: Attribution, top_n: int = 20,
                   kinds: tuple[str, ...] | None = None) -> AblationCheck:
    """Ablate each of the `top_n` largest contributors (of `kinds`, default all) in one batch."""
    if not isinstance(top_n, int) or top_n < 2:
        raise ValueError(f"top_n must be an integer >= 2 (a correlation needs two points), got {top_n!r}")
    rows = attribution.frame
    if kinds is not None:
        rows = rows[rows["kind"].isin(kinds)]
    rows = rows.head(top_n).reset_index(drop=True)
    edits: dict[str, list[tuple[int, int, torch.Tensor]]] = {}
    for b, row in enumerate(rows.itertuples()):
        site, pos, vec = component_vector(adapter, tr, row, attribution.position)
        edits.setdefault(site, []).append((b + 1, pos, vec))  # row 0 stays clean

    def editor(site_edits):
        def fn(act):  # act: (batch, pos, d_model)
            act = act.clone()
            for b, pos, vec in site_edits:
                act[b, pos] -= vec.to(act.dtype)
            return act
        return fn

    tokens = tr.tokens[None].expand(len(rows) + 1, -1).to(adapter.device)
    names = [adapter.sites(target.layer).mlp_in] if isinstance(target, LatentTarget) else []
    out = adapter.run(tokens, names=names, interventions=[ReplaceActivation(s, editor(e)) for s, e in edits.items()])
    values = _measure(adapter, tr, target, out)
    effect = (values[0] - values[1:]).double().numpy()
    attributed = rows["contribution"].to_numpy()
    frame = rows[["label", "kind"]].assign(attributed=attributed, effect=effect)
    pearson = float(np.corrcoef(attributed, effect)[0, 1]) if len(rows) > 1 else float("nan")
    slope = float(attributed @ effect / max(attributed @ attributed, 1e-30))
    return AblationCheck(frame, pearson, slope)
