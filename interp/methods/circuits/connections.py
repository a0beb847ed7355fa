"""Input-invariant connections between transcoder latents, and loading transcoders.

Dunefsky, Chlenski, Nanda (2024), "Transcoders Find Interpretable LLM Feature Circuits",
section 4: a circuit through transcoders factors into an input-dependent activation and an
input-invariant weight; this module computes the weights.

1. Latent i of the transcoder at layer l writes ``W_dec[i]`` (d_model) into the residual
   stream. Latent j of the transcoder at layer l' > l reads ``n = P r / sigma(r)`` (our
   ``mlp_in`` site is the ``ln2`` output *before* its gain, which is what the transcoder was
   trained on, so no gain enters). ``P`` centres for LayerNorm and is the identity for RMSNorm.
2. Treating the norm's data-dependent ``sigma`` as a constant ``scale``::

       C[i, j] = (P W_dec[i]) . W_enc[:, j] / scale

   Convention: ``scale`` defaults to 1 (raw weights, the paper's choice); `norm_scale`
   measures the median ``sigma`` of layer l' on reference text, which puts C in the units of
   a pre-activation per unit of activation. On a prompt the exact factor is that prompt's
   ``1 / sigma`` and the attribution is ``z_i(x) * C[i, j]``
   (`interp.methods.circuits.attribution`).
3. Top-k upstream latents of j: the largest ``|C[:, j]|``; top-k downstream of i: the
   largest ``|C[i, :]|``. `top_connections` computes both for every latent in blocks of
   `chunk` upstream latents (never the whole matrix at once) and `save_connections` stores
   them as one tensor bundle per dictionary pair.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import pandas as pd
import torch

from interp.methods.circuits.attribution import LatentTarget, LogitTarget, Target, Transcoder
from interp.sites import layer_of

NORMS = ("rms", "layer")


def _project(W: torch.Tensor, norm: str) -> torch.Tensor:
    if norm not in NORMS:
        raise ValueError(f"norm {norm!r} is not valid; choose one of {NORMS}")
    return W - W.mean(-1, keepdim=True) if norm == "layer" else W


def connections(up: Transcoder, down: Transcoder, norm: str = "rms", scale: float = 1.0,
                rows: slice | None = None) -> torch.Tensor:
    """(d_sae_up, d_sae_down) matrix C = P W_dec_up @ W_enc_down / scale (rows: a block of it)."""
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    W_dec = up.W_dec.detach().float()
    W_dec = W_dec[rows] if rows is not None else W_dec
    if W_dec.shape[1] != down.W_enc.shape[0]:
        raise ValueError(f"upstream writes {W_dec.shape[1]} dims but downstream reads {down.W_enc.shape[0]}")
    return _project(W_dec, norm) @ down.W_enc.detach().float() / scale


@torch.no_grad()
def norm_scale(adapter, layer: int, tokens: torch.Tensor) -> float:
    """Median ``sigma`` of ``ln2`` at `layer` over `tokens` (batch, pos), BOS excluded."""
    s = adapter.sites(layer)
    reads = s.resid_pre if s.resid_mid is None else s.resid_mid
    cache = adapter.run(tokens, names=[reads, s.mlp_in], stop_at_layer=min(layer + 1, adapter.info.n_layers)).cache
    r, n = cache[reads][:, 1:].float(), cache[s.mlp_in][:, 1:].float()
    if adapter.info.norm == "layer":
        r = r - r.mean(-1, keepdim=True)
    return float((r.norm(dim=-1) / n.norm(dim=-1).clamp_min(1e-12)).median())


@dataclass(frozen=True)
class ConnectionTable:
    """Top-k connections of every latent between two transcoders (upstream layer < downstream)."""

    upstream_index: torch.Tensor
    """(d_sae_down, k) for each downstream latent j, its top upstream latents i."""
    upstream_weight: torch.Tensor
    """(d_sae_down, k) C[i, j] of those."""
    downstream_index: torch.Tensor
    """(d_sae_up, k) for each upstream latent i, its top downstream latents j."""
    downstream_weight: torch.Tensor
    """(d_sae_up, k) C[i, j] of those."""
    scale: float

    def upstream(self, j: int) -> pd.DataFrame:
        """Top upstream latents of downstream latent `j`: columns index, weight."""
        _check_index(j, self.upstream_index.shape[0], "downstream")
        return pd.DataFrame({"index": self.upstream_index[j].tolist(), "weight": self.upstream_weight[j].tolist()})

    def downstream(self, i: int) -> pd.DataFrame:
        """Top downstream latents of upstream latent `i`: columns index, weight."""
        _check_index(i, self.downstream_index.shape[0], "upstream")
        return pd.DataFrame({"index": self.downstream_index[i].tolist(), "weight": self.downstream_weight[i].tolist()})


def _check_index(i: int, n: int, which: str) -> None:
    if not isinstance(i, int) or not 0 <= i < n:
        raise ValueError(f"{which} latent {i!r} is out of range: valid 0..{n - 1}")


def _top_abs(M: torch.Tensor, k: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = M.abs().topk(k, dim=dim).indices
    return idx, M.gather(dim, idx)


def top_connections(up: Transcoder, down: Transcoder, k: int = 10, norm: str = "rms", scale: float = 1.0,
                    chunk: int = 2048) -> ConnectionTable:
    """Top-k |C| per latent in both directions, computed in blocks of `chunk` upstream rows."""
    d_up, d_down = up.W_dec.shape[0], down.W_enc.shape[1]
    if not isinstance(k, int) or not 0 < k <= min(d_up, d_down):
        raise ValueError(f"k must be in 1..{min(d_up, d_down)}, got {k!r}")
    best_val = torch.empty(0, d_down)
    best_idx = torch.empty(0, d_down, dtype=torch.long)
    down_idx, down_val = [], []
    for start in range(0, d_up, chunk):
        C = connections(up, down, norm, scale, slice(start, start + chunk))  # (chunk, d_down)
        i, v = _top_abs(C, k, 1)
        down_idx.append(i)
        down_val.append(v)
        ui, uv = _top_abs(C, min(k, C.shape[0]), 0)  # running top-k over upstream rows
        best_val = torch.cat([best_val, uv])
        best_idx = torch.cat([best_idx, ui + start])
        keep = best_val.abs().topk(min(k, best_val.shape[0]), dim=0).indices
        best_val, best_idx = best_val.gather(0, keep), best_idx.gather(0, keep)
    return ConnectionTable(best_idx.T.contiguous(), best_val.T.contiguous(), torch.cat(down_idx),
                           torch.cat(down_val), float(scale))


def save_connections(store, up_name: str, down_name: str, table: ConnectionTable, run_id: str | None = None) -> None:
    """Store `table` as tensor bundle ``circuits/connections/<up>/<down>``."""
    store.save_tensors(f"circuits/connections/{up_name}/{down_name}", {
        "upstream_index": table.upstream_index, "upstream_weight": table.upstream_weight,
        "downstream_index": table.downstream_index, "downstream_weight": table.downstream_weight,
    }, {"upstream": up_name, "downstream": down_name, "scale": table.scale}, run_id=run_id)


def load_connections(store, up_name: str, down_name: str) -> ConnectionTable:
    name = f"circuits/connections/{up_name}/{down_name}"
    t = store.load_tensors(name)
    meta = store.tensor_metadata(name)
    return ConnectionTable(t["upstream_index"], t["upstream_weight"], t["downstream_index"],
                           t["downstream_weight"], float(meta.get("scale", 1.0)))


def load_transcoders(store, names: Sequence[str], adapter) -> tuple[dict[int, Transcoder], dict[int, str]]:
    """({layer: transcoder}, {layer: name}) for store dictionaries `names` of `adapter`'s model.

    Each must be a transcoder from a layer's ``mlp_in`` to its ``mlp_out``; one per layer.
    """
    from interp.dictionaries.io import load_dictionary

    rows = store.read("dictionaries", where={"name": list(names)}) if names else store.read("dictionaries")
    found = set(rows["name"]) if not rows.empty else set()
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"no dictionaries {missing} in store {store.root}; stored: {sorted(found) or 'none'}")
    out, labels = {}, {}
    for row in rows.itertuples():
        layer = layer_of(row.site)
        if row.kind != "transcoder" or layer is None or row.site != adapter.sites(layer).mlp_in:
            raise ValueError(f"dictionary {row.name!r} ({row.kind} on {row.site}) is not an MLP transcoder; "
                             f"circuits need transcoders reading blocks.L.ln2.hook_normalized")
        if layer in out:
            raise ValueError(f"two transcoders at layer {layer}: {labels[layer]!r} and {row.name!r}; pass one per layer")
        out[layer], labels[layer] = load_dictionary(store, row.name)[0], row.name
    return out, labels


def transcoders_of(store, model: str) -> list[str]:
    """Names of the stored transcoders of `model` (latest per layer, by name order)."""
    from interp.models.registry import store_model_name

    rows = store.read("dictionaries", where={"model": store_model_name(model), "kind": "transcoder"})
    if rows.empty:
        return []
    rows = rows.assign(layer=[layer_of(s) for s in rows["site"]]).sort_values(["layer", "name"])
    return rows.groupby("layer")["name"].last().tolist()


def random_transcoders(adapter, layers: Sequence[int], d_sae: int, k: int | None = None,
                       seed: int = 0) -> Mapping[int, Transcoder]:
    """Transcoders with random weights (unit decoder rows, W_enc = W_dec^T, TopK if `k`).

    Their latents mean nothing: they exercise the exact bookkeeping (attribution sums, error
    terms, ablations) where no trained transcoders exist.
    """
    from interp.dictionaries import Dictionary

    g = torch.Generator().manual_seed(seed)
    d = adapter.info.d_model
    out = {}
    for layer in layers:
        tc = Dictionary(d, d_sae, d, kind="transcoder", arch="topk" if k else "relu", k=k)
        tc.init_weights(g)
        with torch.no_grad():
            tc.W_enc.copy_(tc.W_dec.T)
        out[adapter.check_layer(layer)] = tc.eval()
    return out


TARGET_FORMS = ('latent:DICT:IDX[@POS]  (DICT a dictionary name or L<layer>)', 'logit:" Paris"[@POS]',
                'logitdiff:" she"," he"[@POS]  (tokens quoted, or #ID for a token id)')
_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|#(\d+)|([^,@"\']+))\s*')


def _split_position(body: str) -> tuple[str, int]:
    m = re.search(r"@(-?\d+)\s*$", body)
    if m and body[:m.start()].count('"') % 2 == 0 and body[:m.start()].count("'") % 2 == 0:
        return body[:m.start()], int(m.group(1))
    return body, -1


def _tokens(adapter, body: str) -> list[int]:
    ids, pos = [], 0
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot read tokens from {body!r}; write them quoted, e.g. \" she\",\" he\", or #ID")
        text = m.group(1) if m.group(1) is not None else m.group(2)
        if m.group(3) is not None:
            ids.append(int(m.group(3)))
        else:
            ids.append(adapter.token_id(text if text is not None else m.group(4)))
        pos = m.end()
        if pos < len(body):
            if body[pos] != ",":
                raise ValueError(f"expected ',' between tokens in {body!r} at {body[pos:]!r}")
            pos += 1
    return ids


def parse_target(adapter, spec: str, dictionaries: Mapping[str, int] | None = None) -> Target:
    """A `Target` from its text form (see `TARGET_FORMS`); `dictionaries` maps names to layers."""
    kind, _, body = spec.partition(":")
    body, position = _split_position(body)
    if kind == "latent":
        where, _, index = body.rpartition(":")
        layer = (dictionaries or {}).get(where)
        if layer is None and re.fullmatch(r"[Ll]\d+", where):
            layer = int(where[1:])
        if layer is None or not index.strip().isdigit():
            known = ", ".join(dictionaries or {}) or "none loaded"
            raise ValueError(f"latent target {spec!r} needs latent:DICT:IDX with DICT a dictionary ({known}) or L<layer>")
        return LatentTarget(adapter.check_layer(layer), int(index), position)
    if kind in ("logit", "logitdiff"):
        ids = _tokens(adapter, body)
        if len(ids) != (1 if kind == "logit" else 2):
            raise ValueError(f"{kind} target {spec!r} needs {'one token' if kind == 'logit' else 'two tokens'}")
        return LogitTarget(ids[0], ids[1] if kind == "logitdiff" else None, position)
    raise ValueError(f"unknown target {spec!r}; valid forms: {'; '.join(TARGET_FORMS)}")
