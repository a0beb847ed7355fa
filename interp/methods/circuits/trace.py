"""Freezing one forward pass for exact linear attribution through transcoders.

`trace` runs the unmodified model once and keeps what `interp.methods.circuits.attribution`
needs (steps 1-3 of its docstring): per layer the attention input and pattern, the ln1-folded
value weights per query head, the MLP input and output, each transcoder's active latents,
skip term and error ``mlp_out - y_hat``, and the frozen norm factors ``c = |n| / |P r|``.

A transcoder is anything with SAELens's `Transcoder` attributes: ``W_enc`` (d_model, d_sae),
``b_enc`` (d_sae,), ``W_dec`` (d_sae, d_model), ``b_dec`` (d_model,), optional ``W_skip``
(d_model, d_model) and ``encode(x) -> (..., d_sae)`` dense activations (SAELens's classes and
`interp.dictionaries.Dictionary` both qualify). Its input is ``adapter.sites(L).mlp_in``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Mapping, Protocol

import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64}


class Transcoder(Protocol):
    W_enc: torch.Tensor
    b_enc: torch.Tensor
    W_dec: torch.Tensor
    b_dec: torch.Tensor

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...


@dataclass
class LayerTrace:
    """What one layer did on the prompt (pos = prompt length)."""

    layer: int
    attn_in: torch.Tensor
    """(pos, d_model) ln1 output before the gain."""
    pattern: torch.Tensor
    """(n_heads, pos, pos) attention pattern [head, dest, source]."""
    W_V: torch.Tensor
    """(n_heads, d_model, d_head) ln1-folded value weights per query head (its KV block)."""
    W_O: torch.Tensor
    """(n_heads, d_head, d_model)."""
    attn_bias: torch.Tensor
    """(d_model,) b_O + sum_h b_V W_O."""
    ln1_scale: torch.Tensor
    """(pos,) c = |n| / |P r| of ln1."""
    ln2_scale: torch.Tensor
    """(pos,) the same for ln2 (the transcoder's input)."""
    mlp_in: torch.Tensor
    """(pos, d_model) ln2 output before the gain: the transcoder's input."""
    mlp_out: torch.Tensor
    """(pos, d_model)."""
    transcoder: Transcoder | None = None
    active_idx: torch.Tensor | None = None
    """(pos, K) indices of active latents (padded with 0)."""
    active_val: torch.Tensor | None = None
    """(pos, K) their activations (0 in padding)."""
    skip: torch.Tensor | None = None
    """(pos, d_model) skip term, or None."""
    error: torch.Tensor | None = None
    """(pos, d_model) mlp_out - transcoder output."""

    def __post_init__(self):
        h, k, _ = self.W_O.shape
        self._W_O_flat = self.W_O.reshape(h * k, -1).contiguous()  # (heads * d_head, d_model)
        self._W_V_t = self.W_V.transpose(1, 2).contiguous()  # (heads, d_head, d_model)

    def pre_activation(self, position: int, index: int) -> float:
        """Encoder pre-activation ``x @ W_enc[:, index] + b_enc[index]`` at `position`."""
        W_enc = self.transcoder.W_enc.detach()
        return float(self.mlp_in[position] @ W_enc[:, index].to(self.mlp_in.dtype) + self.transcoder.b_enc.detach()[index])


@dataclass
class Trace:
    """One prompt's forward pass, frozen for linear attribution (see the module docstring)."""

    tokens: torch.Tensor
    """(pos,) token ids."""
    str_tokens: list[str]
    embed: torch.Tensor
    """(pos, d_model)."""
    pos_embed: torch.Tensor
    """(pos, d_model) resid_pre[0] - embed (zero for rotary models)."""
    layers: list[LayerTrace]
    final_scale: torch.Tensor
    """(pos,) c of the final norm."""
    logits: torch.Tensor
    """(pos, d_vocab)."""
    norm: str
    parallel: bool

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def n_pos(self) -> int:
        return int(self.tokens.shape[0])

    def cutoff(self, reader: str, layer: int) -> int:
        """Writers (embed=0, attn l=1+2l, mlp l=2+2l) below this index feed the reader."""
        if reader == "final":
            return 2 * self.n_layers + 1
        if reader == "attn" or (reader == "mlp" and self.parallel):
            return 1 + 2 * layer
        return 2 + 2 * layer

    def project(self, w: torch.Tensor) -> torch.Tensor:
        """P w: the norm's centring (LayerNorm) or the identity (RMSNorm). w: (..., d_model)."""
        return w - w.mean(-1, keepdim=True) if self.norm == "layer" else w


def _scale(resid: torch.Tensor, normalized: torch.Tensor, norm: str) -> torch.Tensor:
    # c = |n| / |P r| per position: exact whatever eps the norm uses.
    centred = resid - resid.mean(-1, keepdim=True) if norm == "layer" else resid
    return normalized.norm(dim=-1) / centred.norm(dim=-1).clamp_min(1e-12)


def _encode(tc: Transcoder, x: torch.Tensor, layer: int, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(idx, val), each (pos, K): the active latents of `x` (pos, d_model), padded with z = 0.

    Checks that active latents pass their pre-activation ``x @ W_enc + b_enc`` through.
    """
    z = tc.encode(x.to(tc.W_enc.dtype)).detach().to(dtype)
    k = max(int((z != 0).sum(-1).max()), 1)
    idx = z.abs().topk(k, dim=-1).indices  # the active latents first; padding has z = 0
    val = z.gather(-1, idx)
    W = tc.W_enc.detach().to(dtype)
    pre = torch.einsum("pd,dpk->pk", x, W[:, idx]) + tc.b_enc.detach().to(dtype)[idx]
    active = val != 0
    if torch.any((val - pre).abs()[active] > 1e-3 * (1 + pre.abs()[active])):
        raise ValueError(
            f"the transcoder at layer {layer} does not pass its pre-activation x @ W_enc + b_enc through on "
            "active latents (input normalisation or scaling inside encode?); fold it into W_enc/b_enc first"
        )
    return idx, val


_WEIGHTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _attn_weights(adapter, layer: int, dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(W_V per query head with the ln1 gain folded in, W_O, b_attn), cached per adapter.

    Only the value path is needed, so the fold is done here rather than folding every weight
    of the layer (`ModelWeights.layer(fold_norms=True)`) on each call.
    """
    per_model = _WEIGHTS.setdefault(adapter, {})
    if layer not in per_model:
        w = adapter.weights.layer(layer)
        a, ln1 = w.attn, w.ln1
        kv = torch.tensor([a.kv_head(h) for h in range(a.n_heads)])
        W_V, b_V = a.W_V[kv], a.b_V[kv]  # (heads, d_model, d_head), (heads, d_head)
        if ln1.bias is not None:
            b_V = b_V + torch.einsum("m,hmk->hk", ln1.bias, W_V)
        W_V = W_V * ln1.gain[None, :, None]
        per_model[layer] = (W_V, a.W_O, a.b_O + torch.einsum("hk,hkm->m", b_V, a.W_O))
    return tuple(t.to(dtype) for t in per_model[layer])


def _layer_trace(adapter, trace_cache: dict, layer: int, tc: Transcoder | None, dtype, norm: str) -> LayerTrace:
    s = adapter.sites(layer)
    get = lambda name: trace_cache[name][0].to(dtype)  # noqa: E731  (batch of one)
    W_V, W_O, attn_bias = _attn_weights(adapter, layer, dtype)
    if s.resid_mid is None:  # parallel attention + MLP: both read resid_pre
        mlp_reads = get(s.resid_pre)
    else:  # resid_mid = next resid_pre - mlp_out: one hook fewer per layer (hook setup is not free)
        after = adapter.sites(layer + 1).resid_pre if layer + 1 < adapter.info.n_layers else adapter.final_resid_site
        mlp_reads = get(after) - get(s.mlp_out)
    x = get(s.mlp_in)
    lt = LayerTrace(
        layer=layer, attn_in=get(s.attn_in), pattern=get(s.attn_pattern), W_V=W_V, W_O=W_O,
        attn_bias=attn_bias, ln1_scale=_scale(get(s.resid_pre), get(s.attn_in), norm),
        ln2_scale=_scale(mlp_reads, x, norm), mlp_in=x, mlp_out=get(s.mlp_out), transcoder=tc,
    )
    if tc is None:
        return lt
    idx, val = _encode(tc, x, layer, dtype)
    W_dec = tc.W_dec.detach().to(dtype)
    out = torch.einsum("pk,pkd->pd", val, W_dec[idx]) + tc.b_dec.detach().to(dtype)  # sparse decode
    skip = getattr(tc, "W_skip", None)
    skip = None if skip is None else x @ skip.detach().to(dtype).T
    if skip is not None:
        out = out + skip
    lt.active_idx, lt.active_val, lt.skip, lt.error = idx, val, skip, lt.mlp_out - out
    return lt


@torch.no_grad()
def trace(adapter, transcoders: Mapping[int, Transcoder], tokens, dtype: str = "float32") -> Trace:
    """Run `tokens` (one prompt: a string or (pos,) ids) once and freeze what attribution needs.

    `transcoders` maps layer -> transcoder (see the module docstring); other layers' MLPs stay
    opaque ``mlp`` components.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not valid; choose one of {list(DTYPES)}")
    dt = DTYPES[dtype]
    tokens = adapter.to_tokens(tokens) if isinstance(tokens, str) else torch.as_tensor(tokens).reshape(1, -1)
    info = adapter.info
    for layer, tc in transcoders.items():
        adapter.check_layer(layer)
        if tuple(tc.W_enc.shape)[0] != info.d_model or tuple(tc.W_dec.shape)[1] != info.d_model:
            raise ValueError(f"transcoder at layer {layer} maps {tuple(tc.W_enc.shape)[0]} -> "
                             f"{tuple(tc.W_dec.shape)[1]} dims; {adapter.name} needs d_model={info.d_model} both ways")
    names = [adapter.embed_site, adapter.sites(0).resid_pre, adapter.final_resid_site, adapter.final_normalized_site]
    for layer in range(info.n_layers):
        s = adapter.sites(layer)
        names += [s.resid_pre, s.attn_in, s.attn_pattern, s.mlp_in, s.mlp_out]
    out = adapter.run(tokens, names=list(dict.fromkeys(names)))
    cache = out.cache
    g = lambda name: cache[name][0].to(dt)  # noqa: E731
    layers = [_layer_trace(adapter, cache, layer, transcoders.get(layer), dt, info.norm) for layer in range(info.n_layers)]
    embed = g(adapter.embed_site)
    return Trace(
        tokens=tokens[0].cpu(), str_tokens=adapter.to_str_tokens(tokens[0]), embed=embed,
        pos_embed=g(adapter.sites(0).resid_pre) - embed, layers=layers,
        final_scale=_scale(g(adapter.final_resid_site), g(adapter.final_normalized_site), info.norm),
        logits=out.output[0].to(dt), norm=info.norm, parallel=info.parallel_attn_mlp,
    )
