"""Which known features carry an ObsProp vector's task?

Ranking known features against an ObsProp vector ``y`` at site ``s``:

1. Readers at ``s``: for an MLP input, the neurons' input directions (columns of the
   gain-folded ``W_in`` and ``W_gate``); dictionaries whose input site is ``s`` (encoder
   columns of transcoders/SAEs).
2. Writers upstream of ``s``: output directions of MLP neurons (rows of ``W_out``) and of
   transcoder latents (decoder rows) of earlier layers, against ``y``'s residual-stream
   version ``P y`` (LayerNorm centring; RMSNorm: ``y``). Writes into the residual are what
   a head/MLP at ``s`` reads.
3. Each candidate direction ``d`` gets ``cosine(y, d)`` and ``coupling = y.d / ||y||^2``
   (its expected score at task score 1, `obsprop.coupling`); rows are ranked by
   ``|metric|``.
"""

from __future__ import annotations

import pandas as pd
import torch

from interp.features import FeatureKind
from interp.sites import layer_of

METRICS = ("cosine", "coupling")


def _reader_layer(adapter, site: str) -> tuple[int, bool]:
    """(first layer whose MLP output cannot reach `site`, whether `site` is an MLP input)."""
    if site == adapter.final_resid_site:
        return adapter.info.n_layers, False
    layer = layer_of(site)
    if layer is None:
        return 0, False  # the embeddings: nothing writes before them
    sites = adapter.sites(layer)
    is_mlp_in = site == sites.mlp_in
    # An MLP reads its own layer's heads but not itself; heads read only earlier layers' MLPs.
    return layer, is_mlp_in


def _rows(ident: dict, direction: str, y: torch.Tensor, D: torch.Tensor) -> pd.DataFrame:
    """One row per candidate direction (rows of D (n, d)) against y (d,)."""
    y = y.to(D.device)  # D is the model's (on its device) or a stored dictionary's (on the CPU)
    cos = torch.nn.functional.cosine_similarity(D, y[None], dim=-1)
    coup = (D @ y) / (y @ y)
    return pd.DataFrame({**{k: [v] * len(D) for k, v in ident.items()}, "index": range(len(D)),
                         "direction": direction, "cosine": cos.cpu().numpy(), "coupling": coup.cpu().numpy()})


def _neuron_candidates(adapter, y: torch.Tensor, r: torch.Tensor, site: str, upto: int, is_mlp_in: bool) -> list:
    model = adapter.store_name
    out = []
    if is_mlp_in:
        layer = layer_of(site)
        mlp = adapter.weights.layer(layer, fold_norms=True).mlp
        ident = {"model": model, "site": adapter.sites(layer).mlp_hidden, "kind": "neuron", "source": ""}
        out.append(_rows(ident, "in", y, mlp.W_in.T))
        if mlp.gated:
            out.append(_rows(ident, "gate", y, mlp.W_gate.T))
    for layer in range(upto):
        W_out = adapter.weights.layer(layer).mlp.W_out  # (d_mlp, d_model): what each neuron writes
        ident = {"model": model, "site": adapter.sites(layer).mlp_hidden, "kind": "neuron", "source": ""}
        out.append(_rows(ident, "out", r, W_out))
    return out


def _dictionary_candidates(store, adapter, y: torch.Tensor, r: torch.Tensor, site: str, upto: int) -> list:
    from interp.dictionaries.io import load_dictionary

    rows = store.read("dictionaries", where={"model": adapter.store_name})
    out = []
    for row in rows.to_dict("records"):
        hook_out_layer = layer_of(row.get("hook_out") or "")
        reads = row["site"] == site
        writes = row["kind"] == "transcoder" and hook_out_layer is not None and hook_out_layer < upto
        if not (reads or writes):
            continue
        dictionary, _ = load_dictionary(store, row["name"])
        ident = {"model": adapter.store_name, "site": row["site"], "kind": row["kind"], "source": row["name"]}
        with torch.no_grad():
            if reads:
                out.append(_rows(ident, "enc", y, dictionary.W_enc.T.float()))
            if writes:
                out.append(_rows(ident, "dec", r, dictionary.W_dec.float()))
    return out


def rank_known_features(adapter, vector: torch.Tensor, site: str, store=None, metric: str = "cosine",
                        top: int = 20, kinds: tuple[str, ...] = ("neuron", "transcoder", "sae")) -> pd.DataFrame:
    """Known features whose directions align with an ObsProp `vector` (d_model,) at `site`.

    Returns the `top` rows by ``|metric|``: model, site, kind, index, source (a `FeatureId`),
    direction ('in', 'gate', 'out', 'enc', 'dec'), cosine and coupling.
    """
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r} is not valid; valid: {', '.join(METRICS)}")
    valid = {k.value for k in FeatureKind}
    bad = [k for k in kinds if k not in valid]
    if bad:
        raise ValueError(f"unknown feature kind(s) {bad}; valid: {', '.join(sorted(valid))}")
    adapter.check_site(site)
    y = vector.detach().float()
    upto, is_mlp_in = _reader_layer(adapter, site)
    r = y - y.mean() if adapter.info.norm == "layer" and layer_of(site) is not None else y
    frames = _neuron_candidates(adapter, y, r, site, upto, is_mlp_in) if "neuron" in kinds else []
    if store is not None and ({"transcoder", "sae"} & set(kinds)):
        frames += [f for f in _dictionary_candidates(store, adapter, y, r, site, upto) if f["kind"].iloc[0] in kinds]
    if not frames:
        return pd.DataFrame(columns=["model", "site", "kind", "index", "source", "direction", "cosine", "coupling"])
    table = pd.concat(frames, ignore_index=True)
    order = table[metric].abs().sort_values(ascending=False).index[:top]
    return table.loc[order].reset_index(drop=True)

